#!/usr/bin/env bash
# test_datasets.sh: the dataset configurations without grades, end to end on
# phantom mocks of their published layouts (lib.sh), 2 ranks:
#  1. configs/verse20.ini on a 4-case mock of VerSe 2020 (three part folders
#     dataset-01training / -02validation / -03test, sub-glNNN_dir-ax names,
#     centroid files): `run` finds every case of every part and measures
#     every vertebra;
#  2. configs/ctspine1k.ini on a 4-case mock of CTSpine1K (rawdata/volumes/
#     <subset>/ + labels/<subset>/*_seg, the four subsets, no centroids, no
#     grades): `reproduce` with baseline and gan (a tiny random generator,
#     synthesis.neighbours = 0) writes the synthesis-quality table: the
#     baseline row "n/a" (no synthesized image), the gan row's mean and
#     population variance of each of spec 11's measures (patch and global
#     PSNR and SSIM, Dice, IoU, RVD) recomputed with awk from its
#     quality_vertebrae.csv, every vertebra scored (no grades: all levels),
#     values in range, Dice and IoU consistent; run with output.images =
#     none (the table reads the stored original and synthesized crops, not
#     the QC pictures); the gan without synthesis.crops = full is refused
#     (exit 2, nothing written);
#  3. table = quality on a graded phantom cohort: the healthy levels are the
#     split's grade-0 ones (counted from the cohort's split.json).
#
# usage: test_datasets.sh HEALTHIVERT MPIEXEC SOURCE_DIR WORK MAKE_GAN_MODEL
HV=$1 MPIEXEC=$2 SRC=$3 WORK=$4 MAKE_MODEL=$5
source "$(dirname "$0")/lib.sh"
die() { echo "not ok: $*"; echo "$pass passed, $((failn + 1)) failed"; exit 1; }
"$MAKE_MODEL" "$WORK/tiny.h5" --seed 3 --seg-bias 8 >/dev/null || die "tiny model"
# healthy phantoms: the data these configs are for has no grades
"$HV" phantom --out "$WORK/ph" --cases 4 --seed 2 --spacing 2 --range L1-L2 \
  --fracture-rate 0 >"$WORK/phantom.log" 2>&1 || die "phantom cohort"

# -- 1. VerSe 2020
v20=$WORK/verse20
n=$(mock_verse20 "$WORK/ph" "$v20") || die "verse20 mock"
check "verse20 mock: 4 cases in 3 parts" [ "$n" -eq 4 ] && [ -d "$v20/dataset-03test/rawdata" ]
r20=$WORK/r20
"$MPIEXEC" -n 2 --oversubscribe "$HV" run "$SRC/configs/verse20.ini" --set input.dataset="$v20" \
  --set output.dir="$r20" --set run.progress_interval=0 >"$r20.log" 2>&1
rc=$?
check "verse20.ini: exit 0 (got $rc; $r20.log)" [ $rc -eq 0 ]
check "verse20.ini: 4 cases done" grep -q "4 total, 4 done, 0 failed" "$r20/summary.md"
for id in sub-gl900 sub-gl901 sub-gl902 sub-gl903; do
  check "verse20.ini: ${id}_dir-ax (its part) measured at L1 and L2" \
    [ "$(grep -c "^${id}_dir-ax,2[01]," "$r20/vertebrae.csv")" -eq 2 ]
done

# -- 2. CTSpine1K, reproduce: the synthesis-quality table
ct=$WORK/ctspine1k
n=$(mock_ctspine1k "$WORK/ph" "$ct") || die "ctspine1k mock"
check "ctspine1k mock: 4 cases in 4 subsets" [ "$n" -eq 4 ] && [ -d "$ct/rawdata/labels/COVID-19" ]
Q=$WORK/q
ARGS=(--set input.dataset="$ct" --set "reproduce.methods=baseline, gan"
      --set synthesis.model="$WORK/tiny.h5" --set synthesis.neighbours=0 --set run.progress_interval=0)
"$HV" reproduce "$SRC/configs/ctspine1k.ini" "${ARGS[@]}" --set synthesis.crops=masks \
  --set reproduce.output="$WORK/nocrops" >"$WORK/nocrops.log" 2>&1
rc=$?
check "gan without synthesized CT crops refused, exit 2 (got $rc)" [ $rc -eq 2 ]
check "  says to set synthesis.crops = full" \
  grep -q "method gan: synthesis.crops = masks: .*set synthesis.crops = full" "$WORK/nocrops.log"
check "  nothing written" [ ! -e "$WORK/nocrops" ]
# output.images = none: the table reads the stored crops, not the QC pictures
"$MPIEXEC" -n 2 --oversubscribe "$HV" reproduce "$SRC/configs/ctspine1k.ini" "${ARGS[@]}" \
  --set output.images=none --set reproduce.output="$Q" >"$Q.log" 2>&1
