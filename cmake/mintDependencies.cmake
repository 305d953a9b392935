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

# A library Debian ships without a CMake package, as an imported target: its header (`header`, looked up with
# `suffix` as a subfolder) and its shared library, found into the cache variables <id>_INCLUDE_DIR and
# <id>_LIBRARY, or a configure error naming the Debian package.
function(_mint_import target id header suffix library package)
  if(TARGET ${target})
    return()
  endif()
  find_path(${id}_INCLUDE_DIR ${header} PATH_SUFFIXES ${suffix})
  find_library(${id}_LIBRARY ${library})
  if(NOT ${id}_INCLUDE_DIR OR NOT ${id}_LIBRARY)
    message(FATAL_ERROR "mint: ${library} not found (Debian: apt-get install ${package})")
  endif()
  add_library(${target} UNKNOWN IMPORTED)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION "${${id}_LIBRARY}"
                                             INTERFACE_INCLUDE_DIRECTORIES "${${id}_INCLUDE_DIR}")
endfunction()
# stb: Debian's libstb-dev ships the headers and a compiled libstb.so holding the implementations, so a
# header-only consumer never defines STB_IMAGE_WRITE_IMPLEMENTATION (which would break the one-definition rule).
_mint_import(mint::stb MINT_STB stb_image_write.h stb stb libstb-dev)
# libb64 (Debian's libb64-dev): base64 for the data: URIs of the HTML report (mint/io/base64.hpp).
_mint_import(mint::b64 MINT_B64 b64/cencode.h "" b64 libb64-dev)
# libzip: the container of torch.save checkpoints (mint/io/pytorch.hpp). Found by header and library, as stb:
# Debian's libzip-config.cmake imports zipcmp/zipmerge/ziptool, which libzip-dev does not install, so
# find_package(libzip) fails there.
_mint_import(mint::libzip MINT_LIBZIP zip.h "" zip libzip-dev)
