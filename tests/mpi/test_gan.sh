#!/usr/bin/env bash
# synthesis.method = gan through the MPI runner, with a tiny random generator
# (hv_make_gan_model, cnum 2; its fine segmentation head biased so that the
# synthesized target fills the restored band rows: measurable, not random
# specks) on a cohort small enough for the generator's cost (2 cases of
# L1-L2 at 2 mm, the target step only: synthesis.neighbours = 0; about 6 s
# of CPU per vertebra, 4.5 gan runs of 4 vertebrae):
#  - a missing model, a model of another architecture and a file that is no
#    model are refused before the run starts, at 1 and 2 ranks, with a
#    message naming synthesis.model and the file, and nothing written in
#    the output folder;
#  - synthesis.precision = bf16 where oneDNN's ISA is capped below bf16
#    (ONEDNN_MAX_CPU_ISA) is refused the same way, saying why; where the
#    CPU has bf16 a run names it in the model's provenance line;
#  - 1 (singleton), 2 and 3 ranks give the same vertebra table;
#  - a SIGKILL after a journal append, then a resume, gives it too;
#  - a resume with other weights at the model's path is refused;
#  - the store names the model (path, size, CRC-32, cnum);
#  - a NaN generator: every vertebra flagged synth_fallback, its values the
#    baseline's (the rows of a baseline run), and with fallback = none NaN
#    and no_synth;
#  - synthesis.nifti = on (in the 3-rank run) writes the reference's files
#    for every vertebra the GAN did not fall back on, and changes nothing
#    else;
#  - synthesis.crops = full (the rank-count and kill runs): the stored
#    crops equal the CT_fake / label_fake files of the same run voxel for
#    voxel, the original crops the label/ files' target and synth_ct off
#    the synthesized slices (hv_synth_compare), 1, 2 and 3 ranks and the
#    killed-and-resumed run store identical /vertebrae/synth_label,
#    synth_ct, orig_ct and orig_label (hv_synth_compare --same), a
#    vertebra that fell back has an empty slot (the NaN model, masks), and
#    `export` writes one file per stored crop; with the baseline method the
#    key draws a warning and the store has no crops.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 MAKE_MODEL=$5 SYNTH_COMPARE=$6
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -x "$MAKE_MODEL" ] || die "hv_make_gan_model '$MAKE_MODEL' not found"
[ -x "$SYNTH_COMPARE" ] || die "hv_synth_compare '$SYNTH_COMPARE' not found"
"$MAKE_MODEL" "$WORK/tiny.h5" --seed 3 --seg-bias 8 || die "tiny model"
"$MAKE_MODEL" "$WORK/nan.h5" --nan || die "NaN model"
"$MAKE_MODEL" "$WORK/broken.h5" --broken || die "broken model"
HV_RUN_EXTRA=(--set phantom.cases=2 --set phantom.first=L1 --set phantom.last=L2
              --set output.images=none --set grader.method=rule --set synthesis.neighbours=0)
GAN=(--set synthesis.method=gan --set "synthesis.model=$WORK/tiny.h5")
CROPS=(--set synthesis.crops=full)
# every slot of both crop datasets byte for byte, some with a crop (not
# h5diff: it calls a dataset without chunks "not comparable" and exits 0)
same_crops() {
  "$SYNTH_COMPARE" --same "$1/store.h5" "$2/store.h5" >"$2.same" 2>&1 &&
    grep -q "^slots [0-9]* equal, [1-9][0-9]* with a crop" "$2.same"
}

# ---- refusals before the run
for n in 0 2; do
  for m in "$WORK/nosuch.h5" "$WORK/broken.h5" "$COHORT"; do
    d="$WORK/bad-$n-$(basename "$m" | tr . _)"
    run_hv $n "$d" --set synthesis.method=gan --set "synthesis.model=$m"; rc=$?
    check "$n ranks, model $m: refused (rc $rc)" [ $rc -ne 0 ]
    check "$n ranks, model $m: the message names synthesis.model and the file" \
      grep -q "synthesis.model.*$(basename "$m")" "$d.log"
    check "$n ranks, model $m: nothing written in the output folder" [ ! -e "$d" ]
  done
done
# synthesis.precision = bf16 where oneDNN may not use bf16 (its ISA capped
# below avx512_core_bf16, as on a CPU without avx512_bf16/AMX): refused
# before the run with the reason, nothing written
for n in 0 2; do
  d="$WORK/bf16no-$n"
  ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI run_hv $n "$d" "${GAN[@]}" --set synthesis.precision=bf16; rc=$?
  check "$n ranks, bf16 without avx512_bf16: refused (rc $rc)" [ $rc -ne 0 ]
  check "$n ranks, bf16 without avx512_bf16: says why" \
    grep -q "synthesis.precision = bf16: .*avx512_bf16" "$d.log"
  check "$n ranks, bf16 without avx512_bf16: nothing written in the output folder" [ ! -e "$d" ]
done
run_hv 0 "$WORK/nomodel" --set synthesis.method=gan; rc=$?
check "gan without synthesis.model refused (rc $rc)" [ $rc -ne 0 ]
check "gan without synthesis.model: says so" grep -q "needs synthesis.model" "$WORK/nomodel.log"

