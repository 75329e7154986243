#!/usr/bin/env bash
# test_run_options.sh: run behaviour no other test covered (issue 17), on the
# small phantom cohort of tests/mpi (10 cases, T10-L3, 2 mm) written once as
# a dataset, singleton runs:
#
#  1. thread count: run.threads = 1 and 2 give byte-identical vertebra tables,
#     grader results and QC pictures of the straightened crops (heights,
#     straightening and resampling are OpenMP loops).
#  2. sharding outside Slurm: run.shard_index / run.shard_count with no SLURM_*
#     variable set, two shards then an unsharded run of the same config that
#     gathers them and runs no case itself: the same results as one run.
#  3. run.retry_failed: a case that failed (its mask unreadable) stays failed
#     on a plain resume and is run again, and then equals the reference, with
#     run.retry_failed = 1.
#  4. the gather's fallback from the SVM protocol to the Genant rule when the
#     protocol cannot run (train and test rows of one grade only): the run
#     still ends 0, grades by the rule, and says why in /grader/@note (read
#     from the store with h5dump) and grader_metrics.csv.
#  5. the in-run SVM grader on the run's own table equals `healthivert svm` on
#     the exported vertebrae.csv with the same split; that command is checked
#     against scikit-learn in test_measure_cli / test_measure_svm (fixtures of
#     scripts/make_measure_fixtures.py), so the chain ends at scikit-learn.
#  6. the SVM's solver: /grader/@solver (h5dump) and summary.md name the one
#     that ran, for grader.solver = libsvm, liblinear and auto on both sides
#     of grader.liblinear_above; `healthivert svm --solver liblinear` on the
#     run's table gives the in-run liblinear folds; a bad --solver is a
#     usage error.
#
# usage: test_run_options.sh HEALTHIVERT MPIEXEC SOURCE_DIR WORK
HV=$1 MPIEXEC=$2 SRC=$3 WORK=$4
COHORT=$SRC/tests/mpi/cohort.ini
source "$SRC/tests/mpi/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

"$HV" phantom --out "$WORK/data" --cases 10 --seed 7 --range T10-L3 --spacing 2 \
  --fracture-rate 0.4 >"$WORK/phantom.log" 2>&1 || die "phantom failed, see $WORK/phantom.log"
# output.images = none except for the thread test (the QC pictures need the
# spine stage, the slow part); the tables do not depend on it. A key may be
# given once on the command line, so the thread test and the fallback spell
# theirs out.
base=(--set input.source=dataset --set input.dataset="$WORK/data")
common=("${base[@]}" --set input.split="$WORK/data/split.json" --set output.images=none)
qc=("${base[@]}" --set input.split="$WORK/data/split.json" --set output.images=qc)

# -- 1. threads
run_hv 0 "$WORK/t1" "${qc[@]}" --set run.threads=1; rc=$?
[ $rc -eq 0 ] || die "reference run failed ($rc), see $WORK/t1.log"
run_hv 0 "$WORK/t2" "${qc[@]}" --set run.threads=2; rc=$?
check "2 threads: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "2 threads == 1 thread (tables, grader, case outcomes)" same_results "$WORK/t1" "$WORK/t2"
"$HV" export "$WORK/t1/store.h5" --csv "$WORK/x1" >/dev/null 2>&1
"$HV" export "$WORK/t2/store.h5" --csv "$WORK/x2" >/dev/null 2>&1
nqc=$(ls "$WORK/x1/qc" 2>/dev/null | wc -l)
check "QC pictures exported ($nqc)" [ "$nqc" -ge 100 ]
check "2 threads == 1 thread (QC pictures of the straightened crops)" diff -rq "$WORK/x1/qc" "$WORK/x2/qc"

# -- 2. shards without Slurm
for k in 0 1; do
  run_hv 0 "$WORK/sh" "${common[@]}" --set run.shard_index=$k --set run.shard_count=2
  rc=$?
  cp "$WORK/sh.log" "$WORK/sh-$k.log"
  check "shard $k of 2: exit 0 (rc $rc)" [ $rc -eq 0 ]
  check "shard $k of 2: wrote its shard store" grep -q "shard store: .*store-shard-000$k.h5" "$WORK/sh-$k.log"
