#!/usr/bin/env bash
# Builds healthivert and runs the test suite: every CTest label but `slow`
# and `gpu`, built with warnings as errors (this includes `fresh`: the deps
# step, README command 1 and the unit tests inside a new minimal Debian 12
# root made with debootstrap); then the tests again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build: every label but slow,
# gpu and slurm with leak detection, and the MPI tests without it (Open MPI
# keeps allocations until exit that LeakSanitizer reports as leaks).
#
#   scripts/test.sh            (README command 2; .ci/run calls it)
#
# Build folders: build/ (normal), build-asan/ (sanitizers) and build-fuzz/
# (clang + libFuzzer, tests/fuzz: `ctest -L fuzz` there fuzzes each target for
# a fixed number of executions). Test data is read from ../shared/data unless
# HV_TEST_DATA_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

jobs=$(nproc 2>/dev/null || echo 2)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Tests keep their own thread counts modest; oneDNN/OpenMP use both cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== build (warnings as errors)"
cmake -S . -B build -DHV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >build-configure.log 2>&1 \
  || { cat build-configure.log; exit 1; }
grep -A20 "configuration" build-configure.log | sed -n '1,18p'
cmake --build build -j"$jobs"

echo "== tests (all labels but slow and gpu)"
ctest --test-dir build -LE 'slow|gpu' --output-on-failure -j"$jobs" --timeout 900

echo "== sanitizers (address + undefined)"
cmake -S . -B build-asan -DHV_SANITIZE=ON -DHV_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
  -DHV_ENABLE_CUDA=OFF >build-asan-configure.log 2>&1 || { cat build-asan-configure.log; exit 1; }
cmake --build build-asan -j"$jobs"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1" \
  ctest --test-dir build-asan -LE 'slow|gpu|mpi|slurm|fresh' --output-on-failure -j"$jobs" --timeout 900
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0" \
  ctest --test-dir build-asan -L mpi -LE 'slow|gpu|slurm|fresh' --output-on-failure -j"$jobs" --timeout 900

# libFuzzer targets (tests/fuzz) in their own clang build: a fixed number of
# executions per target, about 5 minutes in all. A crash or sanitizer report
# fails the test; the input is saved as build-fuzz/fuzz/artifacts/<target>/crash-*.
echo "== fuzzing (libFuzzer, clang, ASan+UBSan)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DHV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHV_ENABLE_CUDA=OFF >build-fuzz-configure.log 2>&1 || { cat build-fuzz-configure.log; exit 1; }
cmake --build build-fuzz -j"$jobs" --target hv_fuzz_all
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
  ctest --test-dir build-fuzz -L fuzz -LE slow --output-on-failure -j"$jobs" --timeout 900
echo "== all tests passed"
