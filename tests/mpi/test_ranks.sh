#!/usr/bin/env bash
# The same phantom cohort as a singleton and with mpiexec at 1, 2 and 3 ranks:
# bitwise identical vertebra
# tables and grader results, every case done, work actually shared (with a
# 100 ms pause per case, each rank of a 2- and 3-rank run takes cases), and
# the stores validate against schema v2. The SVM protocol's folds are trained
# across the ranks (fold f on rank (f+1) % size): the same folds, metrics and
# final model at 1, 2 and 3 ranks, with libsvm and with liblinear.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

run_hv 0 "$WORK/r1"; rc=$?
check "singleton run exits 0 (got $rc; $WORK/r1.log)" [ $rc -eq 0 ]
run_hv 1 "$WORK/m1"; rc=$?
check "mpiexec -n 1 run exits 0 (got $rc; $WORK/m1.log)" [ $rc -eq 0 ]
check "mpiexec -n 1: same results as the singleton" same_results "$WORK/r1" "$WORK/m1"
for n in 2 3; do
  HV_TEST_CASE_DELAY_MS=100 run_hv $n "$WORK/r$n"; rc=$?
  check "$n-rank run exits 0 (got $rc; $WORK/r$n.log)" [ $rc -eq 0 ]
  check "$n ranks: same results as 1 rank" same_results "$WORK/r1" "$WORK/r$n"
  ranks_used=$(cut -d, -f4 "$WORK/r$n/cases.csv" | tail -n +2 | sort -u | wc -l)
  check "$n ranks: cases ran on $ranks_used ranks (want $n)" [ "$ranks_used" -eq $n ]
  check "$n ranks: store validates" valid "$WORK/r$n/store.h5"
done
check "1 rank: every fold on rank 0" [ "$(grep -c 'gather: SVM fold' "$WORK/r1.log")" -eq 0 ]
check "2 ranks: rank 1 trained folds 0, 2, 4" \
  [ "$(grep -c '\[rank 1\] info: gather: SVM fold [024] (libsvm' "$WORK/r2.log")" -eq 3 ]
check "3 ranks: rank 2 trained folds 1, 4" \
  [ "$(grep -c '\[rank 2\] info: gather: SVM fold [14] (libsvm' "$WORK/r3.log")" -eq 2 ]
for n in 2 3; do
  check "$n ranks: same final SVM model" cmp -s "$WORK/r1/svm_model.txt" "$WORK/r$n/svm_model.txt"
done
# liblinear: regrade copies of the 1-rank run (a resume with every case done
# runs only the gather; grader.* keys do not change the cases' results) at
# rank counts 1, 2, 3
for n in 1 2 3; do
  rm -rf "$WORK/l$n" && cp -r "$WORK/r1" "$WORK/l$n"
  run_hv $n "$WORK/l$n" --set grader.solver=liblinear; rc=$?
  check "liblinear, $n rank(s): exits 0 (got $rc; $WORK/l$n.log)" [ $rc -eq 0 ]
  check "liblinear, $n rank(s): solver recorded" grep -q 'info: gather: solver liblinear' "$WORK/l$n.log"
done
for n in 2 3; do
  check "liblinear: $n ranks same results as 1" same_results "$WORK/l1" "$WORK/l$n"
  check "liblinear: $n ranks same final model" cmp -s "$WORK/l1/svm_model.txt" "$WORK/l$n/svm_model.txt"
  check "liblinear: $n ranks shared the folds" grep -q '\[rank 1\] info: gather: SVM fold 0 (liblinear' "$WORK/l$n.log"
done
check "liblinear model file" grep -q '^hv-svm-linear 1' "$WORK/l1/svm_model.txt"
check "10 cases done" [ "$(grep -c ',done,' "$WORK/r1/cases.csv")" -eq 10 ]
check "grader is the SVM protocol" grep -q '^svm,val,' "$WORK/r1/grader_metrics.csv"
check "rank 0 prints overall progress" grep -q 'progress: .*cases/min.*ETA' "$WORK/r2.log"
check "ranks print case timings" grep -q '\[rank 1\] info: case .*: done, .* vertebrae in' "$WORK/r2.log"
for f in summary.md confusion.png rhlv_by_grade.png vertebrae.csv cases.csv; do
  check "output $f exists" [ -s "$WORK/r2/$f" ]
done
finish
