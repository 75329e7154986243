# Compiler flags shared by every C target: warnings, optional -Werror,
# sanitizers. CUDA sources get their own (nvcc does not take gcc's -W flags).
#
# No -Wpedantic: before C2X it flags passing `double[4][4]` to a
# `const double[4][4]` parameter, which our affine API does everywhere.
set(HV_C_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wformat=2 -Werror=implicit-function-declaration
    -Werror=implicit-int -Werror=vla)
if(HV_WERROR)
  list(APPEND HV_C_WARNINGS -Werror)
endif()
add_compile_options("$<$<COMPILE_LANGUAGE:C>:${HV_C_WARNINGS}>")
if(HV_WERROR)
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
endif()
if(HV_NATIVE)
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-march=native>")
endif()
if(HV_SANITIZE)
  # float-cast-overflow is not part of gcc's "undefined" (it is of clang's):
  # a NaN or 1e999 from a file cast to int must fail here too (the json
  # regression inputs of tests/fuzz found exactly that).
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-fsanitize=address,undefined,float-cast-overflow;-fno-sanitize-recover=undefined,float-cast-overflow;-fno-omit-frame-pointer>")
  add_link_options(-fsanitize=address,undefined,float-cast-overflow)
  # A Debug build is -O0: under ASan the straightening loops then run about
  # 200x slower than a release build and the MPI kill/resume tests outgrow
  # their time limits on a slow CI machine. -O1 is what the ASan authors
  # recommend (reports keep their line numbers; asserts stay on).
  if(CMAKE_BUILD_TYPE STREQUAL "Debug")
    add_compile_options("$<$<COMPILE_LANGUAGE:C>:-O1>")
  endif()
endif()
# HV_FUZZ (tests/fuzz): every library gets libFuzzer's coverage instrumentation
# plus ASan+UBSan; only the fuzz target executables link libFuzzer itself
# (-fsanitize=fuzzer, tests/fuzz/CMakeLists.txt). Needs clang's compiler-rt.
if(HV_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HV_FUZZ=ON needs clang (-DCMAKE_C_COMPILER=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link,address,undefined;-fno-sanitize-recover=undefined;-fno-omit-frame-pointer>")
  add_link_options(-fsanitize=address,undefined)
endif()
# POSIX 2008 + BSD/SVID extras (M_PI, clock_gettime, strdup, fileno...) in strict C11 mode.
add_compile_definitions(_DEFAULT_SOURCE _POSIX_C_SOURCE=200809L _FILE_OFFSET_BITS=64)
