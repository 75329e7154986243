#!/usr/bin/env bash
# A short phantom training learns (issue 11): after STEPS steps on 2 ranks the
# validation's band L1 and height error are below both baselines of val.csv,
# "copy the input" and the untrained network (step 0), by the margins below
# (stated from measurements); the curves and sample grids are written.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6
COHORT=$TCFG
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
STEPS=${HV_TRAIN_LEARN_STEPS:-20}
out="$WORK/learn"
train_hv 2 "$out" --set train.max_steps=$STEPS --set train.val_every=$STEPS \
  --set train.checkpoint_every=$STEPS --set train.n_epochs=1000 --set train.lr=0.001 \
  --set train.log_every=10; rc=$?
check "training exits 0 (got $rc; $out.log)" [ $rc -eq 0 ]
v=$out/val.csv
check "val.csv: the copy baseline and 2 validations (3 rows + header)" [ "$(wc -l <"$v")" -eq 4 ]
cat "$v" | sed 's/^/# /'
col() { awk -F, -v m="$1" -v s="$2" -v c="$3" '$3 == m && $1 == s { print $c }' "$v"; }
copy_l1=$(col copy_input 0 5); untr_l1=$(col network 0 5); last_l1=$(col network $STEPS 5)
copy_h=$(col copy_input 0 9); untr_h=$(col network 0 9); last_h=$(col network $STEPS 9)
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }
# Measured (this fixture, 20 steps at lr 0.001): band L1 0.392 (copy the
# input), 0.665 (untrained), 0.120 (trained; seed 3, 2 ranks: this test) and
# 0.293 (seed 1, 1 rank: results/train-phantom.md); height error 58.3 %,
# 100 %, 11.8 % (seed 1: 9.1 %). Required: the trained network at least 0.05
# below both in band L1 (holds for both seeds) and 20 points below both in
# height error: a training that did not move, or moved only the height head
# or only the image, fails.
check "band L1 $last_l1 < copy the input $copy_l1 - 0.05" lt "$last_l1" "$(awk -v x="$copy_l1" 'BEGIN{print x - 0.05}')"
check "band L1 $last_l1 < untrained $untr_l1 - 0.05" lt "$last_l1" "$(awk -v x="$untr_l1" 'BEGIN{print x - 0.05}')"
check "height error $last_h % < copy the input $copy_h % - 20" lt "$last_h" "$(awk -v x="$copy_h" 'BEGIN{print x - 20}')"
check "height error $last_h % < untrained $untr_h % - 20" lt "$last_h" "$(awk -v x="$untr_h" 'BEGIN{print x - 20}')"
for f in val_band_l1.png val_height_err_pct.png val_psnr.png val_ssim.png val_dice.png \
         samples/step-00000000.png "samples/$(printf 'step-%08d.png' $STEPS)" losses.csv checkpoint.h5; do
  check "$f written" [ -s "$out/$f" ]
done
check "progress with ETA on rank 0" grep -qE 'step [0-9]+/'$STEPS' .* ETA ' "$out.log"
finish
