#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on a
# generated phantom cohort.
#
#   scripts/demo.sh [OUTDIR]       (default OUTDIR: out/demo)
#
# The main job is configs/phantom.ini run by 2 MPI ranks when the runner is
# built; until then it generates the phantom cohort and prints its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
out="${1:-out/demo}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
bin=build/bin/healthivert
"$bin" version
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if "$bin" --help | grep -q '^  run '; then
  exec mpiexec --oversubscribe -n 2 "$bin" run configs/phantom.ini --set output.dir="$out"
else
  exec "$bin" phantom --out "$out/cohort" --cases 20 --seed 1
fi
