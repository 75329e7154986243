#!/usr/bin/env bash
# The shipped phantom models (models/README.md): prepare the phantom training
# file, train the sagittal and the coronal generator, and put each model file
# under models/.
#
#   scripts/train_models.sh [RUNDIR]      (default RUNDIR: runs)
#
# Steps (each resumable: re-running the script after a kill continues where
# it stopped; a finished step is not redone):
#   1. healthivert prepare configs/prepare-phantom.ini  -> RUNDIR/prepare-phantom/train.h5
#   2. healthivert train configs/train-phantom.ini          (train.plane = sagittal)
#      healthivert train configs/train-phantom-coronal.ini  (train.plane = coronal)
#      -> RUNDIR/train-phantom{,-coronal}/ (checkpoint.h5, val.csv, losses.csv, curves)
#   4. (after 3) the fracture classifier (issue 13):
#      healthivert prepare configs/prepare-classifier-phantom.ini
#      healthivert train-classifier configs/train-classifier-phantom.ini
#      -> models/phantom-classifier.h5 (its classifier.h5)
#   3. models/phantom-sagittal.h5, models/phantom-coronal.h5: the generator
#      part of each training checkpoint (/G/params and /meta, copied with
#      h5copy): a model file per hv/model.h (the generator read from
#      /G/params, the width from its shapes, the plane from /meta plane).
#      Once hv_model_synth_export (branch synth) is on main and reachable
#      from the command line, that should write them instead (/params).
#
# HV_TRAIN_SET=gpu (the shipped generators since 2026-12-04) uses
# configs/prepare-phantom-gpu.ini, configs/train-phantom-gpu.ini and
# configs/train-phantom-coronal-gpu.ini instead (compute.device = cuda: a
# CUDA build and a GPU; results/gpu-training-2026-12-04.md); HV_TRAIN_SET=cpu
# (default) the CPU configs above. The classifier step is the same for both.
# HV_TRAIN_SET=aotgan trains AOT-GAN's generator instead (issue 15's
# comparison method, configs/train-phantom-aotgan-gpu.ini on both planes,
# the coronal one with train.plane = coronal and max_steps 575 as ours) on
# the GPU training file, ships models/phantom-aotgan-{sagittal,coronal}.h5
# and skips the classifier. HV_TRAIN_SET=hgam ships nothing: it is issue 13's
# HGAM comparison at the GPU generators' schedule. The sagittal generator of
# configs/train-phantom-gpu.ini is trained twice, side by side, on the
# cohort of configs/prepare-phantom-gpu.ini at 1 mm (the shipped classifier's
# spacing): once from a training file without maps (the HGAM input all
# ones, RUNDIR/hgam-ones) and once from one whose items carry the Grad-CAM++
# maps of models/phantom-classifier.h5 (1 - CAM, RUNDIR/hgam-cam); each arm
# validates on its own val items with its own maps, and RUNDIR/hgam.csv holds
# the two arms' last val.csv rows. HV_TRAIN_DEVICE=cpu|cuda overrides the configs'
# compute.device; HV_TRAIN_WALL=S stops each training after S seconds with
# SIGUSR1 (the stop signal mpiexec passes on to its ranks): it writes its
# checkpoint and exits 75, and the model's /meta step says how far it got.
# HV_TRAIN_RANKS=N (default 1) runs each training under mpiexec -n N; the
# weights do not depend on the rank count (within float tolerance).
# HV_TRAIN_PARALLEL=1 trains the two planes at the same time (2 cores: each
# at about half speed; the wall time is about that of one).
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs}"
bin=build/bin/healthivert
[ -x "$bin" ] || { echo "train_models.sh: $bin not found: build first (README)" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ranks="${HV_TRAIN_RANKS:-1}"
launch=()
[ "$ranks" -gt 1 ] && launch=(mpiexec --oversubscribe -n "$ranks")

set_=${HV_TRAIN_SET:-cpu}
case "$set_" in
  cpu) sfx= ;;
  gpu|aotgan|hgam) sfx=-gpu ;;
  *) echo "train_models.sh: HV_TRAIN_SET must be cpu, gpu, aotgan or hgam" >&2; exit 2 ;;
