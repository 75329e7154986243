# Finds every dependency and fails with the Debian package to install when one
# is missing. Imported targets: MPI::MPI_C, hv::hdf5, hv::nifti, hv::svm, hv::linear,
# DNNL::dnnl, hv::openblas, hv::cjson, hv::deflate, PNG::PNG, ZLIB::ZLIB,
# OpenMP::OpenMP_C.

function(hv_require found what pkg)
  if(NOT ${found})
    message(FATAL_ERROR "healthivert needs ${what}: install the Debian package '${pkg}' "
                        "(scripts/deps.sh installs everything)")
  endif()
endfunction()

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(ZLIB REQUIRED)

find_package(MPI COMPONENTS C)
hv_require(MPI_C_FOUND "MPI" "libopenmpi-dev openmpi-bin")

# Parallel HDF5 (Debian: the openmpi flavour). Use its pkg-config file so the
# serial flavour can never be picked up by accident, then assert H5_HAVE_PARALLEL.
pkg_check_modules(HV_HDF5 IMPORTED_TARGET hdf5-openmpi)
hv_require(HV_HDF5_FOUND "parallel HDF5" "libhdf5-openmpi-dev")
add_library(hv::hdf5 INTERFACE IMPORTED)
target_link_libraries(hv::hdf5 INTERFACE PkgConfig::HV_HDF5 MPI::MPI_C)
find_file(HV_H5_PUBCONF H5pubconf.h PATHS ${HV_HDF5_INCLUDE_DIRS} NO_DEFAULT_PATH)
file(STRINGS "${HV_H5_PUBCONF}" HV_H5_PARALLEL REGEX "^#define H5_HAVE_PARALLEL 1")
if(NOT HV_H5_PARALLEL)
  message(FATAL_ERROR "HDF5 at ${HV_HDF5_INCLUDE_DIRS} is not built with MPI-IO; install libhdf5-openmpi-dev")
endif()
set(HV_HDF5_VERSION ${HV_HDF5_VERSION} CACHE INTERNAL "")

# nifticlib: Debian's NIFTIConfig.cmake points at the wrong lib dir, so find it by hand.
find_path(HV_NIFTI_INCLUDE nifti2_io.h PATH_SUFFIXES nifti)
find_library(HV_NIFTI2_LIB nifti2)
find_library(HV_ZNZ_LIB znz)
hv_require(HV_NIFTI_INCLUDE "nifticlib headers" "libnifti2-dev")
hv_require(HV_NIFTI2_LIB "libnifti2" "libnifti2-dev")
hv_require(HV_ZNZ_LIB "libznz" "libnifti2-dev")
add_library(hv::nifti INTERFACE IMPORTED)
target_include_directories(hv::nifti INTERFACE ${HV_NIFTI_INCLUDE})
target_compile_definitions(hv::nifti INTERFACE HAVE_ZLIB)
target_link_libraries(hv::nifti INTERFACE ${HV_NIFTI2_LIB} ${HV_ZNZ_LIB} ZLIB::ZLIB m)

find_path(HV_SVM_INCLUDE svm.h PATH_SUFFIXES libsvm)
find_library(HV_SVM_LIB svm)
hv_require(HV_SVM_LIB "libsvm" "libsvm-dev")
add_library(hv::svm INTERFACE IMPORTED)
target_include_directories(hv::svm INTERFACE ${HV_SVM_INCLUDE})
target_link_libraries(hv::svm INTERFACE ${HV_SVM_LIB})

# liblinear: the SVM grader's solver for large training sets (docs/measure.md)
find_path(HV_LINEAR_INCLUDE linear.h PATH_SUFFIXES liblinear)
find_library(HV_LINEAR_LIB linear)
hv_require(HV_LINEAR_INCLUDE "liblinear headers" "liblinear-dev")
hv_require(HV_LINEAR_LIB "liblinear" "liblinear-dev")
add_library(hv::linear INTERFACE IMPORTED)
target_include_directories(hv::linear INTERFACE ${HV_LINEAR_INCLUDE})
target_link_libraries(hv::linear INTERFACE ${HV_LINEAR_LIB})

find_package(dnnl CONFIG QUIET)
hv_require(dnnl_FOUND "oneDNN" "libdnnl-dev")

pkg_check_modules(HV_OPENBLAS IMPORTED_TARGET openblas)
hv_require(HV_OPENBLAS_FOUND "OpenBLAS" "libopenblas-dev")
add_library(hv::openblas INTERFACE IMPORTED)
target_link_libraries(hv::openblas INTERFACE PkgConfig::HV_OPENBLAS)

pkg_check_modules(HV_CJSON IMPORTED_TARGET libcjson)
hv_require(HV_CJSON_FOUND "cJSON" "libcjson-dev")
add_library(hv::cjson INTERFACE IMPORTED)
target_link_libraries(hv::cjson INTERFACE PkgConfig::HV_CJSON)


# libdeflate: whole-buffer gzip decompression for reading .nii.gz (src/io).
pkg_check_modules(HV_DEFLATE IMPORTED_TARGET libdeflate)
hv_require(HV_DEFLATE_FOUND "libdeflate" "libdeflate-dev")
add_library(hv::deflate INTERFACE IMPORTED)
target_link_libraries(hv::deflate INTERFACE PkgConfig::HV_DEFLATE)

find_package(PNG)
hv_require(PNG_FOUND "libpng" "libpng-dev")

# cairo: the figures (src/io/draw.c): real text through fontconfig and
# anti-aliased lines. Its fonts come from fonts-dejavu-core at run time.
pkg_check_modules(HV_CAIRO IMPORTED_TARGET cairo fontconfig)
hv_require(HV_CAIRO_FOUND "cairo and fontconfig" "libcairo2-dev")
add_library(hv::cairo INTERFACE IMPORTED)
target_link_libraries(hv::cairo INTERFACE PkgConfig::HV_CAIRO Threads::Threads)

# CUDA: optional. AUTO builds it when nvcc (and cuDNN) are found.
set(HV_HAVE_CUDA OFF)
if(NOT HV_ENABLE_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  find_library(HV_CUDNN_LIB cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND HV_CUDNN_LIB)
    # Hopper (H100/H200) is the GPU we are lent; 80 (A100) covers the common cluster card.
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    set(HV_HAVE_CUDA ON)
  elseif(HV_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HV_ENABLE_CUDA=ON but nvcc, the CUDA toolkit or cuDNN was not found")
  endif()
endif()

# Git revision at configure time, for the summary; `healthivert version`
# gets the one of each build (src/CMakeLists.txt, hv_revision).
include(${CMAKE_CURRENT_LIST_DIR}/HvGitRev.cmake)
hv_git_rev(${CMAKE_SOURCE_DIR} HV_GIT_REV)