# ---- rank-count identity
run_hv 0 "$WORK/r1" "${GAN[@]}" "${CROPS[@]}"; rc=$?
[ $rc -eq 0 ] || die "gan singleton run failed ($rc), see $WORK/r1.log"
check "2 cases done" [ "$(grep -c ',done,' "$WORK/r1/cases.csv")" -eq 2 ]
nsyn=$(tail -n +2 "$WORK/r1/vertebrae.csv" | grep -vc synth_fallback)
check "the GAN's values on some vertebrae ($nsyn of 4)" [ "$nsyn" -ge 1 ]
check "the model opened once per rank before the run" grep -q "info: synthesis: gan, sagittal: .*tiny.h5 (.* bytes, crc32 [0-9a-f]\{8\}), cnum 2" "$WORK/r1.log"
"$HV" inspect "$WORK/r1/store.h5" >"$WORK/r1.inspect" 2>&1
check "the store names the model" grep -q "synthesis: *gan, sagittal: .*tiny.h5 (.* bytes, crc32 [0-9a-f]\{8\}), cnum 2" "$WORK/r1.inspect"
# synthesis.precision = bf16 where the CPU has it: runs, says so in the
# model's provenance, measures the same vertebrae
run_hv 0 "$WORK/bf16" "${GAN[@]}" --set synthesis.precision=bf16; rc=$?
if grep -q "synthesis.precision = bf16: .*avx512_bf16" "$WORK/bf16.log"; then
  echo "# no bf16 on this CPU: only its refusal is checked"
else
  check "bf16: exits 0 (rc $rc; $WORK/bf16.log)" [ $rc -eq 0 ]
  check "bf16: the model's provenance says bf16" \
    grep -q "info: synthesis: gan, sagittal: .*cnum 2, target only (no neighbour steps), bf16 convolutions" "$WORK/bf16.log"
  check "bf16: the same vertebrae as fp32" \
    [ "$(cut -d, -f1-2 "$WORK/bf16/vertebrae.csv")" = "$(cut -d, -f1-2 "$WORK/r1/vertebrae.csv")" ]
fi
NII=()
for n in 2 3; do
  [ $n -eq 3 ] && NII=(--set synthesis.nifti=on)
  HV_TEST_CASE_DELAY_MS=100 run_hv $n "$WORK/r$n" "${GAN[@]}" "${CROPS[@]}" "${NII[@]}"; rc=$?
  check "gan, $n ranks: exits 0 (rc $rc; $WORK/r$n.log)" [ $rc -eq 0 ]
  check "gan, $n ranks: same results as 1" same_results "$WORK/r1" "$WORK/r$n"
  check "gan, $n ranks: store validates" valid "$WORK/r$n/store.h5"
  check "gan, $n ranks: same synthesized crops as 1" same_crops "$WORK/r1" "$WORK/r$n"
done
# the stored crops against the same run's reference-layout NIfTI files
"$SYNTH_COMPARE" "$WORK/r3/store.h5" "$WORK/r3" >"$WORK/r3.compare" 2>&1; rc=$?
check "crops: the store's crops equal CT_fake / label_fake voxel for voxel (rc $rc; $WORK/r3.compare)" \
  [ $rc -eq 0 ]
check "crops: one per synthesized vertebra, both crops, some slices compared" \
  grep -q "^vertebrae 4 crops $nsyn synthesized-slices [1-9][0-9]* fallbacks $((4 - nsyn)) (label and CT, original crops)" \
  "$WORK/r3.compare"
check "crops: the chunks are stored (allocated bytes)" \
  bash -c "h5ls -v '$WORK/r1/store.h5/vertebrae/synth_ct' | grep -q ' [1-9][0-9]* allocated bytes'"
"$HV" inspect "$WORK/r1/store.h5" >"$WORK/r1.inspect2" 2>&1
check "crops: inspect names them" \
  grep -q "synth crops: */vertebrae/synth_label, /vertebrae/synth_ct, the original crops /vertebrae/orig_ct, orig_label (synthesis.crops = full" \
  "$WORK/r1.inspect2"
"$HV" export "$WORK/r1/store.h5" --csv "$WORK/r1-export" >"$WORK/r1-export.log" 2>&1; rc=$?
check "crops: export exits 0 (rc $rc)" [ $rc -eq 0 ]
k=$(ls "$WORK/r1-export/synth" 2>/dev/null | wc -l)
check "crops: export writes the label and CT crops and the two original crops per synthesized vertebra ($k, want $((4 * nsyn)))" \
  [ "$k" -eq $((4 * nsyn)) ]
nct=$(ls "$WORK/r1-export/synth" 2>/dev/null | grep -c '_orig_ct\.nii\.gz$')
nlab=$(ls "$WORK/r1-export/synth" 2>/dev/null | grep -c '_orig_label\.nii\.gz$')
check "crops: export writes both original crops of each synthesized vertebra ($nct CT, $nlab label, want $nsyn each)" \
  [ "$nct" -eq "$nsyn" -a "$nlab" -eq "$nsyn" ]
