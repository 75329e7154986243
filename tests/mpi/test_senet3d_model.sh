#!/usr/bin/env bash
# The saved 3-D SupCon-SENet (senet3d_model.h5) and `measure --grader
# senet3d:MODEL`. A phantom cohort written to files (the small cohort's
# settings: 10 cases of T10-L3 at 2 mm, seed 7) is run as a dataset with
# grader.method = senet3d (tiny: width 2, 16^3 input, 2 SupCon and 20
# classification steps at lr 0.01, enough for the final network to give
# more than one grade); the run writes senet3d_model.h5 and lists it in
# summary.md. measure on the case whose grade_pred values differ most, and
# on one more, with the same CT, mask and centroids, gives every vertebra
# the run's grade_pred: the gather's batch prediction from the stored boxes
# and measure's from its own straightened crops agree. Refused, exit 1 and
# the cause named: a missing file, the GAN's and the classifier's model
# files (models/), a truncated model file and an SVM model text; exit 2: no
# --ct, an unknown grader. The run's grading_rows.csv equals the table
# grading_rows.awk rebuilds from the split file and vertebrae.csv (the
# network's grades vary here, so a row given another vertebra's fails).
# Re-grading the finished run (every case resumed): the second run trains
# no network (the log says it reuses senet3d_model.h5, no fold is trained)
# and writes the same vertebrae.csv, grader_metrics.csv, grader_folds.csv
# and confusion.png bytes as the first, fresh training; it trains again,
# saying why in the log, with grader.seed = 1, with grader.retrain = 1, on
# a truncated senet3d_model.h5 (a warning; then the same bytes as the fresh
# training) and when a grade in the split file changed.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 MODELS=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

D="$WORK/data"
"$HV" phantom --out "$D" --cases 10 --seed 7 --range T10-L3 --spacing 2 \
  --fracture-rate 0.4 >"$WORK/phantom.log" 2>&1 || die "phantom failed ($WORK/phantom.log)"
HV_RUN_EXTRA=(--set input.source=dataset --set input.dataset="$D"
              --set input.split="$D/split.json" --set output.images=none
              --set grader.method=senet3d --set grader.senet3d_width=2
              --set grader.senet3d_shrink=4 --set grader.senet3d_batch=4
              --set grader.senet3d_supcon_steps=2 --set grader.senet3d_cls_steps=20
              --set grader.senet3d_lr_cls=0.01)
run_hv 0 "$WORK/r"; rc=$?
[ $rc -eq 0 ] || die "run exits $rc ($WORK/r.log)"
M="$WORK/r/senet3d_model.h5"
check "the run writes senet3d_model.h5" [ -s "$M" ]
check "summary.md lists it" grep -q 'senet3d_model.h5' "$WORK/r/summary.md"

