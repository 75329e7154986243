#!/usr/bin/env bash
# The attention stage (attention.model, issue 13) through the MPI runner,
# with a tiny random classifier (hv_make_cls_model, width 2) on 2 cases of
# L1-L2 at 2 mm (4 vertebrae; about 1.5 s of CPU per vertebra):
#  - a missing model, a GAN model given as the classifier and a file that is
#    no model are refused before the run starts, at 1 and 2 ranks, with a
#    message naming attention.model and the file, and nothing written in the
#    output folder;
#  - attention.store = full on 1 (singleton) and 2 ranks: the same vertebra
#    table (p_fracture, cam_mass_body, cam_max_slice included, a number on
#    every vertebra) and the same /vertebrae/cam (h5diff), maps written
#    (chunks allocated), stores valid, the store and the log name the
#    classifier (path, size, CRC-32, width);
#  - a SIGKILL after a journal append, then a resume: the same table and maps;
#  - a resume with other weights at the classifier's path is refused;
#  - attention.store = summary: the same table, no /vertebrae/cam; none: the
#    columns nan / -1;
#  - attention.store = full or none without attention.model: the run's log
#    says once (rank 0) that it has no effect; the default, or a model, no
#    such line;
#  - with the gan (synthesis.neighbours = 0, 1 case): the maps reach the
#    generator (its synthesized CT differs from the same run without
#    attention, on every vertebra);
#  - `prepare` with attention.model on 2 ranks: the training file gets /cam,
#    each item's map byte for byte one of the store's /vertebrae/cam rows of
#    the same run (both the map * 255 truncated), none of them all zero.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 MAKE_CLS=$5 MAKE_GAN=$6
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -x "$MAKE_CLS" ] || die "hv_make_cls_model '$MAKE_CLS' not found"
[ -x "$MAKE_GAN" ] || die "hv_make_gan_model '$MAKE_GAN' not found"
"$MAKE_CLS" "$WORK/cls.h5" --width 2 --seed 3 || die "classifier"
"$MAKE_GAN" "$WORK/gan.h5" --seed 3 --seg-bias 8 || die "gan model"
HV_RUN_EXTRA=(--set phantom.cases=2 --set phantom.first=L1 --set phantom.last=L2
              --set output.images=none --set grader.method=rule)
ATT=(--set "attention.model=$WORK/cls.h5" --set attention.store=full)

# h5diff's exit status: 0 same, 1 different, 2 error
same_cam() { h5diff "$1/store.h5" "$2/store.h5" /vertebrae/cam /vertebrae/cam >/dev/null 2>&1; }
# the attention columns (p_fracture, cam_mass_body, cam_max_slice: the last
# three of vertebrae.csv) hold a number on every vertebra
all_mapped() {
  [ "$(tail -n +2 "$1/vertebrae.csv" | awk -F, '$(NF-2) != "nan" && $(NF-1) != "nan" && $NF >= 17 && $NF <= 46' | wc -l)" -eq 4 ]
}

# ---- refusals before the run
for n in 0 2; do
  for m in "$WORK/nosuch.h5" "$WORK/gan.h5" "$COHORT"; do
    d="$WORK/bad-$n-$(basename "$m" | tr . _)"
    run_hv $n "$d" --set "attention.model=$m"; rc=$?
    check "$n ranks, classifier $m: refused (rc $rc)" [ $rc -ne 0 ]
    check "$n ranks, classifier $m: the message names attention.model and the file" \
      grep -q "attention.model.*$(basename "$m")" "$d.log"
    check "$n ranks, classifier $m: nothing written in the output folder" [ ! -e "$d" ]
  done
done

# ---- rank-count identity, full store
run_hv 0 "$WORK/r1" "${ATT[@]}"; rc=$?
[ $rc -eq 0 ] || die "attention singleton run failed ($rc), see $WORK/r1.log"
check "2 cases done" [ "$(grep -c ',done,' "$WORK/r1/cases.csv")" -eq 2 ]
check "every vertebra has p_fracture, mass and a slice in 17..46" all_mapped "$WORK/r1"
check "the classifier opened once per rank before the run" \
  grep -q "info: attention: classifier .*cls.h5 (.* bytes, crc32 [0-9a-f]\{8\}), width 2" "$WORK/r1.log"
