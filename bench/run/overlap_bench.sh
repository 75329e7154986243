#!/usr/bin/env bash
# I/O overlap of `healthivert run` (run.prefetch, src/pipeline/loader.c) on a
# large CT: per case, the wall time against the load (reading and inflating
# the mask and the CT) and the compute (every other stage, journal, store)
# measured separately in the same run, from the runner's "timing:" lines.
# Goal of issue 16: wall ~ max(load, compute), not load + compute.
#
#   bench/run/overlap_bench.sh [BUILD_DIR] [CASES]     (from the repository root)
#
# The case: one phantom spine, T1-L5 at 0.8 mm (251 x 315 x 598 voxels, a
# 52 MB .nii.gz CT; the size of the issue's 287 x 360 x 598 CT), listed
# CASES times (default 6) in a manifest under different ids; the main job's
# config otherwise (configs/phantom.ini: QC pictures, rule grading). One
# rank, OMP_NUM_THREADS=1, run twice: run.prefetch = 1 (the next case is
# read on two helper threads while this one computes) and 0 (each case read
# when it starts). The first case of a run has nothing to overlap with and
# is left out of the medians. Results: results/run-overlap.txt.
set -euo pipefail
B=${1:-build}; N=${2:-6}
HV=$B/bin/healthivert
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
W=$(mktemp -d /tmp/hv-bench-overlap.XXXXXX)
trap 'rm -rf "$W"' EXIT
out=results/run-overlap.txt
mkdir -p results
{
echo "# healthivert run: load against compute per case ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc --all) cores, $(uname -m))"
echo "# command: bench/run/overlap_bench.sh $B $N"
echo "# git $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
echo "# load average at the start (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share the cores)"
"$HV" phantom --out "$W/data" --cases 1 --seed 3 --spacing 0.8 >/dev/null 2>&1
c=$W/data/raw/ph0000/ph0000
echo "case: phantom T1-L5 at 0.8 mm, CT $(du -h "$c.nii.gz" | cut -f1) gzip, mask $(du -h "${c}_msk.nii.gz" | cut -f1); $N cases (the same files under $N ids), 1 rank"
{ echo "id,ct,mask,centroids"
  for i in $(seq 1 "$N"); do printf 'o%03d,%s.nii.gz,%s_msk.nii.gz,%s.json\n' "$i" "$c" "$c" "$c"; done
} >"$W/manifest.csv"
for pf in 1 0; do
  t0=$(date +%s.%N)
  "$HV" run configs/phantom.ini --set input.source=manifest --set input.manifest="$W/manifest.csv" \
    --set output.dir="$W/r$pf" --set run.prefetch=$pf --set run.order=index \
    --set run.progress_interval=1000 >"$W/r$pf.log" 2>&1
  t1=$(date +%s.%N)
  echo
  echo "run.prefetch = $pf: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s for the whole run"
  # "case ID: timing: wall W s, load L s (...), compute C s, rss K kB"
  sed -n 's/.* case \([^:]*\): timing: wall \([0-9.]*\) s, load \([0-9.]*\) s (.*waited \([0-9.]*\) s, both files at once \([0-9.]*\) s), compute \([0-9.]*\) s, .*/\1 \2 \3 \4 \5 \6/p' \
    "$W/r$pf.log" >"$W/t$pf.txt"
  awk '{ printf "  %s: wall %.3f s | load %.3f s (waited %.3f, mask and CT both in flight %.3f) | compute %.3f s | wall/max %.2f wall/sum %.2f%s\n",
           $1, $2, $3, $4, $5, $6, $2 / ($3 > $6 ? $3 : $6), $2 / ($3 + $6), NR == 1 ? "  (first: not in the medians)" : "" }' "$W/t$pf.txt"
  awk 'NR > 1 { w[++n] = $2; l[n] = $3; c[n] = $6; a[n] = $2 / ($3 > $6 ? $3 : $6); s[n] = $2 / ($3 + $6) }
    function med(v, n,   i, j, x) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
    END { printf "  median of cases 2..%d: wall %.3f s, load %.3f s, compute %.3f s; wall / max(load, compute) = %.2f, wall / (load + compute) = %.2f\n",
            n + 1, med(w, n), med(l, n), med(c, n), med(a, n), med(s, n) }' "$W/t$pf.txt"
done
if cmp -s "$W/r1/vertebrae.csv" "$W/r0/vertebrae.csv"; then echo; echo "vertebra tables with and without prefetch: identical"
else echo; echo "vertebra tables with and without prefetch DIFFER"; fi
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
