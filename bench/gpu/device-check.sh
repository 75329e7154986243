#!/usr/bin/env bash
# bench/gpu/device-check.sh: the whole GPU check in one call.
#
# Three ways to run it:
#
#   device-check.sh [build-folder]
#       On a machine with an NVIDIA GPU, the CUDA toolkit with cuDNN under
#       /usr/local/cuda AND the project's other build dependencies: configure
#       a separate build folder (default build-gpu) with -DHV_ENABLE_CUDA=ON,
#       build only what the check needs, run the GPU tests and the GPU
#       benchmark.
#
#   device-check.sh --pack DIR [build-folder]
#       On a build machine (no GPU needed): the same configure and build,
#       then DIR receives the test and benchmark binaries (bin/), every
#       shared library they need that is neither glibc's nor CUDA's
#       (lib.tar.xz: oneDNN, OpenBLAS, the Fortran and OpenMP runtimes...),
#       the GPU test list as CTest has it (tests.list: name, environment,
#       command line), the source folder and commit the binaries were
#       built from (source.txt, commit.txt) and this script.
#   DIR/device-check.sh --run-packed DIR
#       On a GPU machine that has the NVIDIA driver, the CUDA runtime and
#       cuDNN but not the project's dependencies (a bare GPU node or a
#       container): run the packed tests and benchmark. The checkout must be
#       there too (the tests read their fixtures from the source folder the
#       binaries were built in; where that path does not exist, it is made
#       a symbolic link to this checkout).
#
# Stages (each with a time limit, so that the whole stays under 8 minutes):
# configure 45 s, build 300 s, then every GPU test (CTest label gpu: probe,
# op contract on cuda, training vs the CPU, the models vs the CPU) and
# bench/gpu/gpu_bench (cuDNN's own ceiling, the engine's conv node, the
# generator). With --run-packed and compute-sanitizer on the PATH, a
# memcheck pass over test_gpu_train follows.
#
# Everything, with the machine (nvidia-smi), the commit and the time of each
# stage, goes to results/gpu-<UTC date>[-N].txt of the checkout (a new file,
# never an earlier one overwritten) and to stdout.
#
# HV_CUDA_ARCHS sets CMAKE_CUDA_ARCHITECTURES (default: the compute
# capability nvidia-smi reports for GPU 0, e.g. 90; else 90 for --pack and
# "native" otherwise).
# Exit status: 0 when every stage passed (a skipped test, i.e. no usable
# device, counts as a failure here), 1 otherwise; 2 for bad arguments.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=build
pack=
case "${1:-}" in
    --pack) mode=pack; pack=${2:?--pack needs a folder}; shift 2 ;;
    --run-packed) mode=packed; pack=${2:?--run-packed needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "device-check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac
build=${1:-$root/build-gpu}
jobs=$(nproc 2>/dev/null || echo 4)
fail=0

# In packed mode the script runs from the pack folder: the checkout is the
# current directory (where the tests' fixtures are).
[ "$mode" = packed ] && root=$(pwd)
mkdir -p "$root/results"
out=$root/results/gpu-$(date -u +%Y-%m-%d).txt
n=2
while [ -e "$out" ]; do out=$root/results/gpu-$(date -u +%Y-%m-%d)-$n.txt; n=$((n + 1)); done

archs=${HV_CUDA_ARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
                         head -1 | tr -d '. ')}
if [ -z "$archs" ]; then
    if [ "$mode" = pack ]; then archs=90; else archs=native; fi
fi

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

configure_and_build() {
    stage configure 45 cmake -S "$root" -B "$build" -DHV_ENABLE_CUDA=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES="$archs" || return 1
    # every target labelled gpu, and the benchmark
    local targets
    targets=$(ctest --test-dir "$build" -N -L gpu | awk '/Test +#/ {print $3}' | sort -u)
    [ -n "$targets" ] || { echo "## no GPU tests configured (CUDA not found?)"; fail=1; return 1; }
    stage build 300 cmake --build "$build" -j "$jobs" --target $targets bench_gpu
}

# tests.list from CTest: one line per GPU test, "name|VAR=VAL VAR=VAL|binary args..."
write_test_list() {
    ctest --test-dir "$build" -N -V -L gpu | awk '
        / Test command: / { sub(/^[0-9]+: Test command: /, ""); cmd = $0; env = ""; inenv = 0; next }
        /Environment variables:/ { inenv = 1; next }
        inenv && /^[0-9]+:  [A-Za-z_]+=/ { sub(/^[0-9]+:  /, ""); env = env (env ? " " : "") $0; next }
        /  Test +#[0-9]+: / { print $3 "|" env "|" cmd; inenv = 0 }'
}

