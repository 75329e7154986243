#!/usr/bin/env bash
# synthesis.method = aotgan (issue 15: AOT-GAN's generator through the gan's
# steps) through the MPI runner, with a tiny random AOT-GAN model file
# (hv_make_gan_model --aot 1, width 4, its label channel biased so that the
# synthesized target fills its rows) on test_gan.sh's small cohort (2 cases of
# L1-L2 at 2 mm, the target step only):
#  - a model file of the other kind is refused before the run starts, both
#    ways (aotgan given our generator, gan given AOT-GAN's), at 1 and 2 ranks,
#    the message naming synthesis.model, the file and both kinds, nothing
#    written in the output folder;
#  - 1 (singleton) and 2 ranks give the same vertebra table, some vertebrae
#    with the generator's values; the log and the store name the model with
#    its kind and width;
#  - `reproduce` with methods gan and aotgan, each with its own model file
#    through a [reproduce.aotgan] section (the synthesis-quality table, so
#    that 2 cases do): both rows scored, each method's store naming its own
#    model; a [reproduce.<method>] of a method not listed, a line that is not
#    section.key = value, and synthesis.method there are refused (exit 2).
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 MAKE_MODEL=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -x "$MAKE_MODEL" ] || die "hv_make_gan_model '$MAKE_MODEL' not found"
"$MAKE_MODEL" "$WORK/aot.h5" --aot 1 --cnum 4 --seed 3 --seg-bias 8 || die "tiny AOT-GAN model"
"$MAKE_MODEL" "$WORK/ours.h5" --seed 3 --seg-bias 8 || die "tiny model"
HV_RUN_EXTRA=(--set phantom.cases=2 --set phantom.first=L1 --set phantom.last=L2
              --set output.images=none --set grader.method=rule --set synthesis.neighbours=0)
AOT=(--set synthesis.method=aotgan --set "synthesis.model=$WORK/aot.h5")

# ---- the other kind, refused before the run
for n in 0 2; do
  for c in "aotgan ours.h5 healthivert" "gan aot.h5 aotgan"; do
    set -- $c
    d="$WORK/bad-$n-$1"
    run_hv $n "$d" --set synthesis.method=$1 --set "synthesis.model=$WORK/$2"; rc=$?
    check "$n ranks, method $1 given $2: refused (rc $rc)" [ $rc -ne 0 ]
    check "$n ranks, method $1 given $2: the message names synthesis.model, the file and both kinds" \
      grep -q "synthesis.model.*$2' holds a $3 generator.*synthesis.method = $1 takes a" "$d.log"
    check "$n ranks, method $1 given $2: nothing written in the output folder" [ ! -e "$d" ]
  done
done
run_hv 0 "$WORK/nomodel" --set synthesis.method=aotgan; rc=$?
check "aotgan without synthesis.model refused (rc $rc)" [ $rc -ne 0 ]
check "aotgan without synthesis.model: says so" \
  grep -q "synthesis.method = aotgan needs synthesis.model" "$WORK/nomodel.log"

# ---- rank-count identity
run_hv 0 "$WORK/r1" "${AOT[@]}"; rc=$?
[ $rc -eq 0 ] || die "aotgan singleton run failed ($rc), see $WORK/r1.log"
check "2 cases done" [ "$(grep -c ',done,' "$WORK/r1/cases.csv")" -eq 2 ]
nsyn=$(tail -n +2 "$WORK/r1/vertebrae.csv" | grep -vc synth_fallback)
check "the generator's values on some vertebrae ($nsyn of 4)" [ "$nsyn" -ge 1 ]
check "the model opened once per rank before the run, kind and width named" \
  grep -q "info: synthesis: aotgan, sagittal: .*aot.h5 (.* bytes, crc32 [0-9a-f]\{8\}), AOT-GAN width 4" "$WORK/r1.log"
"$HV" inspect "$WORK/r1/store.h5" >"$WORK/r1.inspect" 2>&1
check "the store names the model" grep -q "synthesis: *aotgan, sagittal: .*aot.h5 .*AOT-GAN width 4" "$WORK/r1.inspect"
HV_TEST_CASE_DELAY_MS=100 run_hv 2 "$WORK/r2" "${AOT[@]}"; rc=$?
check "aotgan, 2 ranks: exits 0 (rc $rc; $WORK/r2.log)" [ $rc -eq 0 ]
check "aotgan, 2 ranks: same results as 1" same_results "$WORK/r1" "$WORK/r2"
check "aotgan, 2 ranks: store validates" valid "$WORK/r2/store.h5"

# ---- reproduce: each method its own model ([reproduce.<method>] keys)
repro_cfg() { # FILE EXTRA-SECTION-TEXT
  { cat "$COHORT"
    printf '\n[synthesis]\nmodel = %s\nneighbours = 0\ncrops = full\n' "$WORK/ours.h5"
    printf '\n[reproduce]\nmethods = gan, aotgan\ntable = quality\noutput = %s\n' "$WORK/rq"
    printf '%b' "$2"; } >"$1"
}
repro() { # CONFIG LOG
  "$HV" reproduce "$1" --set phantom.cases=2 --set phantom.first=L1 --set phantom.last=L2 \
    >"$2" 2>&1
}
repro_cfg "$WORK/rq.ini" "\n[reproduce.aotgan]\n; AOT-GAN's own generator\nsynthesis.model = $WORK/aot.h5\n"
repro "$WORK/rq.ini" "$WORK/rq.log"; rc=$?
check "reproduce gan + aotgan with [reproduce.aotgan]: exit 0 (rc $rc; $WORK/rq.log)" [ $rc -eq 0 ]
for m in gan aotgan; do
  check "reproduce: $m row scored" grep -q "^$m,ok," "$WORK/rq/table.csv"
done
"$HV" inspect "$WORK/rq/gan/store.h5" >"$WORK/rq-gan.inspect" 2>&1
"$HV" inspect "$WORK/rq/aotgan/store.h5" >"$WORK/rq-aot.inspect" 2>&1
check "reproduce: the gan row ran the file's model" grep -q "synthesis: *gan, sagittal: .*ours.h5" "$WORK/rq-gan.inspect"
check "reproduce: the aotgan row ran [reproduce.aotgan]'s model" \
  grep -q "synthesis: *aotgan, sagittal: .*aot.h5 .*AOT-GAN width 4" "$WORK/rq-aot.inspect"
for bad in "unlisted:\n[reproduce.baseline]\nsynthesis.neighbours = 1\n:'baseline' is not in reproduce.methods" \
           "nodot:\n[reproduce.aotgan]\nmodel = $WORK/aot.h5\n:holds run keys as section.key = value" \
           "method:\n[reproduce.aotgan]\nsynthesis.method = gan\n:cannot set synthesis.method"; do
  name=${bad%%:*}; rest=${bad#*:}; text=${rest%:*}; want=${rest##*:}
  repro_cfg "$WORK/rq-$name.ini" "$text"
  repro "$WORK/rq-$name.ini" "$WORK/rq-$name.log"; rc=$?
  check "reproduce, [reproduce.<method>] $name: exit 2 (rc $rc)" [ $rc -eq 2 ]
  check "reproduce, [reproduce.<method>] $name: says why" grep -q "$want" "$WORK/rq-$name.log"
done
finish
