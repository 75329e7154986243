#!/usr/bin/env bash
# test_reproduce_phantom.sh (label slow): configs/reproduce-phantom.ini as
# shipped (6 phantom cases, T12-L2, baseline + gan with the shipped
# phantom generators) on 2 ranks: exit 0, both methods graded by the SVM
# protocol with 5 folds, the three table files, no published table (the
# split is not VerSe 2019's), and a re-run (everything finished: re-graded
# only) gives the same table.csv. About 4 minutes on 2 cores.
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
check "baseline graded, 5 folds" grep -q '^baseline,ok,5,' "$out/table.csv"
check "gan graded, 5 folds" grep -q '^gan,ok,5,' "$out/table.csv"
check "no published table" sh -c "! grep -q published '$out/table.md'"
cp "$out/table.csv" "$WORK/first.csv"
go again; rc=$?
check "re-run exits 0 (got $rc)" [ $rc -eq 0 ]
check "re-run: the same table.csv" cmp "$WORK/first.csv" "$out/table.csv"
finish