do_pack() {
    configure_and_build || return 1
    rm -rf "$pack" && mkdir -p "$pack/bin" "$pack/lib" || return 1
    write_test_list | while IFS='|' read -r name env cmd; do
        bin=${cmd%% *}
        args=${cmd#"$bin"}
        cp "$bin" "$pack/bin/" && echo "$name|$env|$(basename "$bin")$args"
    done > "$pack/tests.list"
    cp "$build/bench/gpu_bench" "$pack/bin/" || return 1
    # shared libraries: all but glibc's own and CUDA's (the GPU machine's
    # driver and toolkit provide those, matched to its driver)
    ldd "$pack"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
        grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/libcud|/libcublas|/libnccl|/libcuda\.' |
        while read -r lib; do cp -L "$lib" "$pack/lib/"; done
    (cd "$pack/lib" && tar cf - . | xz -T0 -6 > ../lib.tar.xz) && rm -rf "$pack/lib" || return 1
    echo "$root/tests" > "$pack/source.txt"
    echo "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" status \
        --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (uncommitted changes)')" > "$pack/commit.txt"
    cp "$0" "$pack/device-check.sh"
    echo "## packed into $pack: $(ls "$pack/bin" | tr '\n' ' ')"
    echo "## lib.tar.xz $(du -h "$pack/lib.tar.xz" | cut -f1); tests: $(cut -d'|' -f1 "$pack/tests.list" | tr '\n' ' ')"
}

run_tests_packed() {
    local lib cudnn d
    lib=$(mktemp -d) && tar xJf "$pack/lib.tar.xz" -C "$lib" || return 1
    # cuDNN and cuBLAS from this machine: the loader's cache, the toolkit,
    # or the wheels a Python framework brought
    cudnn=
    for d in $(ldconfig -p 2>/dev/null | awk '/libcudnn\.so\.9 / {print $NF}') \
             /usr/local/cuda*/lib64/libcudnn.so.9 /usr/local/cuda*/lib/libcudnn.so.9; do
        [ -e "$d" ] && { cudnn=$d; break; }
    done
    [ -n "$cudnn" ] || cudnn=$(find / -xdev -name libcudnn.so.9 2>/dev/null | head -1)
    echo "# cuDNN: ${cudnn:-not found}"
    export LD_LIBRARY_PATH=$lib${cudnn:+:$(dirname "$cudnn")}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    src=$(cat "$pack/source.txt")
    if [ ! -e "$src" ]; then
        mkdir -p "$(dirname "$src")" && ln -s "$root/tests" "$src" &&
            echo "# $src -> $root/tests (the binaries' fixture path)"
    fi
    local missing rc
    missing=$(ldd "$pack"/bin/* | grep "not found" | sort -u)
    [ -z "$missing" ] || { echo "## missing libraries:"; echo "$missing"; fail=1; }
    while IFS='|' read -r name env cmd; do
        eval "set -- $cmd"
        local bin=$1
        shift
        stage "$name" 150 env $env "$pack/bin/$bin" "$@" < /dev/null > "$pack/$name.log" 2>&1
        rc=$?
        cat "$pack/$name.log"
        [ "$rc" -ne 77 ] || echo "## $name was SKIPPED (exit 77: no usable device?)"
    done < "$pack/tests.list"
    stage bench 150 "$pack/bin/gpu_bench" --reps 10
    if command -v compute-sanitizer > /dev/null && [ -x "$pack/bin/test_gpu_train" ]; then
        stage memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 1 "$pack/bin/test_gpu_train"
    fi
}

run_tests_built() {
    stage tests 300 bash -c "ctest --test-dir '$build' -L gpu --output-on-failure \
          > '$build/gpu-tests.log' 2>&1; rc=\$?; cat '$build/gpu-tests.log'; exit \$rc"
    # a skipped test (no usable device) passes ctest: say so
    if grep -q "Skipped" "$build/gpu-tests.log" 2>/dev/null; then
        echo "## tests: some GPU tests were SKIPPED (no usable device?)"
        fail=1
    fi
    stage bench 150 "$build/bench/gpu_bench" --reps 10
}

if [ "$mode" = pack ]; then
    do_pack || fail=1
    exit $fail
fi

{
    echo "# GPU device check, $(date -u +%Y-%m-%dT%H:%M:%SZ), mode $mode"
    if [ "$mode" = packed ]; then
        echo "# binaries built from commit $(cat "$pack/commit.txt" 2>/dev/null || echo unknown)" \
             "(the checkout here: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown))"
    else
        echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
             "$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo '(uncommitted changes)')"
    fi
    echo "# host $(hostname), $jobs cores, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "# machine:"
    nvidia-smi -L 2>&1 || echo "nvidia-smi not available"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    t_all=$(date +%s)
    if [ "$mode" = packed ]; then
        run_tests_packed
    else
        /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2 || true
        configure_and_build && run_tests_built
    fi
    echo "## total $(( $(date +%s) - t_all )) s; device check: $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
} 2>&1 | tee "$out"
echo "# written to $out"
grep -q "device check: PASS" "$out"
