#!/usr/bin/env bash
# Cohort throughput of `healthivert run` at 1 and 2 ranks on this machine,
# with the per-stage time breakdown and the parallel efficiency, plus the
# per-case machinery costs (bench_store). Results: results/run-throughput.txt.
#
# Two references measured in the same call: the fixed cost of a run (the
# same command again when every case is finished: MPI start, manifest,
# store rebuild, grading, outputs), and the machine's own 2-way ceiling (two
# independent single-process shards of the cohort at once, no MPI between
# them): the 2-rank run is reported as a fraction of that ceiling.
#
#   bench/run/run_bench.sh [BUILD_DIR] [CASES]      (from the repository root)
#
# The cohort (phantom, T1-L5, 1.5 mm, the default main job's geometry) is
# generated once and read as a dataset by both runs, so generation is not
# timed. Baseline of the ratio: the 1-rank run of the same cohort, same call.
set -euo pipefail
B=${1:-build}; N=${2:-24}
HV=$B/bin/healthivert
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
W=$(mktemp -d /tmp/hv-bench-run.XXXXXX)
trap 'rm -rf "$W"' EXIT
out=results/run-throughput.txt
mkdir -p results
{
echo "# healthivert run throughput ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc --all) cores, $(uname -m))"
echo "# command: bench/run/run_bench.sh $B $N"
echo "# git $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
"$HV" phantom --out "$W/data" --cases "$N" --seed 1 --spacing 1.5 >/dev/null 2>&1
echo "cohort: $N phantom cases, T1-L5, 1.5 mm, $(du -sh "$W/data/raw" | cut -f1) of NIfTI"
declare -A wall
for n in 1 2; do
  t0=$(date +%s.%N)
  mpirun -n $n --oversubscribe "$HV" run configs/phantom.ini --set input.source=dataset \
    --set input.dataset="$W/data" --set input.split="$W/data/split.json" \
    --set output.dir="$W/r$n" --set run.progress_interval=1000 >"$W/r$n.log" 2>&1
  t1=$(date +%s.%N)
  wall[$n]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  awk -F, -v n=$n -v w="${wall[$n]}" -v N="$N" 'NR>1 && $2=="done" {
      c++; for (k = 10; k <= 15; k++) s[k] += $k }
    END {
      printf "%d rank%s: %.2f s wall for %d cases = %.1f cases/min", n, (n > 1 ? "s" : " "), w, c, 60 * c / w
      printf " | mean s/case: load %.3f measure %.3f synthesis %.3f grade %.4f images %.4f journal %.4f\n",
        s[10]/c, s[11]/c, s[12]/c, s[13]/c, s[14]/c, s[15]/c }' "$W/r$n/cases.csv"
done
# fixed cost: the 1-rank command again, nothing left to run
t0=$(date +%s.%N)
mpirun -n 1 "$HV" run configs/phantom.ini --set input.source=dataset \
  --set input.dataset="$W/data" --set input.split="$W/data/split.json" \
  --set output.dir="$W/r1" --set run.progress_interval=1000 >"$W/r1-again.log" 2>&1
t1=$(date +%s.%N)
fixed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
# ceiling: two independent processes, half of the cohort each, at once
t0=$(date +%s.%N)
for k in 0 1; do
  "$HV" run configs/phantom.ini --set input.source=dataset --set input.dataset="$W/data" \
    --set input.split="$W/data/split.json" --set output.dir="$W/ceil" \
    --set run.shard_count=2 --set run.shard_index=$k --set run.progress_interval=1000 \
    >"$W/ceil-$k.log" 2>&1 &
done
wait
t1=$(date +%s.%N)
ceil=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
awk -v a="${wall[1]}" -v b="${wall[2]}" -v f="$fixed" -v c="$ceil" -v N="$N" 'BEGIN {
  printf "fixed cost of a run (start, manifest, store rebuild, grading, outputs; nothing to run): %.2f s\n", f
  printf "two independent 1-process shards at once (machine ceiling for 2-way): %.2f s wall = %.1f cases/min\n", c, 60 * N / c
  printf "speed-up 2 ranks vs 1 (wall): %.2fx, parallel efficiency %.0f %%\n", a / b, 50 * a / b
  printf "work loop only (wall minus fixed cost): 1 rank %.1f, 2 ranks %.1f cases/min, speed-up %.2fx\n", 60 * N / (a - f), 60 * N / (b - f), (a - f) / (b - f)
  printf "2-rank run vs the 2-process ceiling: %.0f %% of its throughput\n", 100 * c / b }'
if cmp -s "$W/r1/vertebrae.csv" "$W/r2/vertebrae.csv"; then echo "vertebra tables of 1 and 2 ranks: identical"; else echo "vertebra tables DIFFER"; fi
grep -h '^grader\|^metrics' "$W/r1/summary.md" || true
echo
echo "# per-case machinery (bench_store, 100000 case slots)"
for n in 1 2; do
  rm -rf "$W/bs"; mpirun -n $n --oversubscribe "$B/bench/bench_store" "$W/bs" 100000
done
} | tee "$out"