done
nshard=$(ls "$WORK/sh"/store-shard-*.h5 2>/dev/null | wc -l)
check "2 shard stores ($nshard)" [ "$nshard" -eq 2 ]
n0=$(grep -c ': done, ' "$WORK/sh-0.log") n1=$(grep -c ': done, ' "$WORK/sh-1.log")
check "shards split the cases ($n0 + $n1)" [ "$n0" -eq 5 -a "$n1" -eq 5 ]
run_hv 0 "$WORK/sh" "${common[@]}"; rc=$?
check "gather run: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "gather run ran no case itself" grep -q '0 to run' "$WORK/sh.log"
check "sharded == one run" same_results "$WORK/t1" "$WORK/sh"

# -- 3. run.retry_failed
cp -r "$WORK/data" "$WORK/data-rf"
m=$(ls "$WORK/data-rf/raw/ph0003/"*_msk.nii.gz)
mv "$m" "$m.keep" && echo "not a NIfTI file" >"$m"
rf=(--set input.source=dataset --set input.dataset="$WORK/data-rf" --set input.split="$WORK/data-rf/split.json")
run_hv 0 "$WORK/rf" "${rf[@]}"; rc=$?
check "a failed case: the run ends non-zero (rc $rc)" [ $rc -ne 0 ]
check "ph0003 failed" grep -q '^ph0003,failed,' "$WORK/rf/cases.csv"
mv "$m.keep" "$m"
run_hv 0 "$WORK/rf" "${rf[@]}"; rc=$?
check "plain resume: ph0003 still failed, not run again" grep -q '^ph0003,failed,0,0,1,' "$WORK/rf/cases.csv"
run_hv 0 "$WORK/rf" "${rf[@]}" --set run.retry_failed=1; rc=$?
check "retry_failed resume: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "retry_failed: ph0003 done in attempt 3" grep -q '^ph0003,done,6,0,3,' "$WORK/rf/cases.csv"
check "retry_failed: the other cases kept attempt 1" \
  awk -F, 'NR > 1 && $1 != "ph0003" && $5 != 1 { bad++ } END { exit bad > 0 }' "$WORK/rf/cases.csv"
check "retry_failed == uninterrupted" same_results "$WORK/t1" "$WORK/rf"

# -- 4. SVM -> Genant rule fallback: a split whose train and test rows all
# have grade 0 (val keeps its grades): the protocol cannot train
awk '/"val"/ { v = 1 } /"(test|train)"/ { v = 0 } !v { sub(/:[[:space:]]*[0-3],?$/, (/,$/ ? ": 0," : ": 0")) } { print }' \
  "$WORK/data/split.json" >"$WORK/split-one-grade.json"
check "one-grade split made" grep -q '"val"' "$WORK/split-one-grade.json"
run_hv 0 "$WORK/fb" "${base[@]}" --set input.split="$WORK/split-one-grade.json" --set output.images=none \
  --set grader.method=svm; rc=$?
check "fallback: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "fallback: graded by the rule" grep -q '^rule,' "$WORK/fb/grader_metrics.csv"
check "fallback: grader_metrics.csv says why" grep -q 'SVM protocol not possible: .*Genant rule used' \
  "$WORK/fb/grader_metrics.csv"
h5dump -a /grader/note "$WORK/fb/store.h5" >"$WORK/fb-note.txt" 2>&1
check "fallback: /grader/@note in the store says why" grep -q 'SVM protocol not possible: .*Genant rule used' \
  "$WORK/fb-note.txt"
check "fallback: every predicted grade is the rule's" \
  awk -F, 'FNR == 1 { for (c = 1; c <= NF; c++) col[$c] = c; next }
           $col["grade_pred"] != $col["grade_rule"] { bad++ } END { exit bad > 0 }' "$WORK/fb/vertebrae.csv"
check "no fallback note on the SVM run" grep -q '^svm,val,.*,$' "$WORK/t1/grader_metrics.csv"

# -- 5. in-run grader == `healthivert svm` on the run's own table
"$HV" svm --table "$WORK/t1/vertebrae.csv" --split "$WORK/data/split.json" --out "$WORK/svmcli" \
  >"$WORK/svmcli.txt" 2>&1; rc=$?
