#!/usr/bin/env bash
# Kills and resumes (issue 11): a training stopped at any point and run again
# with the same command reaches the SAME weights as one that was never
# stopped (bitwise: the same rank count, batches keyed by (seed, epoch,
# item), Adam state and step in the checkpoint).
#  1. HV_CRASH_AT=train-step:3 on 2 ranks (both SIGKILL themselves after their
#     3rd step; the last checkpoint is step 2), then the same command;
#  2. a real SIGKILL from this script at a random step of a singleton
#     training (checkpoints every step, so the kill may land in a write);
#  3. SIGTERM: a checkpoint at the step in hand, exit 75, then the same command;
# each against the uninterrupted run of the same rank count, 4 steps.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6
COHORT=$TCFG
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
S="--set train.max_steps=4"

train_hv 2 "$WORK/ref2" $S; rc=$?
check "2-rank reference exits 0 (got $rc)" [ $rc -eq 0 ]
train_hv 0 "$WORK/ref1" $S --set train.checkpoint_every=1; rc=$?
check "singleton reference exits 0 (got $rc)" [ $rc -eq 0 ]

# 1. crash hook on both ranks after step 3
HV_CRASH_AT=train-step:3 train_hv 2 "$WORK/crash" $S; rc=$?
check "crash: the training died (rc $rc)" [ $rc -ne 0 ]
check "crash: the hook fired" grep -q "crash point 'train-step' reached" "$WORK/crash.log"
check "crash: checkpoint of step 2 left" grep -q 'checkpoint: step 2 written' "$WORK/crash.log"
check "crash: no later checkpoint" bash -c '! grep -q "checkpoint: step [34] written" "$0"' "$WORK/crash.log"
mv "$WORK/crash.log" "$WORK/crash-1.log"
train_hv 2 "$WORK/crash" $S; rc=$?
check "crash: re-run exits 0 (got $rc)" [ $rc -eq 0 ]
check "crash: re-run resumes at step 2" grep -q 'steps 2..4 of 4 .*resumed from the checkpoint' "$WORK/crash.log"
check "crash: resumed == uninterrupted (bitwise)" same_weights "$WORK/ref2/checkpoint.h5" "$WORK/crash/checkpoint.h5" 0
check "crash: losses.csv has each step once (4 + header)" [ "$(wc -l <"$WORK/crash/losses.csv")" -eq 5 ]
check "crash: losses.csv equal to the uninterrupted one but the timing column" \
  diff <(cut -d, -f1-13 "$WORK/ref2/losses.csv") <(cut -d, -f1-13 "$WORK/crash/losses.csv")

# 2. a real SIGKILL at a random step (1..3 finished steps) of a singleton
kill_resume $(( (RANDOM % 3) + 1 )) $S

# 3. SIGTERM: checkpoint and exit 75, then resume
term_resume $S
finish
