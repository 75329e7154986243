#!/usr/bin/env bash
# output.images = qc: the spine stage's per-vertebra QC pictures land in the
# store (/images/qc, one PNG per vertebra slot in schema v3) with real
# content for done cases, equal byte for byte (decoded) to what the
# pipeline draws for the same case at 1 and 2 ranks (hv_qc_compare), a spine failure on one
# case (forced with the HV_TEST_SPINE_FAIL hook) leaves that case done with
# blank pictures and a warning, the store validates, the pictures are the
# same bytes with 1, 2 and 3 ranks and after a kill and resume, and
# `export --csv` writes them as PNGs.
# 4 cases of T12-L2 at 2 mm: about 0.15 s per case here with the spine stage.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 QCCMP=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

"$HV" phantom --out "$WORK/data" --cases 4 --seed 5 --range T12-L2 --spacing 2 \
  --fracture-rate 0.3 >"$WORK/phantom.log" 2>&1 || die "phantom cohort failed"
args=(--set input.source=dataset --set input.dataset="$WORK/data" --set output.images=qc
      --set grader.method=rule)
HV_TEST_SPINE_FAIL=ph0002 run_hv 0 "$WORK/r1" "${args[@]}"; rc=$?
check "singleton run exits 0 (got $rc; $WORK/r1.log)" [ $rc -eq 0 ]
for n in 2 3; do
  HV_TEST_SPINE_FAIL=ph0002 run_hv $n "$WORK/r$n" "${args[@]}"; rc=$?
  check "$n-rank run exits 0 (got $rc; $WORK/r$n.log)" [ $rc -eq 0 ]
done
check "4 cases done, the one whose spine stage failed too" \
  [ "$(grep -c ',done,3,' "$WORK/r1/cases.csv")" -eq 4 ]
check "the spine failure is logged as a warning" \
  grep -q 'warning: case ph0002: stage straighten failed, going on without its spine' "$WORK/r1.log"
check "2 ranks: same results as 1" same_results "$WORK/r1" "$WORK/r2"
check "3 ranks: same results as 1" same_results "$WORK/r1" "$WORK/r3"
for r in r1 r2 r3; do
  check "$r: store validates" valid "$WORK/$r/store.h5"
  check "$r: the run's own output folder has no PNG per vertebra" [ ! -e "$WORK/$r/qc" ]
done

# the pictures read back from the store (PNG decoded) against the ones the
# pipeline draws for the same cases, run again here by hv_qc_compare
for r in r1 r2; do
  out=$(HV_TEST_SPINE_FAIL=ph0002 "$QCCMP" "$WORK/$r/store.h5" pipeline "$WORK/data" 2>&1); rc=$?
  check "$r: store pictures equal the pipeline's, every slot ($out)" [ $rc -eq 0 ]
  check "$r: 12 slots compared, ph0002's 3 blank ($out)" grep -q 'slots 12 equal 12 blank 3' <<<"$out"
done

# nonzero SLOT VIEW CHANNEL: nonzero bytes of one 256x256 picture (decoded
# from the store; slot = case index * 26 + vertebra).
nonzero() {
  "$QCCMP" "$WORK/r1/store.h5" nonzero "$1" "$2" "$3" 2>/dev/null || echo -1
}
# A done case's pictures, measured on this cohort: CT 12,065-12,621 nonzero
# px in the sagittal view (the crop's padding and air are black) and
# 6,272-6,528 in the coronal one (a 64-px wide strip pasted into the canvas);
# the target's label 575-874 px. Bounds: a factor of about 4 below.
ct_min=(3000 1500)
for slot in 0 2 26 80; do   # ph0000 T12 and L2, ph0001 T12, ph0003 L2
  for view in 0 1; do
    n=$(nonzero $slot $view 0)
    check "slot $slot view $view: CT picture has content ($n px)" [ "$n" -gt "${ct_min[$view]}" ]
    n=$(nonzero $slot $view 1)
    check "slot $slot view $view: target label present ($n px)" [ "$n" -gt 150 ]
  done
done
for view in 0 1; do
  for ch in 0 1; do
    n=$(nonzero 52 $view $ch)
    check "ph0002 (spine failed): picture view $view channel $ch blank ($n px)" [ "$n" -eq 0 ]
  done
done

