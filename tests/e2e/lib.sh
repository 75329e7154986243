# lib.sh: the prelude the tests/e2e shell tests share.
#
# Sourced after HV, MPIEXEC, SRC and WORK are set: refuses a scratch folder
# not named tmp-* (it is wiped), wipes and creates it, and defines check
# ("what" command...: counts, prints "not ok: what" on failure) and finish
# (prints "N passed, N failed" and exits 1 on any failure).
set -u
case "$(basename "$WORK")" in tmp-*) ;; *) echo "not ok: WORK must be tmp-*"; exit 1;; esac
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
pass=0 failn=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else failn=$((failn + 1)); echo "not ok: $what"; fi; }
finish() { echo "$pass passed, $failn failed"; [ "$failn" -eq 0 ]; exit $?; }
export OMPI_MCA_rmaps_base_oversubscribe=1
