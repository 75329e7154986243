#!/usr/bin/env bash
# The training file's item cache (train.item_cache_mb) does not change what
# a training computes: the same training on 2 ranks (global batch 4, 5 steps
# that cross into the second epoch, where items drawn before come again,
# validation at steps 0, 2, 4 and 5) with the default budget, where every
# item stays resident, and with 1 MiB, less than one item, where each step
# evicts the last step's items and reads its own again, reaches bitwise the
# same weights, the same losses.csv (its seconds_per_step column aside), the
# same val.csv and the same sample grids. The logs' cache lines show that the
# small budget really evicted and read items again (else the comparison
# would prove nothing).
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6
COHORT=$TCFG   # tests/mpi/lib.sh checks that a config exists
TRAIN_CMD=${TRAIN_CMD:-train} TRAIN_SEC=${TRAIN_SEC:-train}
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

if [ "$TRAIN_SEC" = train ]; then
  S=(--set train.max_steps=5 --set train.val_every=2)
  NCOL=13 # losses.csv: the columns before seconds_per_step
else
  S=(--set classifier.steps=6 --set classifier.val_every=3)
  NCOL=3
fi
train_hv 2 "$WORK/all" "${S[@]}"; rca=$?
train_hv 2 "$WORK/small" "${S[@]}" --set "$TRAIN_SEC.item_cache_mb=1"; rcs=$?
check "default budget: exits 0 (got $rca; $WORK/all.log)" [ $rca -eq 0 ]
check "1 MiB: exits 0 (got $rcs; $WORK/small.log)" [ $rcs -eq 0 ]
check "default budget: every item fits" grep -q "item_cache_mb 4096 MiB per rank: all fit" "$WORK/all.log"
check "1 MiB: no item fits" grep -q "item_cache_mb 1 MiB per rank: 0 fit" "$WORK/small.log"
# "[rank R] info: item cache: N reads, E evictions, ..." of rank R in LOG
reads() { sed -n "s/^\[rank $2\] info: item cache: \([0-9]*\) reads, .*/\1/p" "$1"; }
evictions() { sed -n "s/^\[rank $2\] info: item cache: [0-9]* reads, \([0-9]*\) evictions.*/\1/p" "$1"; }
for r in 0 1; do
  ra=$(reads "$WORK/all.log" $r) rs=$(reads "$WORK/small.log" $r)
  ea=$(evictions "$WORK/all.log" $r) es=$(evictions "$WORK/small.log" $r)
  echo "# rank $r: default budget ${ra:-?} reads, ${ea:-?} evictions; 1 MiB ${rs:-?} reads, ${es:-?} evictions"
  check "rank $r, default budget: no eviction" [ "${ea:-x}" = 0 ]
  check "rank $r, 1 MiB: evictions" [ "${es:-0}" -gt 0 ]
  check "rank $r, 1 MiB: items read again (${rs:-?} reads > ${ra:-?})" [ "${rs:-0}" -gt "${ra:-0}" ]
done
check "checkpoints bitwise equal" same_weights "$WORK/all/checkpoint.h5" "$WORK/small/checkpoint.h5" 0
check "losses.csv equal (seconds aside)" \
  cmp -s <(cut -d, -f1-$NCOL "$WORK/all/losses.csv") <(cut -d, -f1-$NCOL "$WORK/small/losses.csv")
check "losses.csv has its rows" [ "$(grep -c '^[0-9]' "$WORK/all/losses.csv")" -ge 5 ]
check "val.csv equal" cmp -s "$WORK/all/val.csv" "$WORK/small/val.csv"
check "val.csv has rows" [ "$(grep -c '^[0-9]' "$WORK/all/val.csv")" -ge 3 ]
if [ "$TRAIN_SEC" = train ]; then
  n=0
  for f in "$WORK/all/samples"/*.png; do
    n=$((n + 1))
    check "sample grid $(basename "$f") equal" cmp -s "$f" "$WORK/small/samples/$(basename "$f")"
  done
  check "4 sample grids (steps 0, 2, 4, 5; got $n)" [ $n -eq 4 ]
else
  check "classifier.h5 weights equal" same_weights "$WORK/all/classifier.h5" "$WORK/small/classifier.h5" 0
fi
finish
