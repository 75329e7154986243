#!/usr/bin/env bash
# SIGKILL at several points, then resume: the final tables and grader results
# equal those of an uninterrupted run. Points (HV_CRASH_AT, a real SIGKILL the
# process sends itself at an exact place): after the store was rebuilt, before
# a journal append, between journal and store, after a store write, during
# gather; plus an external `kill -9` of the whole job at an arbitrary moment,
# and a journal whose last record is torn (cut mid-record).
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
# No QC pictures: what a kill may break is the journal, the store and the
# gather, none of which depends on them (test_qc.sh resumes with pictures),
# and under the sanitizers the spine stage is most of a case's time.
HV_RUN_EXTRA=(--set output.images=none)
rm -rf "$WORK" && mkdir -p "$WORK"

run_hv 0 "$WORK/ref"; rc=$?
[ $rc -eq 0 ] || die "reference run failed ($rc), see $WORK/ref.log"

for point in after-create before-journal:2 after-journal:3 after-store:2 gather; do
  d="$WORK/kill-${point%%:*}"
  HV_CRASH_AT=$point run_hv 2 "$d"; rc=$?
  check "$point: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
  check "$point: crash hook fired" grep -q "crash point '${point%%:*}' reached" "$d.log"
  check "$point: store not complete after the kill" [ "$(store_state "$d")" != complete ]
  cp "$d.log" "$d.killed.log"
  run_hv 2 "$d" ; rc=$?
  check "$point: resume exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
  check "$point: resumed == uninterrupted" same_results "$WORK/ref" "$d"
  check "$point: resumed store validates" valid "$d/store.h5"
done
# the resume after a kill between journal and store must not redo that case.
# Checked in the store, not in a log line: every case a rank started before
# it was killed right after a journal append (its last one journalled, not
# yet in the store) keeps attempt 1 and that rank in the exported cases.csv
# (a redo would give attempt 2), and every other case was run by attempt 2.
check "after-journal: resume replays the journal" grep -q 'journal record(s) replayed' "$WORK/kill-after-journal.log"
not_redone() {
  local d=$1 killed=$1.killed.log rc=0 ncrash nstart
  ncrash=$(grep -c "crash point 'after-journal' reached" "$killed")
  [ "$ncrash" -ge 1 ] || { echo "  no rank reached the crash point"; return 1; }
  # "[rank R] info: case ID: start" -> "ID R"
  sed -n 's/^\[rank \([0-9]*\)\] info: case \([^:]*\): start .*/\2 \1/p' "$killed" | sort >"$d.started"
  nstart=$(wc -l <"$d.started")
  [ "$nstart" -ge 3 ] || { echo "  only $nstart case(s) started before the kill"; return 1; }
  # cases.csv: case,status,n_vert,rank,attempt,...
  awk -F, 'NR == FNR { r[$1] = $2; next } FNR > 1 {
      if ($1 in r) { if ($5 != 1 || $4 != r[$1]) { print "  " $1 " redone: rank " $4 ", attempt " $5; bad++ } n++ }
      else if ($5 != 2) { print "  " $1 ": attempt " $5 ", expected 2"; bad++ } }
    END { exit (bad > 0 || n != '"$nstart"') }' <(tr ' ' ',' <"$d.started") "$d/cases.csv" || rc=1
  return $rc
}
check "after-journal: the journalled cases were not redone (store: rank and attempt 1)" \
  not_redone "$WORK/kill-after-journal"

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
    --set output.dir="$d" "${HV_RUN_EXTRA[@]}" >"$d.log" 2>&1 ) &
job=$!   # setsid without a fork: mpiexec's pid is its own process group
# wait for a finished case (journal bytes alone no longer say so: every
# journal file starts with a layout record)
for _ in $(seq 1 400); do grep -q ': done, ' "$d.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.4
# the whole job: Open MPI starts each rank in its own process group (so
# `kill -- -$job` would leave the ranks running on as orphans, and the resume
# would meet them through the output folder lock), but they stay in
# mpiexec's session: kill every process of that session, by pid
kill -9 $(ps -o pid= -s "$job") 2>/dev/null || kill -9 "$job"
wait
n_before=$(grep -c ': done, ' "$d.log")
check "external kill: killed mid-run ($n_before of 10 cases done)" test "$n_before" -gt 0 -a "$n_before" -lt 10
run_hv 3 "$d"; rc=$?
check "external kill: resume with 3 ranks exits 0 (rc $rc)" [ $rc -eq 0 ]
check "external kill: resumed == uninterrupted" same_results "$WORK/ref" "$d"
check "external kill: resume skipped finished cases" grep -q "already finished" "$d.log"
finish
