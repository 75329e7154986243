#!/usr/bin/env bash
# A stopped `healthivert train-classifier` writes its model file: after the
# checkpoint of the step in hand, classifier.h5 from the same weights, with
# /meta step = that step, total_steps and the marker /meta stopped; the
# classifier's own opener (hv_model_meta: hv_model_cam_open) loads it and
# warns that it is not a finished training. The same command resumes and
# the finished run overwrites it: step = total, no marker, bitwise the
# weights of a run that was never stopped.
#  1. SIGTERM to a singleton training after 2 or more steps (exit 75), and
#     SIGINT (Ctrl-C) the same way without the re-run;
#  2. SIGUSR1 to mpiexec, which hands it to both ranks (exit 75; one model
#     file line in the log: rank 0 alone writes);
#  3. a stop while a weight is NaN (hook HV_TEST_CLS_NAN_STOP_STEP=3): no
#     checkpoint and no model file are written, and the log says why.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 TCFG=$6 META=$7
COHORT=$TCFG
TRAIN_CMD=train-classifier TRAIN_SEC=classifier
source "$(dirname "$0")/../mpi/lib.sh"
source "$(dirname "$0")/lib.sh"
[ -x "${META:-}" ] || die "hv_model_meta '${META:-}' missing"
rm -rf "$WORK" && mkdir -p "$WORK"
N=40 # steps: long enough (about 0.15 s each here) that a stop lands before the end
S="--set classifier.steps=$N --set classifier.checkpoint_every=1"

# meta FILE KEY: the value of /meta KEY as the opener's reader sees it
# ("absent" when there is none; empty when the file does not open)
meta() {
  "$META" "$1" "$2" 2>/dev/null | sed -n -e "s/^$2=//p" -e "s/^$2 absent\$/absent/p"
}

# wait_rows OUT PID: until OUT/losses.csv has 2 steps or the process ended
wait_rows() {
  for _ in $(seq 1 1200); do
    [ -s "$1/losses.csv" ] && [ "$(grep -c '^[0-9]' "$1/losses.csv")" -ge 2 ] && return
    kill -0 "$2" 2>/dev/null || return
    sleep 0.05
  done
}

# stopped_model WHAT OUT LOG: the checks of a model file written at a stop
stopped_model() {
  local what=$1 out=$2 log=$3 k
  k=$(meta "$out/checkpoint.h5" step)
  echo "# $what: stopped at step ${k:-?} of $N"
  local inside=0
  [ -n "$k" ] && [ "$k" -ge 2 ] && [ "$k" -lt "$N" ] && inside=1
  check "$what: the checkpoint holds a step before the end (${k:-none})" [ $inside -eq 1 ]
  check "$what: classifier.h5 written" [ -s "$out/classifier.h5" ]
  check "$what: no temporary file left" [ ! -e "$out/classifier.h5.tmp" ]
  "$META" "$out/classifier.h5" >"$out/meta.txt" 2>"$out/meta.err"; local rc=$?
  check "$what: the classifier's opener loads it (rc $rc; $(head -c 300 "$out/meta.err"))" [ $rc -eq 0 ]
  check "$what: width 2 read from the weights" grep -qx 'width=2' "$out/meta.txt"
  check "$what: /meta step = the checkpoint's step ($(meta "$out/classifier.h5" step))" \
    [ "$(meta "$out/classifier.h5" step)" = "$k" ]
  check "$what: /meta total_steps = $N" [ "$(meta "$out/classifier.h5" total_steps)" = "$N" ]
  check "$what: /meta stopped names the step ($(meta "$out/classifier.h5" stopped))" \
    grep -q "at a stop .* at step $k of $N: not a finished training" <(meta "$out/classifier.h5" stopped)
  check "$what: the opener warns that it is not a finished training" \
    grep -q "was written at a stop .* at step $k of $N" "$out/meta.err"
  check "$what: the log says the model was written at the stop" \
    grep -q "stopped at step $k of $N: model .*classifier.h5 written" "$log"
  check "$what: the last line says so" grep -q 'classifier.h5 marked as stopped' "$log"
}

