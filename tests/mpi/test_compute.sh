#!/usr/bin/env bash
# compute.device (src/mpi/compute.c) in `healthivert run`:
#  - cuda on a machine without a usable GPU (or a build without CUDA) is
#    refused (2 ranks) before anything is written: no store, lock,
#    journal or cohort in the output folder;
#  - auto runs on the CPU, says so once in rank 0's log and in the store's
#    provenance (/provenance/@compute_device = "cpu", read with h5dump);
#  - a bad value is a config error (exit 2) naming the key and the choices.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

if "$HV" version 2>/dev/null | grep -qE '[1-9][0-9]* device\(s\)'; then
  echo "# a CUDA device is usable here: the cuda refusal is not checked"
else
  run_hv 2 "$WORK/cu" --set compute.device=cuda; rc=$?
  check "cuda without a GPU exits 1 (got $rc)" [ $rc -eq 1 ]
  check "cuda: the message names the key and why ($(head -c 300 "$WORK/cu.log"))" \
    grep -qE 'compute.device = cuda: (this build has no CUDA|no usable CUDA device)' "$WORK/cu.log"
  check "cuda: nothing written ($(ls -A "$WORK/cu" 2>/dev/null | tr '\n' ' '))" \
    [ ! -e "$WORK/cu/store.h5" ] && [ ! -e "$WORK/cu/run.lock" ] && [ -z "$(ls -A "$WORK/cu" 2>/dev/null)" ]
fi

run_hv 2 "$WORK/auto" --set compute.device=auto; rc=$?
check "auto exits 0 (got $rc)" [ $rc -eq 0 ]
check "auto: rank 0 says compute: cpu once ($(grep -c 'compute: ' "$WORK/auto.log"))" \
  [ "$(grep -c 'compute: cpu' "$WORK/auto.log")" -eq 1 ]
prov=$(h5dump -a /provenance/compute_device "$WORK/auto/store.h5" 2>/dev/null | grep -o '"[^"]*"' | tail -1)
check "auto: /provenance/@compute_device is \"cpu\" (got $prov)" [ "$prov" = '"cpu"' ]

"$HV" run "$COHORT" --set output.dir="$WORK/bad" --set compute.device=gpu >"$WORK/bad.log" 2>&1; rc=$?
check "a bad value exits 2 (got $rc)" [ $rc -eq 2 ]
check "a bad value names the key and the choices" grep -q "compute.device = 'gpu': expected one of: auto, cpu, cuda" "$WORK/bad.log"
check "a bad value: no output folder" [ ! -e "$WORK/bad" ]
finish
