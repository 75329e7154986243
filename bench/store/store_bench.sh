#!/usr/bin/env bash
# Store size per case for each output.images setting (none, qc, full), with
# the ratio to the uncompressed size, and the write-time cost per case.
# Results: results/store-size.txt (with this command line).
#
#   bench/store/store_bench.sh [BUILD_DIR] [CASES] [BASELINE_HV]   (from the repository root)
#
# The cohort is the main job's (configs/phantom.ini: T1-L5, 17 vertebrae,
# 1.5 mm, 20 HU noise), CASES cases (default 8), run on 2 ranks once per
# setting. Bytes per case = store.h5 size / CASES (the file's own size, what
# a copy or an archive of it costs; it includes the fixed part: provenance,
# grader, stage names). Uncompressed = the schema v2 layout of the same
# setting (contiguous, every one of the 26 slots per case allocated):
# 26 x (vertebra row 176 B + n_img x 4 KiB planes + 256 KiB QC slot) + case
# row 856 B + 8 stage seconds + 1 status byte. Write-time cost per case: the
# `store` stage seconds (PNG encoding + journal write + fdatasync, on the
# rank that ran the case) and rank 0's serial image pass at the end of the
# attempt divided by the cases it wrote. With BASELINE_HV (a healthivert
# binary of schema v2), the same runs with it give the measured "before".
set -euo pipefail
B=${1:-build}; N=${2:-8}; BASE=${3:-}
HV=$B/bin/healthivert
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
W=$(mktemp -d /tmp/hv-bench-store.XXXXXX)
trap 'rm -rf "$W"' EXIT
out=results/store-size.txt
mkdir -p results
# uncompressed (v2 layout) bytes per case of a setting with n_img planes
v2_bytes() { awk -v ni="$1" 'BEGIN { q = ni > 0 ? 262144 : 0
  printf "%d", 26 * (176 + ni * 4096 + q) + 856 + 8 * 8 + 1 }'; }
# run BINARY TAG IMAGES: one run, then its line
one() {
  local hv=$1 tag=$2 img=$3 d="$W/$2-$3"
  mpirun -n 2 --oversubscribe "$hv" run configs/phantom.ini --set phantom.cases="$N" \
    --set output.images="$img" --set output.dir="$d" --set run.progress_interval=1000 \
    >"$d.log" 2>&1 || { echo "run $tag $img failed: $d.log"; tail -5 "$d.log"; exit 1; }
  local size nv ni
  size=$(stat -c %s "$d/store.h5")
  nv=$(awk -F, 'NR > 1 { n++ } END { print n }' "$d/vertebrae.csv")
  case $img in none) ni=0;; qc) ni=1;; full) ni=3;; esac
  local sstore pass
  sstore=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "s_store") c = i; next }
                    $2 == "done" { s += $c; n++ } END { printf "%.4f", n ? s / n : 0 }' "$d/cases.csv")
  pass=$(sed -n 's/.*images of \([0-9]*\) case(s) of this attempt written into the store in \([0-9.]*\) s.*/\1 \2/p' "$d.log")
  awk -v tag="$tag" -v img="$img" -v size="$size" -v N="$N" -v nv="$nv" -v u="$(v2_bytes $ni)" \
      -v ss="$sstore" -v pass="$pass" 'BEGIN {
    split(pass, p, " "); per = (p[1] > 0) ? p[2] / p[1] : 0
    printf "%-8s images=%-4s  %d cases, %.1f vertebrae/case: store %.3f MB = %.4f MB/case; " \
           "uncompressed (v2 layout) %.3f MB/case; ratio %.4f (1/%.1f); write time/case: store stage %.3f s", \
           tag, img, N, nv / N, size / 1e6, size / N / 1e6, u / 1e6, size / N / u, u * N / size, ss
    if (p[1] > 0) printf ", end-of-attempt image pass %.4f s", per
    printf "\n" }'
}
{
echo "# healthivert store size per case ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc --all) cores, $(uname -m))"
echo "# command: bench/store/store_bench.sh $B $N${BASE:+ $BASE}"
echo "# git $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); cohort configs/phantom.ini, $N cases, 2 ranks"
for img in none qc full; do one "$HV" this "$img"; done
if [ -n "$BASE" ]; then
  echo "# baseline: $BASE ($("$BASE" version 2>/dev/null | head -1))"
  for img in none qc full; do one "$BASE" baseline "$img"; done
fi
} | tee "$out"
