#!/usr/bin/env bash
# Bad input to `healthivert train-classifier` (issue 13): each case checks
# the exit status, the message naming the bad input, and that nothing was
# written where the input was refused before training.
#  - a missing training file, and a file of another schema (a checkpoint);
#  - a train split with one class only (the GAN tests' training file: its
#    train split has no fracture);
#  - an empty val split with validation on (noval.h5);
#  - more ranks than items in a global batch, a batch above an epoch;
#  - a checkpoint of another config (width, lr): refused naming the keys,
#    untouched; --fresh starts over; fewer steps than the checkpoint has done
#    (refused, untouched; naming its step writes classifier.h5);
#  - config strictness ([train] keys are not [classifier] keys) and --keys.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6 NOVAL=$7 ONECLASS=$8
COHORT=$TCFG
TRAIN_CMD=train-classifier TRAIN_SEC=classifier
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

train_hv 0 "$WORK/good" --set classifier.steps=2; rc=$?
check "good training exits 0 (got $rc)" [ $rc -eq 0 ]
cp "$WORK/good/checkpoint.h5" "$WORK/good-ckpt.h5"

train_file "$WORK/nope.h5" "$WORK/o1"; rc=$?
expect 1 "classifier.file: .*nope.h5" "$WORK/o1.log" "missing training file" $rc
check "missing file: no output folder" [ ! -e "$WORK/o1" ]
train_file "$WORK/good-ckpt.h5" "$WORK/o2"; rc=$?
expect 1 "classifier.file: .*good-ckpt.h5" "$WORK/o2.log" "checkpoint as training file" $rc
check "other schema: no output folder" [ ! -e "$WORK/o2" ]

train_file "$ONECLASS" "$WORK/o3"; rc=$?
expect 1 "the train split has 0 fracture\(s\) \(grade >= 1\) and [0-9]+ non-fracture\(s\).*needs both classes" "$WORK/o3.log" "no fracture in train" $rc
check "no fracture: no output folder" [ ! -e "$WORK/o3" ]
train_file "$NOVAL" "$WORK/o5" --set classifier.val_every=5; rc=$?
expect 1 "the val split has no graded item" "$WORK/o5.log" "empty val split" $rc
check "empty val split: no output folder" [ ! -e "$WORK/o5" ]
train_hv 0 "$WORK/o6" --set classifier.batch=4000; rc=$?
expect 1 "an epoch lists [0-9]+ item\(s\).*fewer than one global batch \(classifier.batch = 4000\)" "$WORK/o6.log" "batch above an epoch" $rc
check "big batch: no output folder" [ ! -e "$WORK/o6" ]
train_hv 3 "$WORK/o7" --set classifier.batch=2; rc=$?
expect 1 "classifier.batch = 2 is smaller than the number of ranks \(3\)" "$WORK/o7.log" "3 ranks, batch 2" $rc

# a checkpoint of another config
cp -r "$WORK/good" "$WORK/w"
train_hv 0 "$WORK/w" --set classifier.steps=4 --set classifier.width=4; rc=$?
expect 1 "trained with another config \(classifier.width=2 \(checkpoint\) vs 4 \(now\)\)" "$WORK/w.log" "another width" $rc
check "another width: checkpoint untouched" cmp -s "$WORK/w/checkpoint.h5" "$WORK/good-ckpt.h5"
train_hv 0 "$WORK/w" --set classifier.steps=4 --set classifier.lr=0.002; rc=$?
expect 1 "classifier.lr=0.0001 \(checkpoint\) vs 0.002 \(now\).*classifier.fresh = 1" "$WORK/w.log" "another lr" $rc
check "another config: checkpoint untouched" cmp -s "$WORK/w/checkpoint.h5" "$WORK/good-ckpt.h5"
train_hv 0 "$WORK/w" --set classifier.steps=4 --set classifier.lr=0.002 --fresh; rc=$?
check "--fresh starts over (rc $rc)" grep -q 'steps 0..4 of 4' "$WORK/w.log"
# more steps only (not a results key): continues
train_hv 0 "$WORK/good" --set classifier.steps=3; rc=$?
check "more steps continue the finished training (rc $rc)" grep -q 'steps 2..3 of 3 .*resumed' "$WORK/good.log"
# fewer steps than the checkpoint has done: refused, untouched; the steps it
# names write the model file of those weights
cp "$WORK/good/checkpoint.h5" "$WORK/good3-ckpt.h5"
rm -f "$WORK/good/classifier.h5"
train_hv 0 "$WORK/good" --set classifier.steps=2; rc=$?
expect 1 "checkpoint.h5 is at step 3, past the 2 step\(s\) now planned .*set classifier.steps = 3 to finish" "$WORK/good.log" "steps lowered below the checkpoint" $rc
check "steps lowered: checkpoint untouched" cmp -s "$WORK/good/checkpoint.h5" "$WORK/good3-ckpt.h5"
train_hv 0 "$WORK/good" --set classifier.steps=3; rc=$?
check "the steps named write classifier.h5 (rc $rc)" [ $rc -eq 0 -a -s "$WORK/good/classifier.h5" ]

# compute.device: cuda refused before the output folder exists (no usable
# GPU here, or no CUDA in the build); a bad value is a config error
cuda_refused 0
"$HV" train-classifier "$TCFG" --set compute.device=gpu >"$WORK/c0.log" 2>&1; rc=$?
expect 2 "one of: auto, cpu, cuda" "$WORK/c0.log" "bad compute.device" $rc

# config strictness
"$HV" train-classifier "$TCFG" --set train.cnum=4 >"$WORK/c1.log" 2>&1; rc=$?
expect 2 "train" "$WORK/c1.log" "a [train] key" $rc
"$HV" train-classifier "$TCFG" --set classifier.balance=oversample >"$WORK/c2.log" 2>&1; rc=$?
expect 2 "one of: none, sample" "$WORK/c2.log" "bad balance" $rc
"$HV" train-classifier --keys >"$WORK/keys.log" 2>&1; rc=$?
check "--keys exits 0" [ $rc -eq 0 ]
for k in file output seed width batch lr beta1 beta2 steps epochs threshold balance flip \
         checkpoint_every val_every log_every threads progress_interval; do
  check "--keys lists classifier.$k" grep -q "^classifier.$k = " "$WORK/keys.log"
done
check "--keys lists compute.device" grep -q "^compute.device = auto" "$WORK/keys.log"
finish
