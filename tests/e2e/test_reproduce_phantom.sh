#!/usr/bin/env bash
# test_reproduce_phantom.sh (label slow): configs/reproduce-phantom.ini as
# shipped (6 phantom cases, T12-L2; the methods baseline, gan with the
# shipped phantom generators, and senet3d), issue 15's "done when" on the
# shipped table:
#  - 2 ranks: exit 0, every method graded by the SVM protocol with 5 folds
#    (senet3d by its own network, same folds), the three table files, no
#    published table (the split is not VerSe 2019's);
#  - a re-run (everything finished: re-graded only) gives the same table.csv;
#  - 1 rank killed with SIGKILL during the gan method, then re-run: the
#    same table.csv, table.md and table.png as the 2-rank run (resume and
#    rank-count identity at once).
# About 15 minutes on 2 cores.
#
# usage: test_reproduce_phantom.sh HEALTHIVERT MPIEXEC SOURCE_DIR WORK
HV=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$(dirname "$0")/lib.sh"
out=$WORK/out
go() {
  (cd "$SRC" && "$MPIEXEC" -n 2 --oversubscribe "$HV" reproduce configs/reproduce-phantom.ini \
    --set "reproduce.output=$out") >"$WORK/$1.log" 2>&1
}
go first; rc=$?
check "reproduce-phantom.ini exits 0 (got $rc; $WORK/first.log)" [ $rc -eq 0 ]
for f in table.csv table.md table.png; do check "$f written" test -s "$out/$f"; done
for m in baseline gan senet3d; do
  check "$m graded, 5 folds" grep -q "^$m,ok,5," "$out/table.csv"
done
check "no published table" sh -c "! grep -q published '$out/table.md'"
cp "$out/table.csv" "$WORK/first.csv"
go again; rc=$?
check "re-run exits 0 (got $rc)" [ $rc -eq 0 ]
check "re-run: the same table.csv" cmp "$WORK/first.csv" "$out/table.csv"

# 1 rank (a singleton, no mpiexec), SIGKILL once a gan case is done
B=$WORK/b
(cd "$SRC" && exec "$HV" reproduce configs/reproduce-phantom.ini --set "reproduce.output=$B") \
  >"$WORK/b-killed.log" 2>&1 &
pid=$!
wait_done "$WORK/b-killed.log" 7 $pid 12000   # the baseline's 6 cases, then one of gan's
check "killed during gan (a gan case done, the run still going)" kill -0 $pid
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "no table after the kill" [ ! -e "$B/table.csv" ]
(cd "$SRC" && "$HV" reproduce configs/reproduce-phantom.ini --set "reproduce.output=$B") \
  >"$WORK/b.log" 2>&1; rc=$?
check "1 rank, re-run after kill -9: exit 0 (got $rc; $WORK/b.log)" [ $rc -eq 0 ]
check "the re-run resumed gan (1 to 5 of its cases finished earlier)" \
  grep -qE "ready: [1-5] case\(s\) to run, [1-5] finished earlier" "$WORK/b.log"
for f in table.csv table.md table.png; do
  check "1 rank after kill -9 = 2 ranks: $f" cmp "$out/$f" "$B/$f"
done
finish