rc=$?
check "ctspine1k reproduce: exit 0 (got $rc; $Q.log)" [ $rc -eq 0 ]
check "summary line: scored or n/a" grep -q "2 methods: 2 scored or n/a, 0 failed" "$Q.log"
for f in table.csv table.md table.png gan/quality_vertebrae.csv; do check "wrote $f" test -s "$Q/$f"; done
col() { # col FILE NAME ROWKEY
  awk -F, -v name="$2" -v key="$3" 'NR == 1 { for (c = 1; c <= NF; c++) k[$c] = c; next }
    $1 == key { print $k[name]; exit }' "$1"
}
MEASURES="patch_psnr patch_ssim global_psnr global_ssim dice iou rvd"
hdr="method,status,healthy_levels,vertebrae,healthy,scored,unscored"
for m in $MEASURES; do hdr="$hdr,${m}_mean,${m}_var"; done
check "the quality table's header" grep -qx "$hdr,cases,cases_failed,note" "$Q/table.csv"
check "baseline: n/a (no synthesized image)" \
  grep -q '^baseline,n/a,all,8,8,0,0,,,,,,,,,,,,,,,4,0,"no synthesized CT' "$Q/table.csv"
check "table.md: baseline not applicable" grep -q '^| baseline | not applicable |' "$Q/table.md"
check "gan: ok, no grades so all 8 levels healthy, 8 scored" \
  [ "$(col "$Q/table.csv" status gan),$(col "$Q/table.csv" healthy_levels gan),$(col "$Q/table.csv" healthy gan),$(col "$Q/table.csv" scored gan)" = "ok,all,8,8" ]
qv=$Q/gan/quality_vertebrae.csv
check "gan: 8 vertebrae in quality_vertebrae.csv" [ "$(($(wc -l <"$qv") - 1))" -eq 8 ]
check "gan: every case of every subset scored" \
  [ "$(cut -d, -f1 "$qv" | sort -u | grep -c .)" -eq 5 ]
check "quality_vertebrae.csv's header" \
  grep -qx "case,level,label,known_grade,slices,$(echo $MEASURES | tr ' ' ,)" "$qv"
check "gan: values in range (slices > 0, 0 < PSNR <= 100, SSIM <= 1, Dice and IoU in [0, 1], Dice >= IoU, RVD >= 0)" awk -F, \
  'NR > 1 { if (!($5 > 0 && $6 > 0 && $6 <= 100 && $7 <= 1 && $7 >= -1 && $8 > 0 && $8 <= 100 &&
    $9 <= 1 && $9 >= -1 && $10 >= 0 && $10 <= 1 && $11 >= 0 && $11 <= 1 && $10 >= $11 &&
    $12 >= 0)) bad++ } END { exit bad > 0 }' "$qv"
check "gan: Dice = 2 IoU / (1 + IoU) on every vertebra" awk -F, \
  'NR > 1 { d = $10 - 2 * $11 / (1 + $11); if (d < 0) d = -d; if (d > 1e-12) bad++ } END { exit bad > 0 }' "$qv"
# independent: mean and population variance of each measure over the vertebrae
i=6
for m in $MEASURES; do
  read -r mean var < <(awk -F, -v c=$i 'NR > 1 { x[NR] = $c; s += $c; n++ }
    END { mu = s / n; for (r in x) v += (x[r] - mu) ^ 2; printf "%.15g %.15g\n", mu, v / n }' "$qv")
  for pair in "${m}_mean:$mean" "${m}_var:$var"; do
    got=$(col "$Q/table.csv" "${pair%%:*}" gan)
    check "gan: ${pair%%:*} ($got) = awk over quality_vertebrae.csv (${pair##*:})" \
      awk -v a="$got" -v b="${pair##*:}" 'BEGIN { d = a - b; if (d < 0) d = -d; s = (b < 0 ? -b : b)
        exit !(a != "" && d <= 1e-12 * (s > 1 ? s : 1)) }'
  done
  i=$((i + 1))
done

# -- 3. the quality table on graded data: healthy levels are the grade-0 ones
# (a phantom cohort with fractures, table = quality, the baseline only: its
# row is n/a, but it counts the healthy levels)
G=$WORK/g
"$HV" reproduce "$SRC/configs/ctspine1k.ini" --set input.source=phantom --set phantom.cases=4 \
  --set phantom.seed=2 --set phantom.spacing=2 --set phantom.first=L1 --set phantom.last=L2 \
  --set phantom.fracture_rate=0.5 --set reproduce.table=quality --set run.progress_interval=0 \
  --set reproduce.output="$G" >"$G.log" 2>&1
rc=$?
check "graded phantom, table = quality: exit 0 (got $rc; $G.log)" [ $rc -eq 0 ]
n0=$(grep -o '"ph[0-9]*_[0-9]*":[[:space:]]*0' "$G/baseline/cohort/split.json" | grep -c .)
nall=$(grep -o '"ph[0-9]*_[0-9]*":[[:space:]]*[0-3]' "$G/baseline/cohort/split.json" | grep -c .)
check "the cohort has fractures ($n0 of $nall levels grade 0)" [ "$n0" -gt 0 ] && [ "$n0" -lt "$nall" ]
check "healthy = the grade-0 levels of the split ($n0)" \
  [ "$(col "$G/table.csv" healthy_levels baseline),$(col "$G/table.csv" healthy baseline)" = "grade0,$n0" ]
finish
