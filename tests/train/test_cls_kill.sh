#!/usr/bin/env bash
# Kills and resumes of `healthivert train-classifier` (issue 13): a training
# stopped at any point and run again with the same command reaches the SAME
# weights as one that was never stopped (bitwise: same rank count, batches
# keyed by (seed, epoch, list position), Adam state, running statistics and
# step in the checkpoint).
#  1. HV_CRASH_AT=train-step:3 on 2 ranks (both SIGKILL themselves after their
#     3rd step; the last checkpoint is step 2), then the same command;
#  2. a real SIGKILL from this script at a random step of a singleton
#     training (checkpoints every step, so the kill may land in a write);
#  3. SIGTERM: a checkpoint at the step in hand, exit 75, then the same command;
# each against the uninterrupted run of the same rank count, 5 steps, with
# validation every 2 steps (val.csv of the resumed run = the uninterrupted
# one's) and the model file classifier.h5 written at the end.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6
COHORT=$TCFG
TRAIN_CMD=train-classifier TRAIN_SEC=classifier
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
S="--set classifier.steps=5 --set classifier.val_every=2"

train_hv 2 "$WORK/ref2" $S; rc=$?
check "2-rank reference exits 0 (got $rc)" [ $rc -eq 0 ]
train_hv 0 "$WORK/ref1" $S --set classifier.checkpoint_every=1; rc=$?
check "singleton reference exits 0 (got $rc)" [ $rc -eq 0 ]
check "reference: the model file written" [ -s "$WORK/ref1/classifier.h5" ]
check "reference: val.csv has steps 0, 2, 4, 5" \
  [ "$(cut -d, -f1 "$WORK/ref1/val.csv" | tr '\n' ' ')" = "step 0 2 4 5 " ]
for p in auc sensitivity specificity recall loss; do
  check "reference: val_$p.png drawn" [ -s "$WORK/ref1/val_$p.png" ]
done

# 1. crash hook on both ranks after step 3
HV_CRASH_AT=train-step:3 train_hv 2 "$WORK/crash" $S; rc=$?
check "crash: the training died (rc $rc)" [ $rc -ne 0 ]
check "crash: the hook fired" grep -q "crash point 'train-step' reached" "$WORK/crash.log"
check "crash: checkpoint of step 2 left" grep -q 'checkpoint: step 2 written' "$WORK/crash.log"
check "crash: no model file yet" [ ! -e "$WORK/crash/classifier.h5" ]
mv "$WORK/crash.log" "$WORK/crash-1.log"
train_hv 2 "$WORK/crash" $S; rc=$?
check "crash: re-run exits 0 (got $rc)" [ $rc -eq 0 ]
check "crash: re-run resumes at step 2" grep -q 'steps 2..5 of 5 .*resumed from the checkpoint' "$WORK/crash.log"
check "crash: resumed == uninterrupted (bitwise)" same_weights "$WORK/ref2/checkpoint.h5" "$WORK/crash/checkpoint.h5" 0
check "crash: the same model file (bitwise)" same_weights "$WORK/ref2/classifier.h5" "$WORK/crash/classifier.h5" 0
check "crash: losses.csv has each step once (5 + header)" [ "$(wc -l <"$WORK/crash/losses.csv")" -eq 6 ]
check "crash: losses.csv equal to the uninterrupted one but the timing column" \
  diff <(cut -d, -f1-3 "$WORK/ref2/losses.csv") <(cut -d, -f1-3 "$WORK/crash/losses.csv")
check "crash: val.csv equal to the uninterrupted one" diff "$WORK/ref2/val.csv" "$WORK/crash/val.csv"

# 2. a real SIGKILL at a random step (1..3 finished steps) of a singleton
kill_resume $(( (RANDOM % 3) + 1 )) $S
check "SIGKILL: val.csv equal to the uninterrupted one" diff "$WORK/ref1/val.csv" "$out/val.csv"

# 3. SIGTERM: checkpoint and exit 75, then resume
term_resume $S
finish
