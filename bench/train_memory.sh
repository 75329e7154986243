#!/usr/bin/env bash
# Memory and speed of `healthivert train` / `train-classifier` against the
# item cache's budget (train.item_cache_mb, classifier.item_cache_mb): peak
# resident set (/usr/bin/time -v, "Maximum resident set size") and seconds
# per step (losses.csv, the median of steps 2..N: step 1 also plans the
# graphs) at the default budget (every item stays resident once read) and at
# 1 MiB (less than one item: each step reads its items again), in the same
# run of this script, so the ratio small/default is measured under the same
# machine load. One process (no mpiexec: its RSS is the rank's),
# OMP_NUM_THREADS=1, validation off (val_every = 0: the steps only).
#
#   [STEPS=6] [CLS=0] bench/train_memory.sh BUILD_DIR OUT_DIR NAME=TRAINING_FILE...
#
# Each NAME=FILE is a training file (healthivert prepare); the GAN trains on
# each with configs/train-phantom.ini (cnum 8, ndf 8, batch 4) for STEPS
# steps (default 6), the classifier (configs/train-classifier-phantom.ini)
# where CLS=1 and the file has fractures in its train split. One line per
# run on stdout: name, command, budget, peak RSS MiB, s/step, the cache's
# reads/evictions/read seconds; the runs' logs under OUT_DIR.
set -uo pipefail
B=$1 OUT=$2; shift 2
HV=$B/bin/healthivert
STEPS=${STEPS:-6}
CLS=${CLS:-0}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
printf '%-10s %-17s %8s %9s %7s %s\n' file command budget peak_MiB s/step "cache (rank 0)"
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
one() { # one NAME CMD SECTION CONFIG BUDGET(default|MB) STEPKEY
  local name=$1 cmd=$2 sec=$3 cfg=$4 budget=$5 stepkey=$6 file=$7
  local dir="$OUT/$name-$cmd-$budget"
  rm -rf "$dir"
  local extra=()
  [ "$budget" != default ] && extra=(--set "$sec.item_cache_mb=$budget")
  /usr/bin/time -v "$HV" "$cmd" "$cfg" --set "$sec.file=$file" --set "$sec.output=$dir" \
    --set "$sec.$stepkey=$STEPS" --set "$sec.val_every=0" --set "$sec.log_every=1" \
    --set "$sec.progress_interval=0" --set "$sec.threads=1" "${extra[@]}" >"$dir.log" 2>&1
  local rc=$?
  local rss sps cache
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$dir.log")
  sps=$(awk -F, 'NR > 2 { print $NF }' "$dir/losses.csv" 2>/dev/null | median)
  cache=$(sed -n 's/.*info: item cache: \([0-9]* reads.*\)/\1/p' "$dir.log" | tail -1)
  printf '%-10s %-17s %8s %9.0f %7s %s%s\n' "$name" "$cmd" "$budget" "$((rss / 1024))" "$sps" \
    "$cache" "$([ $rc -eq 0 ] || echo " (exit $rc, $dir.log)")"
}
for nf in "$@"; do
  name=${nf%%=*} file=${nf#*=}
  for budget in default 1; do
    one "$name" train train configs/train-phantom.ini "$budget" max_steps "$file"
  done
  if [ "$CLS" = 1 ]; then
    for budget in default 1; do
      one "$name" train-classifier classifier configs/train-classifier-phantom.ini "$budget" steps "$file"
    done
  fi
done