check "crops: export says how many" grep -q ", $((4 * nsyn)) synthesized crops)" "$WORK/r1-export.log"

# ---- kill -9 after a journal append, resume
d="$WORK/kill"
HV_CRASH_AT=after-journal:1 run_hv 2 "$d" "${GAN[@]}" "${CROPS[@]}"; rc=$?
check "kill: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
check "kill: crash hook fired" grep -q "crash point 'after-journal' reached" "$d.log"
run_hv 2 "$d" "${GAN[@]}" "${CROPS[@]}"; rc=$?
check "kill: resume exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
check "kill: resumed == uninterrupted" same_results "$WORK/r1" "$d"
check "kill: resumed store validates" valid "$d/store.h5"
check "kill: resumed crops == uninterrupted" same_crops "$WORK/r1" "$d"

# ---- other weights at the same path between a stop and a resume: refused
# (the journal keeps each model file's size and CRC-32, not only its path)
cp "$WORK/tiny.h5" "$WORK/swap.h5"
SWAP=(--set synthesis.method=gan --set "synthesis.model=$WORK/swap.h5")
d="$WORK/swap"
HV_CRASH_AT=after-journal:1 run_hv 2 "$d" "${SWAP[@]}"; rc=$?
check "swap: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
"$MAKE_MODEL" "$WORK/swap.h5" --seed 4 --seg-bias 8 || die "second model"
run_hv 2 "$d" "${SWAP[@]}"; rc=$?
check "swap: a resume with other weights at the same path is refused (rc $rc)" [ $rc -ne 0 ]
check "swap: the message says the journal holds other settings" grep -q "other settings" "$d.log"
check "swap: the journal names the model file's crc" grep -q "^synthesis.model_files=sagittal: .*swap.h5 (.* bytes, crc32 [0-9a-f]\{8\})" "$d/journal/config.txt"
cp "$WORK/tiny.h5" "$WORK/swap.h5"
run_hv 2 "$d" "${SWAP[@]}"; rc=$?
check "swap: with the first weights back the resume completes (rc $rc; $d.log)" [ $rc -eq 0 ]
check "swap: resumed == uninterrupted" same_results "$WORK/r1" "$d"

# ---- NaN generator: every vertebra falls back, flagged
run_hv 0 "$WORK/base" --set synthesis.crops=masks; rc=$?
[ $rc -eq 0 ] || die "baseline run failed ($rc)"
check "baseline with synthesis.crops: warned at the start" \
  grep -q "synthesis.crops = masks has no effect with synthesis.method = baseline" "$WORK/base.log"
check "baseline with synthesis.crops: no crops in the store" \
  bash -c "! h5ls '$WORK/base/store.h5/vertebrae' | grep -q '^synth_'"
run_hv 0 "$WORK/nan" --set synthesis.method=gan --set "synthesis.model=$WORK/nan.h5" \
  --set synthesis.crops=masks; rc=$?
check "NaN model: exits 0 (rc $rc)" [ $rc -eq 0 ]
check "NaN model: every vertebra flagged synth_fallback" \
  [ "$(tail -n +2 "$WORK/nan/vertebrae.csv" | grep -vc synth_fallback)" -eq 0 ]
check "NaN model: the log says why" grep -q "gan synthesis not used (the generator gave non-finite values)" "$WORK/nan.log"
"$SYNTH_COMPARE" "$WORK/nan/store.h5" "$WORK/nan" >"$WORK/nan.compare" 2>&1
check "NaN model, crops = masks: every slot empty, every vertebra flagged" \
  grep -q "^vertebrae 4 crops 0 synthesized-slices 0 fallbacks 4 (label)$" "$WORK/nan.compare"
# vertebrae.csv: flags is column 8; everything but the flags equals the baseline's
check "NaN model: the baseline's values" \
  diff <(cut -d, -f1-7,9- "$WORK/base/vertebrae.csv") <(cut -d, -f1-7,9- "$WORK/nan/vertebrae.csv")
run_hv 0 "$WORK/nan0" --set synthesis.method=gan --set "synthesis.model=$WORK/nan.h5" \
  --set synthesis.fallback=none; rc=$?
check "NaN model, fallback none: exits 0 (rc $rc)" [ $rc -eq 0 ]
# (the last three columns: the attention stage's, nan / -1 without it)
check "NaN model, fallback none: h_syn and RHLV nan, flagged no_synth and synth_fallback" \
  [ "$(tail -n +2 "$WORK/nan0/vertebrae.csv" | grep -c 'no_synth|synth_fallback.*,nan,nan,nan,nan,nan,nan,nan,nan,nan,nan,-1$')" -eq 4 ]

# ---- NIfTI outputs (the 3-rank run; its results equal the others above)
for sub in label_fake CT_fake label; do
  k=$(ls "$WORK/r3/$sub" 2>/dev/null | wc -l)
  check "nifti: one $sub file per synthesized vertebra ($k, want $nsyn)" [ "$k" -eq "$nsyn" ]
done
check "nifti: none in the runs without it" [ ! -e "$WORK/r2/label_fake" ]
finish
