# Builds tests/package/consumer twice: once with add_subdirectory(mint), once against an installed mint
# found by find_package(mint). Fails if either configure, build or run fails.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}")
  endif()
endfunction()
# 1. install mint into a private prefix
run(${CMAKE_COMMAND} -S ${MINT_SOURCE_DIR} -B ${WORK_DIR}/mint-build -DMINT_BUILD_TESTS=OFF -DMINT_BUILD_EXAMPLES=OFF
    -DCMAKE_INSTALL_PREFIX=${prefix})
run(${CMAKE_COMMAND} --install ${WORK_DIR}/mint-build)
# 2. find_package(mint)
run(${CMAKE_COMMAND} -S ${MINT_SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/installed -DCMAKE_PREFIX_PATH=${prefix}
    -DMINT_CONSUME=find_package)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/installed -j2)
run(${WORK_DIR}/installed/consumer)
# 3. add_subdirectory(mint)
run(${CMAKE_COMMAND} -S ${MINT_SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/subdir -DMINT_CONSUME=add_subdirectory
    -DMINT_SOURCE_DIR=${MINT_SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/subdir -j2)
run(${WORK_DIR}/subdir/consumer)
