#!/usr/bin/env bash
# grader.method = senet3d: the small phantom cohort graded by the 3-D
# SupCon-SENet (tiny: width 2, one block a layer, 16^3 input, 2 SupCon and 3
# classification steps per model) at 1, 2 and 3 ranks gives identical
# vertebra tables, grader_metrics.csv and grader_folds.csv (fold f trains on
# rank (f + 1) % ranks, seeded by grader.seed and f, never by its rank: at
# 3 ranks rank 0 trains fold 2 and the final network, rank 1 folds 0 and 3,
# rank 2 folds 1 and 4); the grader row is senet3d scored on val
# with the SVM's 5 folds; grading_rows.csv holds the SVM's rows and folds with
# the network's grades; the store keeps /vertebrae/crop3d and validates.
# reproduce with methods = baseline, senet3d gives both rows, the senet3d one
# equal to the plain run's. Bad grader.senet3d_* values are refused before
# anything runs, naming the key.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

HV_RUN_EXTRA=(--set grader.method=senet3d --set grader.senet3d_width=2
              --set grader.senet3d_shrink=4 --set grader.senet3d_batch=4
              --set grader.senet3d_supcon_steps=2 --set grader.senet3d_cls_steps=3)
run_hv 1 "$WORK/r1"; rc=$?
check "1 rank: exits 0 (got $rc; $WORK/r1.log)" [ $rc -eq 0 ]
run_hv 2 "$WORK/r2"; rc=$?
check "2 ranks: exits 0 (got $rc; $WORK/r2.log)" [ $rc -eq 0 ]
check "2 ranks: same results as 1 rank" same_results "$WORK/r1" "$WORK/r2"
run_hv 3 "$WORK/r3"; rc=$?
check "3 ranks: exits 0 (got $rc; $WORK/r3.log)" [ $rc -eq 0 ]
check "3 ranks: same results as 1 rank" same_results "$WORK/r1" "$WORK/r3"
check "grader row is senet3d on val" grep -q '^senet3d,val,' "$WORK/r1/grader_metrics.csv"
check "5 folds in grader_folds.csv" [ "$(grep -c '^[0-4],' "$WORK/r1/grader_folds.csv")" -eq 5 ]
check "1 rank: every fold trained" [ "$(grep -c 'gather: senet3d fold [0-4] ' "$WORK/r1.log")" -eq 5 ]
folds_of() { grep -o "^\[rank $2\] info: gather: senet3d fold [0-4] " "$1" | awk '{print $7}' | sort | tr -d '\n'; }
check "3 ranks: rank 0 trained fold 2 ($(folds_of "$WORK/r3.log" 0))" [ "$(folds_of "$WORK/r3.log" 0)" = 2 ]
check "3 ranks: rank 1 trained folds 0, 3 ($(folds_of "$WORK/r3.log" 1))" [ "$(folds_of "$WORK/r3.log" 1)" = 03 ]
check "3 ranks: rank 2 trained folds 1, 4 ($(folds_of "$WORK/r3.log" 2))" [ "$(folds_of "$WORK/r3.log" 2)" = 14 ]
check "the store validates" valid "$WORK/r2/store.h5"
check "the store keeps the boxes" grep -q 'crop3d: *\/vertebrae\/crop3d' <("$HV" inspect "$WORK/r1/store.h5" 2>&1)
# a prediction for every vertebra with a box (all of them here)
npred=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "grade_pred") c = i; next }
                 $c >= 0 { n++ } END { print n + 0 }' "$WORK/r1/vertebrae.csv")
nrows=$(($(wc -l < "$WORK/r1/vertebrae.csv") - 1))
check "grade_pred on every vertebra ($npred of $nrows)" [ "$npred" -eq "$nrows" ]
# the rows as the network's protocol used them: the SVM's rows, folds and
# order (every vertebra has a box here), the network's grades
awk -v folds=5 -f "$(dirname "$0")/grading_rows.awk" "$WORK/r1/cohort/split.json" \
  "$WORK/r1/vertebrae.csv" >"$WORK/rows-expected.csv"
check "grading_rows.csv: the split's rows, folds and the network's grades" \
  cmp "$WORK/rows-expected.csv" "$WORK/r1/grading_rows.csv"

# reproduce: methods = baseline, senet3d gives an SVM row for the baseline and
# a senet3d row (the baseline graded by the network), whose fold mean
# macro-F1 and val F1 are those of the plain run above (the same cohort,
# settings and seed)
{ cat "$COHORT"; printf '\n[reproduce]\nmethods = baseline, senet3d\noutput = %s\n' "$WORK/repro"; } \
  >"$WORK/repro.ini"
"$HV" reproduce "$WORK/repro.ini" --set grader.senet3d_width=2 --set grader.senet3d_shrink=4 \
  --set grader.senet3d_batch=4 --set grader.senet3d_supcon_steps=2 \
  --set grader.senet3d_cls_steps=3 >"$WORK/repro.log" 2>&1; rc=$?
check "reproduce baseline, senet3d: exits 0 (got $rc; $WORK/repro.log)" [ $rc -eq 0 ]
check "reproduce: baseline row graded, 5 folds" grep -q '^baseline,ok,5,' "$WORK/repro/table.csv"
check "reproduce: senet3d row graded, 5 folds" grep -q '^senet3d,ok,5,' "$WORK/repro/table.csv"
check "reproduce: the baseline row by the SVM" grep -q '^svm,val,' "$WORK/repro/baseline/grader_metrics.csv"
col() { # col FILE ROWKEY COLUMN: the named column of the row starting with ROWKEY
  awk -F, -v k="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) n = i; next }
                                $1 == k { print $n }' "$1"
}
check "reproduce: senet3d fold mean F1 = the run's" \
  [ "$(col "$WORK/repro/table.csv" senet3d macro_f1_mean)" = "$(col "$WORK/r1/grader_metrics.csv" senet3d fold_mean_f1)" ]
check "reproduce: senet3d val F1 = the run's" \
  [ "$(col "$WORK/repro/table.csv" senet3d val_macro_f1)" = "$(col "$WORK/r1/grader_metrics.csv" senet3d macro_f1)" ]
check "reproduce: senet3d as a method of the quality table is refused" \
  sh -c "! '$HV' reproduce '$WORK/repro.ini' --set reproduce.table=quality --set reproduce.output='$WORK/q' >'$WORK/q.log' 2>&1 && grep -q 'senet3d is a grader' '$WORK/q.log'"

# bad keys: refused before the run, naming the key
refused() { # refused KEY=VALUE NEEDLE: exit status 2, the key named, nothing written
  local out dir="$WORK/bad-${1%%=*}"
  out=$("$HV" run "$COHORT" --set output.dir="$dir" --set "$1" 2>&1); local rc=$?
  [ $rc -eq 2 ] && grep -q "$2" <<<"$out" && [ ! -e "$dir" ]
}
check "grader.method = senet3x refused" refused grader.method=senet3x 'grader.method'
check "senet3d_batch = 1 refused" refused grader.senet3d_batch=1 'grader.senet3d_batch'
check "senet3d_shrink = 3 refused" refused grader.senet3d_shrink=3 'grader.senet3d_shrink'
check "senet3d_lr_cls = 0 refused" refused grader.senet3d_lr_cls=0 'grader.senet3d_lr_cls'
check "senet3d_width = 0 refused" refused grader.senet3d_width=0 'grader.senet3d_width'
check "senet3d_temperature = -1 refused" refused grader.senet3d_temperature=-1 'grader.senet3d_temperature'
finish