"$HV" inspect "$WORK/r1/store.h5" >"$WORK/r1.inspect" 2>&1
check "the store names the classifier" \
  grep -q "attention: *classifier .*cls.h5 (.* bytes, crc32 [0-9a-f]\{8\}), width 2" "$WORK/r1.inspect"
check "inspect: 4 of 4 vertebrae mapped, maps in the store" \
  grep -q "attention maps: 4 of 4 vertebrae have p_fracture; maps in /vertebrae/cam" "$WORK/r1.inspect"
check "r1: store validates" valid "$WORK/r1/store.h5"
check "r1: maps written (chunks allocated)" \
  bash -c "h5ls -v '$WORK/r1/store.h5/vertebrae/cam' | grep -q ' [1-9][0-9]* allocated bytes'"
HV_TEST_CASE_DELAY_MS=100 run_hv 2 "$WORK/r2" "${ATT[@]}"; rc=$?
check "2 ranks: exits 0 (rc $rc; $WORK/r2.log)" [ $rc -eq 0 ]
check "2 ranks: same table as 1" same_results "$WORK/r1" "$WORK/r2"
check "2 ranks: same maps as 1" same_cam "$WORK/r1" "$WORK/r2"
check "2 ranks: store validates" valid "$WORK/r2/store.h5"

# ---- kill -9 after a journal append, resume
d="$WORK/kill"
HV_CRASH_AT=after-journal:1 run_hv 2 "$d" "${ATT[@]}"; rc=$?
check "kill: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
check "kill: crash hook fired" grep -q "crash point 'after-journal' reached" "$d.log"
run_hv 2 "$d" "${ATT[@]}"; rc=$?
check "kill: resume exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
check "kill: resumed table == uninterrupted" same_results "$WORK/r1" "$d"
check "kill: resumed maps == uninterrupted" same_cam "$WORK/r1" "$d"
check "kill: resumed store validates" valid "$d/store.h5"

# ---- other weights at the same path between a stop and a resume: refused
cp "$WORK/cls.h5" "$WORK/swap.h5"
SWAP=(--set "attention.model=$WORK/swap.h5" --set attention.store=full)
d="$WORK/swap"
HV_CRASH_AT=after-journal:1 run_hv 2 "$d" "${SWAP[@]}"; rc=$?
check "swap: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
"$MAKE_CLS" "$WORK/swap.h5" --width 2 --seed 4 || die "second classifier"
run_hv 2 "$d" "${SWAP[@]}"; rc=$?
check "swap: a resume with other weights at the same path is refused (rc $rc)" [ $rc -ne 0 ]
check "swap: the message says the journal holds other settings" grep -q "other settings" "$d.log"
check "swap: the journal names the classifier's crc" \
  grep -q "^attention.model_file=.*swap.h5 (.* bytes, crc32 [0-9a-f]\{8\})" "$d/journal/config.txt"

# ---- summary and none
run_hv 0 "$WORK/sum" --set "attention.model=$WORK/cls.h5"; rc=$?
check "summary: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "summary: the same table as full" same_results "$WORK/r1" "$WORK/sum"
check "summary: no /vertebrae/cam" bash -c "! h5ls '$WORK/sum/store.h5/vertebrae' | grep -q '^cam '"
run_hv 0 "$WORK/none" --set "attention.model=$WORK/cls.h5" --set attention.store=none; rc=$?
check "none: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "none: the columns nan, nan, -1" \
  [ "$(tail -n +2 "$WORK/none/vertebrae.csv" | grep -c ',nan,nan,-1$')" -eq 4 ]

