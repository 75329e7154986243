#!/usr/bin/env bash
# SIGKILL at several points, then resume: the final tables and grader results
# equal those of an uninterrupted run. Points (HV_CRASH_AT, a real SIGKILL the
# process sends itself at an exact place): after the store was rebuilt, before
# a journal append, between journal and store, after a store write, during
# gather; plus an external `kill -9` of the whole job at an arbitrary moment,
# and a journal whose last record is torn (cut mid-record).
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

run_hv 0 "$WORK/ref"; rc=$?
[ $rc -eq 0 ] || die "reference run failed ($rc), see $WORK/ref.log"

for point in after-create before-journal:2 after-journal:3 after-store:2 gather; do
  d="$WORK/kill-${point%%:*}"
  HV_CRASH_AT=$point run_hv 2 "$d"; rc=$?
  check "$point: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
  check "$point: crash hook fired" grep -q "crash point '${point%%:*}' reached" "$d.log"
  check "$point: store not complete after the kill" [ "$(store_state "$d")" != complete ]
  run_hv 2 "$d" ; rc=$?
  check "$point: resume exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
  check "$point: resumed == uninterrupted" same_results "$WORK/ref" "$d"
  check "$point: resumed store validates" valid "$d/store.h5"
done
# the resume after a kill between journal and store must not redo that case
check "after-journal: resume replays the journal" grep -q 'journal record(s) replayed' "$WORK/kill-after-journal.log"

# a torn last record: cut 40 bytes off the end of a journal
d="$WORK/torn"
HV_CRASH_AT=after-store:4 run_hv 0 "$d"
j="$d/journal/rank-0000.log"
sz=$(stat -c %s "$j")
truncate -s $((sz - 40)) "$j"
run_hv 0 "$d"; rc=$?
check "torn journal: resume exits 0 (rc $rc)" [ $rc -eq 0 ]
check "torn journal: the torn record was detected and cut" grep -q '1 torn record(s) cut off' "$d.log"
check "torn journal: resumed == uninterrupted" same_results "$WORK/ref" "$d"

# external kill -9 of the whole job (mpiexec and both ranks) mid-run
d="$WORK/extkill"
( HV_TEST_CASE_DELAY_MS=250 exec setsid "$MPIEXEC" -n 2 --oversubscribe "$HV" run "$COHORT" \
    --set output.dir="$d" >"$d.log" 2>&1 ) &
job=$!   # setsid without a fork: mpiexec's pid is its own process group
for _ in $(seq 1 200); do [ "$(journal_bytes "$d")" -gt 0 ] && break; sleep 0.05; done
sleep 0.4
kill -9 -- "-$job" 2>/dev/null || kill -9 "$job"
wait
n_before=$(grep -c ': done, ' "$d.log")
check "external kill: killed mid-run ($n_before of 10 cases done)" test "$n_before" -gt 0 -a "$n_before" -lt 10
run_hv 3 "$d"; rc=$?
check "external kill: resume with 3 ranks exits 0 (rc $rc)" [ $rc -eq 0 ]
check "external kill: resumed == uninterrupted" same_results "$WORK/ref" "$d"
check "external kill: resume skipped finished cases" grep -q "already finished" "$d.log"
finish
