# lib.sh: shared functions of the tests/train shell tests (sourced after
# tests/mpi/lib.sh, which provides check/bad/finish/die and the Open MPI
# settings). Variables from CTest's command line:
#   HV       the healthivert binary       TRAINSET  the fixture's training file
#   MPIEXEC  mpiexec                      CKDIFF    hv_ckpt_diff
#   WORK     scratch folder (tmp-*)       TCFG      tests/train/train.ini
[ -f "${TRAINSET:-}" ] || { echo "not ok: training file '${TRAINSET:-}' missing (fixture train_data)"; exit 1; }
[ -x "${CKDIFF:-}" ] || { echo "not ok: hv_ckpt_diff '${CKDIFF:-}' missing"; exit 1; }

# The command and its config section: `train` / [train] unless the sourcing
# script set TRAIN_CMD=train-classifier TRAIN_SEC=classifier.
TRAIN_CMD=${TRAIN_CMD:-train}
TRAIN_SEC=${TRAIN_SEC:-train}

# train_hv NRANKS OUTDIR [args...]: the small training; NRANKS 0 = singleton.
# stdout+stderr go to OUTDIR.log; returns the exit status.
train_hv() {
  local n=$1 out=$2; shift 2
  mkdir -p "$(dirname "$out")"
  if [ "$n" -eq 0 ]; then
    train_file "$TRAINSET" "$out" "$@"
  else
    "$MPIEXEC" -n "$n" --oversubscribe "$HV" "$TRAIN_CMD" "$TCFG" --set "$TRAIN_SEC.file=$TRAINSET" \
      --set "$TRAIN_SEC.output=$out" "$@" >"$out.log" 2>&1
  fi
}

# train_file FILE OUTDIR [args...]: the singleton training on training file
# FILE (a bad one, to be refused); stdout+stderr to OUTDIR.log; returns the
# exit status.
train_file() {
  local file=$1 out=$2; shift 2
  "$HV" "$TRAIN_CMD" "$TCFG" --set "$TRAIN_SEC.file=$file" --set "$TRAIN_SEC.output=$out" \
    "$@" >"$out.log" 2>&1
}

# train_bg OUTDIR [args...]: the singleton training in the background (to be
# killed), stdout+stderr to OUTDIR-1.log (the re-run's log is train_hv's
# OUTDIR.log); its process id in $pid.
train_bg() {
  local out=$1; shift
  "$HV" "$TRAIN_CMD" "$TCFG" --set "$TRAIN_SEC.file=$TRAINSET" --set "$TRAIN_SEC.output=$out" \
    "$@" >"$out-1.log" 2>&1 &
  pid=$!
}

# expect RC PATTERN LOG WHAT RC_GOT: the exit status RC_GOT is RC and LOG
# matches the extended regular expression PATTERN (two checks named WHAT).
expect() {
  check "$4: exit $1 (got $5; $3)" [ "$5" -eq "$1" ]
  check "$4: message matches '$2' ($(grep -v '^\[' "$3" | head -c 400))" grep -qE -- "$2" "$3"
}

# same_weights A B TOL: every dataset of the two checkpoints within TOL
# (relative to max(1, |a|)); the comparison's line goes to the test output.
same_weights() {
  local line rc
  line=$("$CKDIFF" "$1" "$2" "$3"); rc=$?
  echo "# $(basename "$(dirname "$1")") vs $(basename "$(dirname "$2")"): $line"
  return $rc
}

# kill_resume K [args...]: a real SIGKILL of the singleton training
# ($WORK/kill, checkpoints every step) once step K's checkpoint is written
# (then resuming is certain: a row of losses.csv comes before its step's
# checkpoint, and killed between the two the re-run started over and
# "resumed" was not in its log), then the same command: killed, the re-run
# exits 0, says it resumed and reaches $WORK/ref1's weights bitwise. The
# training's folder is in $out.
kill_resume() {
  local k=$1 rc; shift
  out="$WORK/kill"
  train_bg "$out" "$@" --set "$TRAIN_SEC.checkpoint_every=1"
  for _ in $(seq 1 6000); do # 2 minutes at most
    grep -q "checkpoint: step $k written" "$out-1.log" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
  done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rc=$?
  echo "# SIGKILL after $k step(s) (rc $rc)"
  check "SIGKILL: the training was killed mid-way (rc $rc)" [ $rc -eq 137 ]
  train_hv 0 "$out" "$@" --set "$TRAIN_SEC.checkpoint_every=1"; rc=$?
  check "SIGKILL: re-run exits 0 (got $rc; $out.log)" [ $rc -eq 0 ]
  check "SIGKILL: re-run resumed" grep -q 'resumed from the checkpoint' "$out.log"
  check "SIGKILL: resumed == uninterrupted (bitwise)" same_weights "$WORK/ref1/checkpoint.h5" "$out/checkpoint.h5" 0
}

# term_resume [args...]: SIGTERM to the singleton training ($WORK/term,
# checkpoints every step) once losses.csv has 2 steps: a checkpoint at the
# step in hand, exit 75 saying how to resume, the lock released; then the
# same command exits 0 and reaches $WORK/ref1's weights bitwise. The
# training's folder is in $out.
term_resume() {
  local rc
  out="$WORK/term"
  train_bg "$out" "$@" --set "$TRAIN_SEC.checkpoint_every=1"
  for _ in $(seq 1 2400); do # 2 minutes at most
    [ -s "$out/losses.csv" ] && [ "$(grep -c '^[0-9]' "$out/losses.csv")" -ge 2 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
  check "SIGTERM: exit 75 (got $rc)" [ $rc -eq 75 ]
  check "SIGTERM: says how to resume" grep -q 'run the same command again to resume' "$out-1.log"
  check "SIGTERM: lock released" [ ! -e "$out/train.lock" ]
  train_hv 0 "$out" "$@" --set "$TRAIN_SEC.checkpoint_every=1"; rc=$?
  check "SIGTERM: re-run exits 0 (got $rc)" [ $rc -eq 0 ]
  check "SIGTERM: resumed == uninterrupted (bitwise)" same_weights "$WORK/ref1/checkpoint.h5" "$out/checkpoint.h5" 0
}

# cuda_refused NRANKS: compute.device = cuda on NRANKS ranks ($WORK/cu) is
# refused before the output folder exists, saying why (this machine has no
# usable GPU, or the build no CUDA); where a device is usable, not checked.
cuda_refused() {
  local rc
  if "$HV" version 2>/dev/null | grep -qE '[1-9][0-9]* device\(s\)'; then
    echo "# a CUDA device is usable here: the cuda refusal is not checked"
  else
    train_hv "$1" "$WORK/cu" --set compute.device=cuda; rc=$?
    expect 1 "compute.device = cuda: (this build has no CUDA|no usable CUDA device)" "$WORK/cu.log" "cuda without a GPU" $rc
    check "cuda refused: no output folder" [ ! -e "$WORK/cu" ]
  fi
}