for r in r1 r2 r3; do
  "$HV" export "$WORK/$r/store.h5" --csv "$WORK/exp-$r" >"$WORK/exp-$r.log" 2>&1; rc=$?
  check "$r: export exits 0 (rc $rc)" [ $rc -eq 0 ]
done
npng=$(ls "$WORK/exp-r1/qc" | grep -c '\.png$')
check "export wrote 3 cases x 3 vertebrae x 2 views PNGs ($npng), none for ph0002" [ "$npng" -eq 18 ]
for f in ph0000_T12_sag ph0000_T12_cor ph0003_L2_sag; do
  check "export wrote $f.png" [ -s "$WORK/exp-r1/qc/$f.png" ]
done
check "no PNG for the blank case" bash -c "! ls '$WORK/exp-r1/qc' | grep -q ph0002"
check "QC PNGs identical with 1 and 2 ranks" diff -r "$WORK/exp-r1/qc" "$WORK/exp-r2/qc"
check "QC PNGs identical with 1 and 3 ranks" diff -r "$WORK/exp-r1/qc" "$WORK/exp-r3/qc"
# SIGKILL after the second case's journal record, then resume: the store is
# rebuilt from the journals, so the pictures must travel in the records.
HV_CRASH_AT=after-journal:2 HV_TEST_SPINE_FAIL=ph0002 run_hv 0 "$WORK/k" "${args[@]}"; rc=$?
check "killed run died by SIGKILL (rc $rc)" [ $rc -eq 137 ]
HV_TEST_SPINE_FAIL=ph0002 run_hv 0 "$WORK/k" "${args[@]}"; rc=$?
check "resumed run exits 0 (rc $rc)" [ $rc -eq 0 ]
"$HV" export "$WORK/k/store.h5" --csv "$WORK/exp-k" >/dev/null 2>&1
check "resumed after a kill: same QC PNGs as uninterrupted" diff -r "$WORK/exp-r1/qc" "$WORK/exp-k/qc"
check "resumed after a kill: store validates" valid "$WORK/k/store.h5"
out=$(HV_TEST_SPINE_FAIL=ph0002 "$QCCMP" "$WORK/k/store.h5" pipeline "$WORK/data" 2>&1); rc=$?
check "resumed after a kill: pictures equal the pipeline's ($out)" [ $rc -eq 0 ]
# killed in the end-of-attempt image pass (rank 0, serial): the resume
# rebuilds the store from the journals, pictures included
HV_CRASH_AT=before-images HV_TEST_SPINE_FAIL=ph0002 run_hv 2 "$WORK/ki" "${args[@]}"; rc=$?
check "killed before the image pass (rc $rc)" [ $rc -ne 0 ]
HV_TEST_SPINE_FAIL=ph0002 run_hv 2 "$WORK/ki" "${args[@]}"; rc=$?
check "resumed after a kill before the image pass exits 0 (rc $rc)" [ $rc -eq 0 ]
check "resumed after a kill before the image pass: store validates" valid "$WORK/ki/store.h5"
"$HV" export "$WORK/ki/store.h5" --csv "$WORK/exp-ki" >/dev/null 2>&1
check "resumed after a kill before the image pass: same QC PNGs" diff -r "$WORK/exp-r1/qc" "$WORK/exp-ki/qc"
check "PNGs start with the PNG signature" \
  bash -c "head -c 8 '$WORK/exp-r1/qc/ph0000_T12_sag.png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"

# images = none: no spine stage, no /images group
run_hv 0 "$WORK/none" --set input.source=dataset --set input.dataset="$WORK/data" \
  --set output.images=none --set grader.method=rule; rc=$?
check "images=none run exits 0 (got $rc)" [ $rc -eq 0 ]
check "images=none: no /images/qc" bash -c "! h5ls '$WORK/none/store.h5/images' >/dev/null 2>&1"
# the stages only the pictures use are switched off: their columns (found by
# name in the header) are 0 for every case, and the store names them
check "images=none: straighten, crop and pictures take no time (< 10 ms per case)" \
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^s_(straighten|crop|pictures)$/) c[i] = 1;
                     if (length(c) != 3) exit 1; next }
           { for (i in c) if ($i > 0.01) exit 1 }' "$WORK/none/cases.csv"
"$HV" export "$WORK/none/store.h5" --csv "$WORK/exp-none" >/dev/null 2>&1
check "images=none: export writes no qc folder" [ ! -e "$WORK/exp-none/qc" ]
finish
