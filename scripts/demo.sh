#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on a
# generated phantom cohort.
#
#   scripts/demo.sh [OUTDIR]       (default OUTDIR: out/demo)
#
# The main job is configs/phantom.ini on 2 MPI ranks: it writes a synthetic
# cohort with known fractures into OUTDIR/cohort, measures and grades every
# vertebra, and leaves the store, tables and figures in OUTDIR. Running it
# again resumes (finished cases are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
out="${1:-out/demo}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
bin=build/bin/healthivert
"$bin" version
# Open MPI refuses to run as root unless told; CI and containers run as root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpiexec --oversubscribe -n 2 "$bin" run configs/phantom.ini --set output.dir="$out"
