#!/usr/bin/env bash
# The rows the SVM grader trained and was scored on, by value: the small
# phantom cohort's grading_rows.csv must equal the table grading_rows.awk
# rebuilds from the run's split file and vertebrae.csv alone (every row's
# case, level, split, grade and three RHLV features in the split file's
# order, and each train/test row's StratifiedKFold fold re-derived from
# scikit-learn's algorithm); the folds are stratified (each grade spread over
# the folds within one row of even, fold sizes within one); 1, 2 and 3 ranks
# write the same bytes. A hand-made split (sets and entries in another order,
# an entry with no vertebra, 3 folds) is followed row by row, and a regrade
# with the Genant rule removes the table. A model that cannot be written fails
# the gather (no silent fallback to the rule). grading_rows.awk itself is first
# held to a small table worked by hand.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
AWK_ROWS="$(dirname "$0")/grading_rows.awk"
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

# same_rows RUN SPLIT FOLDS: the run's table against the rebuilt one
same_rows() {
  local run=$1 split=$2 folds=$3
  awk -v folds="$folds" -f "$AWK_ROWS" "$split" "$run/vertebrae.csv" >"$run.rows-expected" ||
    { echo "  grading_rows.awk failed"; return 1; }
  diff "$run.rows-expected" "$run/grading_rows.csv" >"$run.rows-diff" && return 0
  echo "  $run/grading_rows.csv differs from the rebuilt table (< expected, > written):"
  head -n 12 "$run.rows-diff" | sed 's/^/    /'
  return 1
}

# stratified RUN FOLDS: every grade's train/test rows spread over the folds
# within one of even, fold sizes within one, folds in blocks (no shuffle:
# within a grade the fold never decreases down the rows); prints the counts
stratified() {
  awk -F, -v K="$2" '
    NR == 1 { next }
    $5 == "val" { if ($6 != "") { print "  val row " $1 " has fold " $6; bad = 1 } next }
    {
      f = $6; g = $10
      if (f !~ /^[0-9]+$/ || f >= K) { print "  row " $1 ": fold \"" f "\" not in 0.." K - 1; bad = 1; next }
      if ((g in last) && f < last[g]) { print "  row " $1 ": grade " g " back to fold " f; bad = 1 }
      last[g] = f; n[f, g]++; size[f]++; grades[g] = 1
    }
    END {
      for (g in grades) {
        lo = -1; hi = 0; line = "  grade " g " per fold:"
        for (f = 0; f < K; f++) {
          c = n[f, g] + 0; line = line " " c
          if (lo < 0 || c < lo) lo = c
          if (c > hi) hi = c
        }
        print line
        if (hi - lo > 1) { print "  grade " g " is not stratified"; bad = 1 }
      }
      lo = -1; hi = 0
      for (f = 0; f < K; f++) {
        c = size[f] + 0
        if (lo < 0 || c < lo) lo = c
        if (c > hi) hi = c
      }
      if (hi - lo > 1) { print "  fold sizes differ by " hi - lo; bad = 1 }
      exit bad
    }' "$1/grading_rows.csv"
}

# grading_rows.awk itself on a table worked by hand (scikit-learn's
# _make_test_folds step by step): train a_1 grade 1, a_2 grade 0; val b_1;
# test c_1 grade 0, c_2 grade 1, then c_9 (no such vertebra) and d_1 (nan
# RHLV), which are not rows. 3 folds over the pool grades y = 1 0 0 1:
# classes by first appearance (grade 1 -> 0, grade 0 -> 1), y_order =
# 0 0 1 1; fold f takes y_order[f], [f+3], ...: fold 0 one of each, fold 1
# one grade 1, fold 2 one grade 0. So grade 1's rows (a_1 c_2) get folds
# 0 1 and grade 0's (a_2 c_1) folds 0 2. (Numbering the classes by value
# instead would give a_1 c_2 folds 0 2 and a_2 c_1 folds 0 1.)
mkdir -p "$WORK/toy"
printf '{\n\t"train":\t{\n\t\t"a_1":\t1,\n\t\t"a_2":\t0\n\t},
\t"val":\t{\n\t\t"b_1":\t3\n\t},
\t"test":\t{\n\t\t"c_1":\t0,\n\t\t"c_2":\t1,\n\t\t"c_9":\t2,\n\t\t"d_1":\t2\n\t}\n}\n' \
  >"$WORK/toy/split.json"
cat >"$WORK/toy/vertebrae.csv" <<'CSV'
case,label,level,grade_pred,rhlv_ant,rhlv_mid,rhlv_post
a,1,C1,1,0.1,0.2,0.3
a,2,C2,0,0.25,0.5,-0.125
b,1,C1,3,7,8,9
c,1,C1,1,10,11,12
c,2,C2,1,13,14,15
d,1,C1,-1,nan,19,20
CSV
cat >"$WORK/toy/want.csv" <<'CSV'
row,case,label,level,split,fold,rhlv_ant,rhlv_mid,rhlv_post,grade,pred
0,a,1,C1,train,0,0.1,0.2,0.3,1,1
1,a,2,C2,train,0,0.25,0.5,-0.125,0,0
2,b,1,C1,val,,7,8,9,3,3
3,c,1,C1,test,2,10,11,12,0,1
4,c,2,C2,test,1,13,14,15,1,1
CSV
check "grading_rows.awk gives the hand-worked toy table" \
  cmp <(awk -v folds=3 -f "$AWK_ROWS" "$WORK/toy/split.json" "$WORK/toy/vertebrae.csv") "$WORK/toy/want.csv"

