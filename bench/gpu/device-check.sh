#!/usr/bin/env bash
# bench/gpu/device-check.sh: the whole GPU check in one call, for a machine
# with an NVIDIA GPU, the CUDA toolkit with cuDNN under /usr/local/cuda and
# the project's other build dependencies. From a clean checkout it
#   1. configures a separate build folder with -DHV_ENABLE_CUDA=ON,
#   2. builds only what the check needs (the GPU tests and bench/gpu),
#   3. runs `ctest -L gpu --output-on-failure` (probe, op contract on cuda,
#      training vs the CPU),
#   4. runs bench/gpu/gpu_bench (cuDNN's ceiling, the engine's conv node,
#      the generator),
# and writes everything, with the machine (nvidia-smi -L), the commit and
# the time of each stage, to results/gpu-<UTC date>.txt. Each stage has a
# time limit so that the whole stays under 8 minutes (budget: configure
# 45 s, build 180 s, tests 120 s, bench 120 s).
#
# Usage: bench/gpu/device-check.sh [build-folder]   (default build-gpu)
# HV_CUDA_ARCHS sets CMAKE_CUDA_ARCHITECTURES (default: the compute
# capability nvidia-smi reports for GPU 0, e.g. 90; else "native", which
# needs CMake 3.24); e.g. HV_CUDA_ARCHS=90 builds the check where no GPU is.
# Exit status: 0 when every stage passed (tests may be skipped only when no
# device is usable, which the file then says), 1 otherwise.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
out=$root/results/gpu-$(date -u +%Y-%m-%d).txt
jobs=$(nproc 2>/dev/null || echo 4)
archs=${HV_CUDA_ARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
                         head -1 | tr -d '. ')}
archs=${archs:-native}
mkdir -p "$root/results"
fail=0

stage() { # name, time limit (s), command...
    local name=$1 limit=$2 t0 rc
    shift 2
    echo "## $name (limit ${limit}s): $*"
    t0=$(date +%s)
    timeout "$limit" "$@"
    rc=$?
    echo "## $name: exit $rc after $(( $(date +%s) - t0 )) s"
    [ "$rc" -eq 0 ] || fail=1
    return "$rc"
}

{
    echo "# GPU device check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
         "$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo '(uncommitted changes)')"
    echo "# host $(hostname), $jobs cores"
    echo "# machine:"
    nvidia-smi -L 2>&1 || echo "nvidia-smi not available"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2 || true
    t_all=$(date +%s)
    if stage configure 45 cmake -S "$root" -B "$build" -DHV_ENABLE_CUDA=ON \
             -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES="$archs" &&
       stage build 180 cmake --build "$build" -j "$jobs" --target test_gpu_probe test_gpu_ops \
             test_gpu_train bench_gpu; then
        stage tests 120 bash -c "ctest --test-dir '$build' -L gpu --output-on-failure \
              > '$build/gpu-tests.log' 2>&1; rc=\$?; cat '$build/gpu-tests.log'; exit \$rc"
        # a skipped test (no usable device) passes ctest: say so
        if grep -q "Skipped" "$build/gpu-tests.log" 2>/dev/null; then
            echo "## tests: some GPU tests were SKIPPED (no usable device?)"
            fail=1
        fi
        stage bench 120 "$build/bench/gpu_bench" --reps 10
    fi
    echo "## total $(( $(date +%s) - t_all )) s; device check: $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
} 2>&1 | tee "$out"
grep -q "device check: PASS" "$out"