# resumed_model WHAT OUT: the checks of the finished run after a stop
resumed_model() {
  local what=$1 out=$2
  check "$what: re-run resumed" grep -q 'resumed from the checkpoint' "$out.log"
  check "$what: /meta step = $N" [ "$(meta "$out/classifier.h5" step)" = "$N" ]
  check "$what: no stop marker ($(meta "$out/classifier.h5" stopped))" \
    [ "$(meta "$out/classifier.h5" stopped)" = absent ]
  "$META" "$out/classifier.h5" >/dev/null 2>"$out/meta-end.err"
  check "$what: the opener does not warn" [ ! -s "$out/meta-end.err" ]
}

# the uninterrupted references (1 and 2 ranks)
train_hv 0 "$WORK/ref1" $S; rc=$?
check "singleton reference exits 0 (got $rc)" [ $rc -eq 0 ]
check "reference: /meta step = $N" [ "$(meta "$WORK/ref1/classifier.h5" step)" = "$N" ]
check "reference: no stop marker" [ "$(meta "$WORK/ref1/classifier.h5" stopped)" = absent ]
train_hv 2 "$WORK/ref2" $S; rc=$?
check "2-rank reference exits 0 (got $rc)" [ $rc -eq 0 ]

# 1. SIGTERM, singleton
out="$WORK/term"
train_bg "$out" $S
wait_rows "$out" $pid
kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
check "SIGTERM: exit 75 (got $rc)" [ $rc -eq 75 ]
stopped_model SIGTERM "$out" "$out-1.log"
train_hv 0 "$out" $S; rc=$?
check "SIGTERM: re-run exits 0 (got $rc)" [ $rc -eq 0 ]
resumed_model SIGTERM "$out"
check "SIGTERM: the model file = the uninterrupted one (bitwise)" \
  same_weights "$WORK/ref1/classifier.h5" "$out/classifier.h5" 0

# 1b. SIGINT (Ctrl-C), singleton: a stop as SIGTERM's
out="$WORK/int"
train_bg "$out" $S
wait_rows "$out" $pid
kill -INT $pid 2>/dev/null; wait $pid; rc=$?
check "SIGINT: exit 75 (got $rc)" [ $rc -eq 75 ]
stopped_model SIGINT "$out" "$out-1.log"

# 2. SIGUSR1 to mpiexec, 2 ranks
out="$WORK/usr1"
mkdir -p "$out"
"$MPIEXEC" -n 2 --oversubscribe "$HV" train-classifier "$TCFG" --set "classifier.file=$TRAINSET" \
  --set "classifier.output=$out" $S >"$out-1.log" 2>&1 &
pid=$!
wait_rows "$out" $pid
kill -USR1 $pid 2>/dev/null; wait $pid; rc=$?
check "SIGUSR1, 2 ranks: exit 75 (got $rc)" [ $rc -eq 75 ]
stopped_model "SIGUSR1, 2 ranks" "$out" "$out-1.log"
check "SIGUSR1, 2 ranks: one rank wrote the model file ($(grep -c 'classifier.h5 written' "$out-1.log"))" \
  [ "$(grep -c 'classifier.h5 written' "$out-1.log")" -eq 1 ]
train_hv 2 "$out" $S; rc=$?
check "SIGUSR1, 2 ranks: re-run exits 0 (got $rc)" [ $rc -eq 0 ]
resumed_model "SIGUSR1, 2 ranks" "$out"
check "SIGUSR1, 2 ranks: the model file = the uninterrupted one (bitwise)" \
  same_weights "$WORK/ref2/classifier.h5" "$out/classifier.h5" 0

# 3. a stop with a NaN weight (checkpoints every 2 steps: step 2's is the last good one)
out="$WORK/nan"
HV_TEST_CLS_NAN_STOP_STEP=3 train_hv 0 "$out" --set classifier.steps=$N; rc=$?
expect 1 "not writing a checkpoint with a non-finite weight" "$out.log" "NaN at a stop" $rc
check "NaN at a stop: the log says the model file is not written either" \
  grep -q "stopped at step 3 of $N: the model file .*classifier.h5 is not written either" "$out.log"
check "NaN at a stop: no classifier.h5" [ ! -e "$out/classifier.h5" ]
check "NaN at a stop: no temporary file left" [ ! -e "$out/classifier.h5.tmp" ]
check "NaN at a stop: the checkpoint keeps step 2" [ "$(meta "$out/checkpoint.h5" step)" = 2 ]
finish