run_hv 1 "$WORK/r1"; rc=$?
[ $rc -eq 0 ] || die "1 rank: exits 0 (got $rc; $WORK/r1.log)"
check "1 rank: grading_rows.csv written" [ -s "$WORK/r1/grading_rows.csv" ]
check "1 rank: the rows are the split's vertebrae with their features, grades, folds" \
  same_rows "$WORK/r1" "$WORK/r1/cohort/split.json" 5
n=$(($(wc -l <"$WORK/r1/grading_rows.csv") - 1))
nsplit=$(grep -c '"ph[0-9]*_[0-9]*":' "$WORK/r1/cohort/split.json")
# every phantom vertebra is measured: one row per split entry (10 cases x 6 levels)
check "1 rank: $n rows, one per split entry ($nsplit)" [ "$n" -eq "$nsplit" ] && [ "$n" -eq 60 ]
ngrades=$(tail -n +2 "$WORK/r1/grading_rows.csv" | cut -d, -f10 | sort -u | wc -l)
check "1 rank: all 4 grades among the rows (got $ngrades)" [ "$ngrades" -eq 4 ]
check "1 rank: folds stratified" stratified "$WORK/r1" 5
check "summary.md names grading_rows.csv" grep -q 'grading_rows.csv' "$WORK/r1/summary.md"

for r in 2 3; do
  run_hv $r "$WORK/r$r"; rc=$?
  check "$r ranks: exits 0 (got $rc; $WORK/r$r.log)" [ $rc -eq 0 ]
  check "$r ranks: grading_rows.csv byte-identical to 1 rank" \
    cmp "$WORK/r1/grading_rows.csv" "$WORK/r$r/grading_rows.csv"
done

# A hand-made split: the sets as val, train, test, each set's entries
# reversed, one entry (C1 of ph0000) with no vertebra in the cohort; 3 folds
awk '
  { line = $0; gsub(/[ \t\r]/, "", line) }
  line ~ /^"(train|val|test)":\{/ { set = line; sub(/^"/, "", set); sub(/".*/, "", set); next }
  line ~ /^"[^"]+_[0-9]+":[0-3],?$/ { sub(/,$/, "", line); e[set, ++n[set]] = line }
  END {
    e["train", ++n["train"]] = "\"ph0000_1\":2"
    printf "{"
    split("val train test", order, " ")
    for (o = 1; o <= 3; o++) {
      s = order[o]
      printf "%s\n\t\"%s\":\t{\n", (o > 1 ? "," : ""), s
      for (i = n[s]; i >= 1; i--) printf "\t\t%s%s\n", e[s, i], (i > 1 ? "," : "")
      printf "\t}"
    }
    print "\n}"
  }' "$WORK/r1/cohort/split.json" >"$WORK/custom_split.json"
run_hv 1 "$WORK/c1" --set input.split="$WORK/custom_split.json" --set grader.folds=3; rc=$?
check "hand-made split: exits 0 (got $rc; $WORK/c1.log)" [ $rc -eq 0 ]
check "hand-made split: rows in its order, 3 folds" same_rows "$WORK/c1" "$WORK/custom_split.json" 3
check "hand-made split: the first row is the last val entry" \
  [ "$(sed -n 2p "$WORK/c1/grading_rows.csv" | cut -d, -f5)" = val ]
check "hand-made split: 60 rows (the C1 entry is not one)" \
  [ "$(($(wc -l <"$WORK/c1/grading_rows.csv") - 1))" -eq 60 ]
check "hand-made split: the skipped entry is logged" \
  grep -q 'gather: 1 split entries have no measured vertebra' "$WORK/c1.log"
check "hand-made split: folds stratified" stratified "$WORK/c1" 3

# the SVM's model cannot be written (a folder in its place): the gather fails
# with the reason, never grading by the rule instead; once the folder is gone
# the same command grades as before
rm -rf "$WORK/w1" && cp -r "$WORK/r1" "$WORK/w1" && rm -f "$WORK/w1/svm_model.txt" &&
  mkdir "$WORK/w1/svm_model.txt"
run_hv 1 "$WORK/w1"; rc=$?
check "unwritable svm_model.txt: the run fails (got $rc; $WORK/w1.log)" [ $rc -ne 0 ]
check "unwritable svm_model.txt: the message names it" grep -q 'svm_model.txt' "$WORK/w1.log"
check "unwritable svm_model.txt: no fallback to the rule" \
  bash -c "! grep -q 'grading with the Genant rule' '$WORK/w1.log'"
rmdir "$WORK/w1/svm_model.txt"
run_hv 1 "$WORK/w1"; rc=$?
check "writable again: exits 0 (got $rc)" [ $rc -eq 0 ]
check "writable again: the same rows" cmp "$WORK/r1/grading_rows.csv" "$WORK/w1/grading_rows.csv"

# a regrade of a copy with the Genant rule leaves no SVM rows behind
rm -rf "$WORK/g1" && cp -r "$WORK/r1" "$WORK/g1"
run_hv 1 "$WORK/g1" --set grader.method=rule; rc=$?
check "rule regrade: exits 0 (got $rc; $WORK/g1.log)" [ $rc -eq 0 ]
check "rule regrade: graded by the rule" grep -q '^rule,' "$WORK/g1/grader_metrics.csv"
check "rule regrade: grading_rows.csv removed" [ ! -e "$WORK/g1/grading_rows.csv" ]
finish
