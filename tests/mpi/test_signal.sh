#!/usr/bin/env bash
# SIGUSR1 (Slurm's warning before the time limit) delivered to mpiexec, which
# forwards it to every rank, and SIGTERM and SIGINT (Ctrl-C) delivered to a
# single process: the
# run finishes the cases in hand, closes the store cleanly (state
# "interrupted", valid against the schema), exits 75, and running the same
# command again completes with results identical to an uninterrupted run.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

run_hv 0 "$WORK/ref"; rc=$?
[ $rc -eq 0 ] || die "reference run failed ($rc), see $WORK/ref.log"

signal_run() { # NRANKS SIGNAL DIR
  local n=$1 sig=$2 d=$3
  if [ "$n" -eq 0 ]; then
    ( HV_TEST_CASE_DELAY_MS=300 exec "$HV" run "$COHORT" --set output.dir="$d" >"$d.log" 2>&1 ) &
  else
    ( HV_TEST_CASE_DELAY_MS=300 exec "$MPIEXEC" -n "$n" --oversubscribe "$HV" run "$COHORT" \
        --set output.dir="$d" >"$d.log" 2>&1 ) &
  fi
  local job=$!
  for _ in $(seq 1 400); do [ "$(journal_bytes "$d")" -gt 0 ] && break; sleep 0.05; done
  kill -"$sig" "$job"
  wait "$job"
}

for spec in "2 USR1 usr1" "0 TERM term" "0 INT int"; do
  set -- $spec
  d="$WORK/$3"
  signal_run "$1" "$2" "$d"; rc=$?
  check "SIG$2: exit status 75 (got $rc; $d.log)" [ $rc -eq 75 ]
  check "SIG$2: store state interrupted" [ "$(store_state "$d")" = interrupted ]
  check "SIG$2: interrupted store validates" valid "$d/store.h5"
  pending=$("$HV" inspect "$d/store.h5" | sed -n 's/^cases: .* \([0-9]*\) pending$/\1/p')
  check "SIG$2: some cases left pending (${pending:-?})" test "${pending:-0}" -gt 0
  check "SIG$2: says how to resume" grep -q 'run the same command again to resume' "$d.log"
  run_hv 2 "$d"; rc=$?
  check "SIG$2: resume exits 0 (got $rc)" [ $rc -eq 0 ]
  check "SIG$2: resumed == uninterrupted" same_results "$WORK/ref" "$d"
  check "SIG$2: resumed store is complete" [ "$(store_state "$d")" = complete ]
done
finish