# ---- attention.store set without attention.model: one warning at the start
for v in full none; do
  run_hv 2 "$WORK/nomodel-$v" --set attention.store=$v; rc=$?
  check "store = $v without a model: exits 0 (rc $rc)" [ $rc -eq 0 ]
  check "store = $v without a model: warned once, by rank 0" \
    [ "$(grep -c "^\[rank 0\] warning: attention.store = $v has no effect without attention.model" \
        "$WORK/nomodel-$v.log")" -eq 1 -a \
      "$(grep -c "has no effect without attention.model" "$WORK/nomodel-$v.log")" -eq 1 ]
done
run_hv 2 "$WORK/nomodel-default"; rc=$?
check "no model, store left at its default: exits 0 (rc $rc)" [ $rc -eq 0 ]
for d in nomodel-default r1 r2 sum none; do
  check "$d: no such warning" bash -c "! grep -q 'has no effect without attention.model' '$WORK/$d.log'"
done

# ---- the maps reach the gan
HV_RUN_EXTRA=(--set phantom.cases=1 --set phantom.first=L1 --set phantom.last=L2
              --set output.images=none --set grader.method=rule)
GAN=(--set synthesis.method=gan --set "synthesis.model=$WORK/gan.h5" --set synthesis.neighbours=0
     --set synthesis.nifti=on)
run_hv 0 "$WORK/gan0" "${GAN[@]}"; rc=$?
check "gan without attention: exits 0 (rc $rc)" [ $rc -eq 0 ]
run_hv 0 "$WORK/gan1" "${GAN[@]}" --set "attention.model=$WORK/cls.h5"; rc=$?
check "gan with attention: exits 0 (rc $rc)" [ $rc -eq 0 ]
# the synthesized CT (the generator's output inside the band) differs
# wherever a map was given: the HGAM input is 1 - CAM instead of all ones.
# (The heights need not: the tiny generator's biased segmentation head
# fills the band whatever its input.)
n=0; k=0
for f in "$WORK"/gan1/CT_fake/*.nii.gz; do
  [ -f "$f" ] || continue
  k=$((k + 1))
  cmp -s "$f" "$WORK/gan0/CT_fake/$(basename "$f")" || n=$((n + 1))
done
check "gan: synthesized CT files written ($k)" [ "$k" -ge 1 ]
check "gan: the maps change every synthesized CT ($n of $k differ)" [ "$n" -eq "$k" ]
# ---- prepare: the training file's /cam are the stage's maps
HV_RUN_EXTRA=(--set phantom.cases=2 --set phantom.first=L1 --set phantom.last=L2
              --set output.images=none --set grader.method=rule)
d=$WORK/prep
"$MPIEXEC" -n 2 --oversubscribe "$HV" prepare "$COHORT" --set output.dir="$d" "${HV_RUN_EXTRA[@]}" \
  "${ATT[@]}" >"$d.log" 2>&1; rc=$?
check "prepare with attention: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "prepare: the training file has /cam of the crops' dims" \
  grep -q "^cam  *Dataset {4/Inf, 256, 256, 64}" <(h5ls "$d/train.h5")
# the raw bytes of every map (4 MiB each, crop layout) in both files
h5dump -b LE -d /cam -o "$WORK/tcam.bin" "$d/train.h5" >/dev/null 2>&1
h5dump -b LE -d /vertebrae/cam -o "$WORK/scam.bin" "$d/store.h5" >/dev/null 2>&1
rows() { # FILE N: md5 of each 4 MiB row
  local k; for ((k = 0; k < $2; k++)); do
    dd if="$1" bs=4194304 skip=$k count=1 2>/dev/null | md5sum | cut -d' ' -f1; done; }
zero=$(head -c 4194304 /dev/zero | md5sum | cut -d' ' -f1)
nrows=$(( $(stat -c %s "$WORK/scam.bin" 2>/dev/null || echo 0) / 4194304 ))
rows "$WORK/scam.bin" "$nrows" >"$WORK/scam.md5"
n=0
for m in $(rows "$WORK/tcam.bin" 4); do
  [ "$m" != "$zero" ] && grep -qx "$m" "$WORK/scam.md5" && n=$((n + 1))
done
check "prepare: each item's /cam is one of the store's maps and not all zero ($n of 4)" [ "$n" -eq 4 ]
finish
