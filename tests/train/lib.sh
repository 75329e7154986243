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
