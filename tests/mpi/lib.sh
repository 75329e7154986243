# lib.sh: shared helpers of the tests/mpi and tests/slurm shell tests.
#
# Sourced by each test with these variables set by CTest's command line:
#   HV        path of the healthivert binary
#   MPIEXEC   path of mpiexec
#   WORK      scratch folder of the test (wiped first)
#   COHORT    tests/mpi/cohort.ini (the small phantom cohort)
# Every check that fails prints "not ok ..." and the test exits 1 at the end;
# `finish` prints the "N passed, N failed" line the C tests print too.
set -u
# Refuse to start on wrong arguments: WORK is wiped, so it must look like a
# scratch folder (tmp-* or t-*), and the binary and cohort must exist.
case "$(basename "${WORK:-}")" in
  tmp-*|t-*) ;;
  *) echo "not ok: scratch folder '${WORK:-}' must be named tmp-* or t-*"; exit 1;;
esac
[ -x "${HV:-}" ] || { echo "not ok: healthivert binary '${HV:-}' not found"; exit 1; }
[ -f "${COHORT:-}" ] || { echo "not ok: cohort config '${COHORT:-}' not found"; exit 1; }
pass=0
failn=0
ok() { pass=$((pass + 1)); }
bad() { failn=$((failn + 1)); echo "not ok: $*"; }
check() { # check "what" command...
  local what=$1; shift
  if "$@"; then ok; else bad "$what"; fi
}
finish() {
  echo "$pass passed, $failn failed"
  [ "$failn" -eq 0 ]
  exit $?
}
die() { echo "not ok: $*"; echo "$pass passed, $((failn + 1)) failed"; exit 1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Keep Open MPI quiet and local: no network probing in CI containers.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1

# run_hv NRANKS OUTDIR [args...]: run the small cohort; NRANKS 0 = singleton.
# A test may set the array HV_RUN_EXTRA to options every run gets.
HV_RUN_EXTRA=()
# stdout+stderr go to OUTDIR.log; returns the exit status.
run_hv() {
  local n=$1 out=$2; shift 2
  mkdir -p "$(dirname "$out")"
  if [ "$n" -eq 0 ]; then
    "$HV" run "$COHORT" --set output.dir="$out" "${HV_RUN_EXTRA[@]}" "$@" >"$out.log" 2>&1
  else
    "$MPIEXEC" -n "$n" --oversubscribe "$HV" run "$COHORT" --set output.dir="$out" \
      "${HV_RUN_EXTRA[@]}" "$@" \
      >"$out.log" 2>&1
  fi
}

# same_results A B: identical vertebra tables, grader results (with the SVM's
# folds and rows where written) and case outcomes
# (rank, attempt and timings are allowed to differ).
same_results() {
  local a=$1 b=$2 f rc=0
  for f in vertebrae.csv grader_metrics.csv; do
    if ! cmp -s "$a/$f" "$b/$f"; then echo "  $f differs between $a and $b"; rc=1; fi
  done
  for f in grader_folds.csv grading_rows.csv; do
    if [ -f "$a/$f" ] || [ -f "$b/$f" ]; then
      cmp -s "$a/$f" "$b/$f" || { echo "  $f differs between $a and $b"; rc=1; }
    fi
  done
  # case, status, n_vert never contain commas; error_code is column 6
  if ! diff <(cut -d, -f1-3,6 "$a/cases.csv") <(cut -d, -f1-3,6 "$b/cases.csv") >/dev/null; then
    echo "  case outcomes differ between $a and $b"; rc=1
  fi
  return $rc
}

# journal_records DIR: number of complete records in the journals (by size of
# files is not enough: count magic words with od).
journal_bytes() { cat "$1"/journal/rank-*.log 2>/dev/null | wc -c; }

store_state() { "$HV" inspect "$1/store.h5" 2>/dev/null | sed -n 's/^state: *//p'; }

# valid STORE: `healthivert inspect` validates it (output kept out of the log).
valid() { "$HV" inspect "$1" >/dev/null 2>&1; }