# grade_pred by case: "label grade" lines; the case with most distinct grades
V="$WORK/r/vertebrae.csv"
gcol=$(head -1 "$V" | tr , '\n' | grep -nx grade_pred | cut -d: -f1)
best=$(awk -F, -v c="$gcol" 'NR > 1 { if (!(($1, $c) in s)) { s[$1, $c] = 1; d[$1]++ } }
       END { for (k in d) print d[k], k }' "$V" | sort -k1,1nr -k2,2 | head -1 | cut -d' ' -f2)
other=$(awk -F, 'NR > 1 { print $1 }' "$V" | sort -u | grep -vx "$best" | head -1)
ndist=$(awk -F, -v c="$gcol" -v k="$best" 'NR > 1 && $1 == k { print $c }' "$V" | sort -u | wc -l)
check "the run's $best has more than one grade_pred ($ndist)" [ "$ndist" -ge 2 ]
# grading_rows.csv: the split's rows and folds with the network's own grades
# (varied here), each row's from its own vertebra
awk -v folds=5 -f "$(dirname "$0")/grading_rows.awk" "$D/split.json" "$V" >"$WORK/rows-expected.csv"
check "grading_rows.csv: the split's rows, folds and each vertebra's grade_pred" \
  cmp "$WORK/rows-expected.csv" "$WORK/r/grading_rows.csv"
same_nonempty() { [ -n "$1" ] && [ "$1" = "$2" ]; }
for c in $best $other; do
  "$HV" measure --mask "$D/raw/$c/${c}_msk.nii.gz" --ct "$D/raw/$c/$c.nii.gz" \
    --centroids "$D/raw/$c/$c.json" --grader "senet3d:$M" --csv "$WORK/$c.csv" \
    >"$WORK/$c.log" 2>&1; rc=$?
  check "measure $c: exits 0 (rc $rc; $WORK/$c.log)" [ $rc -eq 0 ]
  check "measure $c: says the grader" grep -q '3-D SupCon-SENet grader' "$WORK/$c.log"
  mcol=$(head -1 "$WORK/$c.csv" | tr , '\n' | grep -nx grade | cut -d: -f1)
  want=$(awk -F, -v c="$gcol" -v k="$c" 'NR > 1 && $1 == k { print $2, $c }' "$V" | sort)
  got=$(awk -F, -v c="$mcol" 'NR > 1 { print $2, $c }' "$WORK/$c.csv" | sort)
  check "measure $c: every vertebra's grade = the run's grade_pred (run: $(echo $want), measure: $(echo $got))" \
    same_nonempty "$want" "$got"
done

# refusals
c=$best
refused() { # refused RC MODEL NEEDLE...: measure exits RC naming every NEEDLE
  local want=$1 model=$2; shift 2
  local out rc
  out=$("$HV" measure --mask "$D/raw/$c/${c}_msk.nii.gz" --ct "$D/raw/$c/$c.nii.gz" \
        --grader "senet3d:$model" 2>&1); rc=$?
  [ $rc -eq "$want" ] || { echo "  rc $rc, want $want: $out"; return 1; }
  for n in "$@"; do grep -qF -- "$n" <<<"$out" || { echo "  no '$n' in: $out"; return 1; }; done
}
check "missing model file" refused 1 "$WORK/nosuch.h5" "nosuch.h5' not found"
check "a GAN model file" refused 1 "$MODELS/phantom-sagittal.h5" "is a GAN model file" "senet3d"
check "the classifier's model file" refused 1 "$MODELS/phantom-classifier.h5" \
  "is a 'classifier' model file, not a senet3d one"
head -c 4000 "$M" >"$WORK/short.h5"
check "a truncated model file" refused 1 "$WORK/short.h5" "not an HDF5 file (truncated"
printf 'svm_type c_svc\nkernel_type rbf\ngamma 0.333\nnr_class 2\n' >"$WORK/svm_model.txt"
check "an SVM model text" refused 1 "$WORK/svm_model.txt" "is an SVM model (svm_model.txt" "not a senet3d"
usage() { # usage NEEDLE ARGS...: measure exits 2 naming NEEDLE
  local n=$1 out rc; shift
  out=$("$HV" measure --mask "$D/raw/$c/${c}_msk.nii.gz" "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] && grep -qF -- "$n" <<<"$out" || { echo "  rc $rc: $out"; return 1; }
}
check "no --ct: usage error" usage 'needs --ct' --grader "senet3d:$M"
check "an unknown grader: usage error" usage 'senet3d:MODEL' --grader "senet3x:$M"

# re-grading the finished run
K="$WORK/first"
OUTS="vertebrae.csv grader_metrics.csv grader_folds.csv confusion.png"
mkdir -p "$K" && for f in $OUTS; do cp "$WORK/r/$f" "$K/"; done
regrade() { # regrade NAME [args...]: the run again on its output, log NAME.log
  local name=$1; shift
  run_hv 0 "$WORK/r" "$@"; local rc=$?
  cp "$WORK/r.log" "$WORK/$name.log"
  return $rc
}
same_outputs() { local f; for f in $OUTS; do
  cmp -s "$K/$f" "$WORK/r/$f" || { echo "  $f differs from the first run's"; return 1; }; done; }
folds_trained() { grep -c 'gather: senet3d fold [0-9]' "$WORK/$1.log"; }
says() { grep -qF -- "$2" "$WORK/$1.log" || { echo "  no '$2' in $WORK/$1.log"; return 1; }; }
regrade again; rc=$?
check "re-grade: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "re-grade: says it reuses the model file" says again 'senet3d: reusing senet3d_model.h5'
check "re-grade: no network trained ($(folds_trained again) folds)" [ "$(folds_trained again)" -eq 0 ]
check "re-grade: the outputs are the fresh training's bytes" same_outputs
regrade seed --set grader.seed=1; rc=$?
check "grader.seed = 1: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "grader.seed = 1: says why it retrains" says seed \
  'senet3d: retraining: grader.seed is 1, senet3d_model.h5 was trained with 0'
check "grader.seed = 1: trains the 5 folds" [ "$(folds_trained seed)" -eq 5 ]
head -c 20000 "$M" >"$WORK/cut.h5" && mv "$WORK/cut.h5" "$M"
regrade cut; rc=$?
check "truncated model file: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "truncated model file: a warning" says cut \
  "warning: gather: senet3d: retraining: senet3d_model.h5 cannot be reused"
check "truncated model file: trains the 5 folds" [ "$(folds_trained cut)" -eq 5 ]
check "truncated model file: the fresh training's bytes again" same_outputs
regrade retrain --set grader.retrain=1; rc=$?
check "grader.retrain = 1: says why it retrains" says retrain 'senet3d: retraining: grader.retrain = 1'
check "grader.retrain = 1: trains the 5 folds (rc $rc)" [ "$(folds_trained retrain)" -eq 5 ]
check "grader.retrain = 1: the same bytes" same_outputs
# one train row's grade changed in the split file (same path)
sed -i 's/^\([[:space:]]*"ph0002_17":[[:space:]]*\)0,/\11,/' "$D/split.json"
check "the split file changed" grep -q '"ph0002_17":[[:space:]]*1,' "$D/split.json"
regrade row; rc=$?
check "a changed grade: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "a changed grade: says why it retrains" says row \
  'senet3d: retraining: the rows changed since senet3d_model.h5 was written'
check "a changed grade: trains the 5 folds" [ "$(folds_trained row)" -eq 5 ]
finish