esac
extra=()
[ -n "${HV_TRAIN_DEVICE:-}" ] && extra+=(--set "compute.device=$HV_TRAIN_DEVICE")
stop=()
[ -n "${HV_TRAIN_WALL:-}" ] && stop=(timeout --preserve-status -s USR1 -k 300 "$HV_TRAIN_WALL")
prep="$run/prepare-phantom$sfx"
t0=$(date +%s)
train() { # CONFIG OUTPUT [--set ...]: exit 75 (stopped by HV_TRAIN_WALL) is fine
  local c=$1 o=$2; shift 2
  "${stop[@]}" "${launch[@]}" "$bin" train "$c" --set train.file="$prep/train.h5" \
    --set train.output="$o" "${extra[@]}" "$@" || [ $? -eq 75 ]
}
# the generator part of each checkpoint: /G/params and /meta (h5copy, from
# hdf5-tools): what hv/model.h reads from a training checkpoint, without the
# discriminators and the Adam state (1.1 MB instead of 4.9 MB at cnum 8)
ship() { # CHECKPOINT MODEL
  rm -f "$2.tmp"
  h5copy -i "$1" -o "$2.tmp" -s /G/params -d /G/params -p
  h5copy -i "$1" -o "$2.tmp" -s /meta -d /meta
  mv "$2.tmp" "$2"
}
mkdir -p models
if [ "$set_" = hgam ]; then
  [ -f models/phantom-classifier.h5 ] || { echo "train_models.sh: models/phantom-classifier.h5 missing" >&2; exit 1; }
  h="$run/hgam"
  "$bin" prepare configs/prepare-phantom-gpu.ini --set phantom.spacing=1.0 \
    --set output.dir="$h-ones-prepare" "${extra[@]}"
  "$bin" prepare configs/prepare-phantom-gpu.ini --set phantom.spacing=1.0 \
    --set output.dir="$h-cam-prepare" --set attention.model=models/phantom-classifier.h5 "${extra[@]}"
  prep="$h-ones-prepare"
  train configs/train-phantom-gpu.ini "$h-ones" > "$run/hgam-ones.log" 2>&1 &
  pid=$!
  prep="$h-cam-prepare"
  train configs/train-phantom-gpu.ini "$h-cam" 2>&1 | tee "$run/hgam-cam.log"
  wait "$pid" || { tail -20 "$run/hgam-ones.log" >&2; exit 1; }
  { echo "arm,$(head -1 "$h-ones/val.csv")"
    for arm in ones cam; do
      awk -F, -v a="$arm" 'NR > 1 && $3 == "network" { r = $0 } END { print a "," r }' "$h-$arm/val.csv"
    done; } > "$run/hgam.csv"
  cat "$run/hgam.csv"
  echo "train_models.sh: $run/hgam.csv ($(( $(date +%s) - t0 )) s)"
  exit 0
fi
"$bin" prepare "configs/prepare-phantom$sfx.ini" --set output.dir="$prep"
if [ "$set_" = aotgan ]; then
  a="$run/train-phantom-aotgan"
  train configs/train-phantom-aotgan-gpu.ini "$a-sagittal" > "$run/train-aotgan-sagittal.log" 2>&1 &
  pid=$!
  train configs/train-phantom-aotgan-gpu.ini "$a-coronal" --set train.plane=coronal \
    --set train.max_steps=575 2>&1 | tee "$run/train-aotgan-coronal.log"
  wait "$pid" || { tail -20 "$run/train-aotgan-sagittal.log" >&2; exit 1; }
  ship "$a-sagittal/checkpoint.h5" models/phantom-aotgan-sagittal.h5
  ship "$a-coronal/checkpoint.h5" models/phantom-aotgan-coronal.h5
  echo "train_models.sh: models/phantom-aotgan-{sagittal,coronal}.h5 ($(( $(date +%s) - t0 )) s)"
  exit 0
fi
sag="$run/train-phantom$sfx"
cor="$run/train-phantom-coronal$sfx"
if [ "${HV_TRAIN_PARALLEL:-0}" = 1 ]; then
  train "configs/train-phantom$sfx.ini" "$sag" > "$run/train-sagittal.log" 2>&1 &
  pid=$!
  train "configs/train-phantom-coronal$sfx.ini" "$cor" 2>&1 | tee "$run/train-coronal.log"
  wait "$pid" || { tail -20 "$run/train-sagittal.log" >&2; exit 1; }
else
  train "configs/train-phantom$sfx.ini" "$sag"
  train "configs/train-phantom-coronal$sfx.ini" "$cor"
fi
ship "$sag/checkpoint.h5" models/phantom-sagittal.h5
ship "$cor/checkpoint.h5" models/phantom-coronal.h5
echo "train_models.sh: models/phantom-sagittal.h5, models/phantom-coronal.h5 ($(( $(date +%s) - t0 )) s)"
# 4. the fracture classifier whose Grad-CAM++ map guides the generator
"$bin" prepare configs/prepare-classifier-phantom.ini \
  --set output.dir="$run/prepare-classifier-phantom"
"${launch[@]}" "$bin" train-classifier configs/train-classifier-phantom.ini \
  --set classifier.file="$run/prepare-classifier-phantom/train.h5" \
  --set classifier.output="$run/train-classifier-phantom"
cp "$run/train-classifier-phantom/classifier.h5" models/phantom-classifier.h5.tmp
mv models/phantom-classifier.h5.tmp models/phantom-classifier.h5
echo "train_models.sh: models/phantom-classifier.h5 ($(( $(date +%s) - t0 )) s)"
