# Finds what mint::mint links to. Used by the build tree and installed next to mintConfig.cmake, so a
# find_package(mint) consumer resolves the same dependencies the same way. MINT_BLAS selects the GEMM backend.
include(CMakeFindDependencyMacro)
# Inside mintConfig.cmake a missing dependency must make find_package(mint) fail politely (find_dependency);
# in mint's own build tree it must stop the configure with the package's name (find_package REQUIRED).
macro(_mint_find)
  if(DEFINED CMAKE_FIND_PACKAGE_NAME)
    find_dependency(${ARGV})
  else()
    find_package(${ARGV} REQUIRED)
  endif()
endmacro()
_mint_find(Eigen3 3.4 NO_MODULE)
_mint_find(xtensor)
_mint_find(nlohmann_json)
_mint_find(OpenMP)
_mint_find(ZLIB)  # Debian ships the idx datasets gzip-compressed
_mint_find(OpenSSL COMPONENTS Crypto)  # libcrypto's SHA-256: shard and model hashes (mint/io/sha256.hpp)
if(MINT_BLAS STREQUAL "OpenBLAS")
  set(BLA_VENDOR OpenBLAS)
  _mint_find(BLAS)
endif()

# stb: Debian's libstb-dev ships the headers and a compiled libstb.so holding the implementations, so a
# header-only consumer never defines STB_IMAGE_WRITE_IMPLEMENTATION (which would break the one-definition rule).
if(NOT TARGET mint::stb)
  find_path(MINT_STB_INCLUDE_DIR stb_image_write.h PATH_SUFFIXES stb)
  find_library(MINT_STB_LIBRARY stb)
  if(NOT MINT_STB_INCLUDE_DIR OR NOT MINT_STB_LIBRARY)
    message(FATAL_ERROR "mint: stb not found (Debian: apt-get install libstb-dev)")
  endif()
  add_library(mint::stb UNKNOWN IMPORTED)
  set_target_properties(mint::stb PROPERTIES IMPORTED_LOCATION "${MINT_STB_LIBRARY}"
                                             INTERFACE_INCLUDE_DIRECTORIES "${MINT_STB_INCLUDE_DIR}")
endif()
