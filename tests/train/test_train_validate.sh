#!/usr/bin/env bash
# `healthivert train CONFIG --validate-model FILE`: one validation of a model
# file on train.file's val items, printed as val.csv rows, nothing written.
#  1. A 4-step training validating at its end (val.csv's last row):
#     --validate-model on its checkpoint.h5 (a model file:
#     /G/params) prints a "model" row equal, metric for metric, to the
#     training's own row of that step, and a copy_input row equal to the
#     training's step-0 baseline. The output folder is not created. (A
#     /params model file goes through the loader synthesis uses, whose
#     reading test_model_synth covers.) The same rows with an item cache of
#     1 MiB (train.item_cache_mb), less than one item.
#  2. Refusals, each before anything is written: another train.cnum (both widths
#     named), another train.plane, a missing file,
#     two ranks, and --validate-model without a file.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6
COHORT=$TCFG
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

out="$WORK/t"
train_hv 0 "$out" --set train.max_steps=4 --set train.val_every=4 --set train.checkpoint_every=4; rc=$?
check "training exits 0 (got $rc; $out.log)" [ $rc -eq 0 ]
v=$out/val.csv
check "val.csv: the two step-0 rows and step 4's" [ "$(grep -c '^4,' "$v")" -eq 1 ]

# row METHOD STEP FILE: the metric columns (n_items onwards) of that row
row() { awk -F, -v m="$1" -v s="$2" '$3 == m && $1 == s { $1 = $2 = $3 = ""; print }' "$3"; }

# validate OUT MODEL [args]: --validate-model into OUT.csv (stdout) and OUT.log
validate() {
  local o=$1 m=$2; shift 2
  "$HV" train "$TCFG" --set train.file="$TRAINSET" --set train.output="$WORK/never" \
    --validate-model "$m" "$@" >"$o.csv" 2>"$o.log"
}

validate "$WORK/ckpt" "$out/checkpoint.h5"; rc=$?
check "checkpoint.h5: exit 0 (got $rc; $(tail -c 300 "$WORK/ckpt.log"))" [ $rc -eq 0 ]
check "checkpoint.h5: the val.csv header" \
  [ "$(head -1 "$WORK/ckpt.csv")" = "$(head -1 "$v")" ]
check "checkpoint.h5: the model row = the training's step-4 row ($(row model 0 "$WORK/ckpt.csv") vs $(row network 4 "$v"))" \
  [ -n "$(row network 4 "$v")" -a "$(row model 0 "$WORK/ckpt.csv")" = "$(row network 4 "$v")" ]
check "checkpoint.h5: the copy_input row = the training's baseline" \
  [ -n "$(row copy_input 0 "$v")" -a "$(row copy_input 0 "$WORK/ckpt.csv")" = "$(row copy_input 0 "$v")" ]
check "checkpoint.h5: the log says what is validated on" \
  grep -q "validating .*checkpoint.h5 (sagittal, cnum 4) on [0-9]* val items" "$WORK/ckpt.log"
check "nothing written: no train.output folder" [ ! -e "$WORK/never" ]
# the val items read through a 1 MiB item cache (less than one item): the
# same rows, value for value
validate "$WORK/small" "$out/checkpoint.h5" --set train.item_cache_mb=1; rc=$?
check "item_cache_mb 1: exit 0 (got $rc; $(tail -c 300 "$WORK/small.log"))" [ $rc -eq 0 ]
check "item_cache_mb 1: rows printed" [ "$(grep -c '^0,' "$WORK/small.csv")" -eq 2 ]
check "item_cache_mb 1: the same rows as the default budget" cmp -s "$WORK/small.csv" "$WORK/ckpt.csv"

# 2. refusals
validate "$WORK/cnum" "$out/checkpoint.h5" --set train.cnum=8; rc=$?
check "another cnum refused: exit 1 (got $rc)" [ $rc -eq 1 ]
check "another cnum: both widths named ($(tail -c 300 "$WORK/cnum.log"))" \
  grep -qF "holds a generator of width cnum 4 (coarse_generator.conv1.conv.weight_orig is [4, 3, 5, 5]), the model being filled has cnum 8 ([8, 3, 5, 5])" "$WORK/cnum.log"
validate "$WORK/plane" "$out/checkpoint.h5" --set train.plane=coronal; rc=$?
check "another plane refused: exit 1 (got $rc)" [ $rc -eq 1 ]
check "another plane: both named" grep -q "is a sagittal model (/meta plane) and train.plane is coronal" "$WORK/plane.log"
validate "$WORK/missing" "$WORK/nosuch.h5"; rc=$?
check "a missing model file: exit 1 (got $rc)" [ $rc -eq 1 ]
check "a missing model file: named" grep -q "nosuch.h5" "$WORK/missing.log"
"$MPIEXEC" -n 2 --oversubscribe "$HV" train "$TCFG" --set train.file="$TRAINSET" \
  --set train.output="$WORK/never" --validate-model "$out/checkpoint.h5" >"$WORK/two.log" 2>&1; rc=$?
check "two ranks refused: exit 1 (got $rc)" [ $rc -eq 1 ]
check "two ranks: says to run without mpiexec" grep -q "start it without mpiexec" "$WORK/two.log"
"$HV" train "$TCFG" --set train.file="$TRAINSET" --validate-model >"$WORK/nofile.log" 2>&1; rc=$?
check "--validate-model without a file: exit 2 (got $rc)" [ $rc -eq 2 ]
check "refusals wrote nothing" [ ! -e "$WORK/never" ]
finish