check "svm on the run's table: exit 0 (rc $rc)" [ $rc -eq 0 ]
# per-fold macro F1 and accuracy: grader_folds.csv (in-run) against the
# command's report (printed to 4 decimals)
sed -n 's/^F1 Score (macro): //p' "$WORK/svmcli.txt" >"$WORK/cli_f1.txt"
sed -n 's/^Accuracy: //p' "$WORK/svmcli.txt" >"$WORK/cli_acc.txt"
awk -F, 'FNR > 1 { printf "%.4f\n", $2 }' "$WORK/t1/grader_folds.csv" >"$WORK/run_f1.txt"
awk -F, 'FNR > 1 { printf "%.4f\n", $5 }' "$WORK/t1/grader_folds.csv" >"$WORK/run_acc.txt"
check "5 folds in both" [ "$(wc -l <"$WORK/run_f1.txt")" -eq 5 -a "$(wc -l <"$WORK/cli_f1.txt")" -eq 5 ]
check "in-run SVM folds: macro F1 == healthivert svm on the exported table" cmp -s "$WORK/run_f1.txt" "$WORK/cli_f1.txt"
check "in-run SVM folds: accuracy == healthivert svm on the exported table" cmp -s "$WORK/run_acc.txt" "$WORK/cli_acc.txt"
check "svm: the report names the solver (libsvm by default)" grep -q '^solver: libsvm$' "$WORK/svmcli.txt"

# -- 6. the solver: /grader/@solver and summary.md say which one trained the
# SVM, as configured (grader.solver) or chosen (auto, grader.liblinear_above);
# `healthivert svm --solver liblinear` on the run's table gives the in-run
# liblinear folds
solver_attr() { h5dump -a /grader/solver "$1/store.h5" 2>/dev/null | sed -n 's/^ *(0): "\(.*\)"$/\1/p'; }
check "auto below grader.liblinear_above: /grader/@solver = libsvm ($(solver_attr "$WORK/t1"))" \
  [ "$(solver_attr "$WORK/t1")" = libsvm ]
check "summary.md names the solver (libsvm)" grep -q '^grader: *svm (solver libsvm)' "$WORK/t1/summary.md"
run_hv 0 "$WORK/lin" "${common[@]}" --set grader.solver=liblinear; rc=$?
check "grader.solver = liblinear: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "grader.solver = liblinear: /grader/@solver = liblinear ($(solver_attr "$WORK/lin"))" \
  [ "$(solver_attr "$WORK/lin")" = liblinear ]
check "summary.md names the solver (liblinear)" grep -q '^grader: *svm (solver liblinear)' "$WORK/lin/summary.md"
check "liblinear store validates" valid "$WORK/lin/store.h5"
run_hv 0 "$WORK/auto0" "${common[@]}" --set grader.liblinear_above=0; rc=$?
check "auto above grader.liblinear_above = 0: /grader/@solver = liblinear ($(solver_attr "$WORK/auto0"), rc $rc)" \
  [ "$(solver_attr "$WORK/auto0")" = liblinear ]
run_hv 0 "$WORK/svm1" "${common[@]}" --set grader.solver=libsvm --set grader.liblinear_above=0; rc=$?
check "grader.solver = libsvm wins over the threshold: /grader/@solver = libsvm ($(solver_attr "$WORK/svm1"), rc $rc)" \
  [ "$(solver_attr "$WORK/svm1")" = libsvm ]
"$HV" svm --table "$WORK/t1/vertebrae.csv" --split "$WORK/data/split.json" --out "$WORK/svmlin" \
  --solver liblinear >"$WORK/svmlin.txt" 2>&1; rc=$?
check "svm --solver liblinear: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "svm --solver liblinear: the report names it" grep -q '^solver: liblinear$' "$WORK/svmlin.txt"
check "svm --solver liblinear: a liblinear model file" grep -q '^hv-svm-linear 1' "$WORK/svmlin/svm.model"
sed -n 's/^F1 Score (macro): //p' "$WORK/svmlin.txt" >"$WORK/lin_cli_f1.txt"
awk -F, 'FNR > 1 { printf "%.4f\n", $2 }' "$WORK/lin/grader_folds.csv" >"$WORK/lin_run_f1.txt"
check "in-run liblinear folds: macro F1 == healthivert svm --solver liblinear" \
  cmp -s "$WORK/lin_run_f1.txt" "$WORK/lin_cli_f1.txt"
"$HV" svm --table "$WORK/t1/vertebrae.csv" --split "$WORK/data/split.json" --out "$WORK/svmbad" \
  --solver libsvn >"$WORK/svmbad.txt" 2>&1; rc=$?
check "svm --solver libsvn: usage error, exit 2 (rc $rc)" [ $rc -eq 2 ]
check "svm --solver libsvn: the message names the value" grep -q "'libsvn' for --solver" "$WORK/svmbad.txt"
finish
