# Finds what mint::mint links to. Used by the build tree and installed next to mintConfig.cmake, so a
# find_package(mint) consumer resolves the same dependencies the same way. The GEMM candidates
# (OpenBLAS, BLIS, oneDNN, LIBXSMM) are optional: each found one is compiled in (MINT_HAVE_<NAME>=1).
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

# A library Debian ships without a CMake package, as an imported target: its header (`header`, looked up with
# `suffix` as a subfolder) and its shared library, found into the cache variables <id>_INCLUDE_DIR and
# <id>_LIBRARY, or a configure error naming the Debian package (with OPTIONAL as a last argument: <id>_FOUND
# set to FALSE instead).
function(_mint_import target id header suffix library package)
  set(${id}_FOUND TRUE PARENT_SCOPE)
  if(TARGET ${target})
    return()
  endif()
  find_path(${id}_INCLUDE_DIR ${header} PATH_SUFFIXES ${suffix})
  find_library(${id}_LIBRARY ${library} PATH_SUFFIXES ${suffix})
  if(NOT ${id}_INCLUDE_DIR OR NOT ${id}_LIBRARY)
    if("${ARGN}" STREQUAL "OPTIONAL")
      set(${id}_FOUND FALSE PARENT_SCOPE)
      return()
    endif()
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

# ---- the GEMM candidates (mint/backend/cpu/gemm_backends.hpp), each optional. Debian installs OpenBLAS's and
# BLIS's OpenMP builds in their own subfolders, both with a cblas.h and both exporting cblas_sgemm: mint calls
# OpenBLAS through cblas_sgemm and BLIS only through its own bli_ API, so OpenBLAS comes first, in the include
# path and in the link line (tests/core/test_gemm_backends.cpp checks which library cblas_sgemm resolves to).
_mint_import(mint::openblas MINT_OPENBLAS cblas.h "${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp;openblas-openmp"
             openblas libopenblas-openmp-dev OPTIONAL)
_mint_import(mint::blis MINT_BLIS blis.h "${CMAKE_LIBRARY_ARCHITECTURE}/blis-openmp;blis-openmp" blis
             libblis-openmp-dev OPTIONAL)
# Debian's dnnl-config.cmake (built with the OpenCL GPU runtime) calls find_package(OpenCL REQUIRED), which would
# fail the whole configure where OpenCL's development files are missing: oneDNN is then skipped, as when absent.
find_package(OpenCL QUIET)
if(OpenCL_FOUND)
  find_package(dnnl CONFIG QUIET)
else()
  message(STATUS "mint: oneDNN not searched: OpenCL's development files (ocl-icd-opencl-dev), which Debian's "
                 "dnnl-config.cmake requires, are missing")
endif()
# LIBXSMM: Debian ships static libraries only; libxsmmnoblas stands in for the BLAS fallback it would otherwise
# need (mint never asks LIBXSMM for a product it does not JIT).
if(NOT TARGET mint::libxsmm)
  find_path(MINT_LIBXSMM_INCLUDE_DIR libxsmm.h)
  find_library(MINT_LIBXSMM_LIBRARY NAMES libxsmm.a xsmm)
  find_library(MINT_LIBXSMM_NOBLAS_LIBRARY NAMES libxsmmnoblas.a xsmmnoblas)
  if(MINT_LIBXSMM_INCLUDE_DIR AND MINT_LIBXSMM_LIBRARY AND MINT_LIBXSMM_NOBLAS_LIBRARY)
    add_library(mint::libxsmm INTERFACE IMPORTED)
    set_target_properties(mint::libxsmm PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${MINT_LIBXSMM_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${MINT_LIBXSMM_LIBRARY};${MINT_LIBXSMM_NOBLAS_LIBRARY};pthread;rt;dl;m")
  endif()
endif()
