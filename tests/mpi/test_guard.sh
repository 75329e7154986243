#!/usr/bin/env bash
# Runner hardening (issues 9 and 10): every check matches the message, not
# only the exit status, and checks that nothing was written where a refused
# command must not write.
#  1. config strictness: a directory or FIFO as the config, a 3000-character
#     value, trailing junk, a bad choice with file:line, a key twice in the
#     file (both lines named), a key twice on the command line, an over-long
#     path, a bad synthesis.precision; configs/example.ini lists every key
#     with its default
#  2. a bad input (split file, dataset) is found before anything is written
#  3. the output folder lock: a second run on a busy folder is refused at
#     once naming the holder; stale locks (dead pid, SIGKILL) are taken over,
#     a lock from another host is not
#  4. store and journal write errors carry the reason on every rank
#     (RLIMIT_FSIZE on rank 1 only; a full tmpfs when mounting is allowed)
#  5. export refuses a store that fails validation unless --force
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
SRC=$(cd "$(dirname "$COHORT")/../.." && pwd)
COHORT=$SRC/tests/mpi/$(basename "$COHORT")   # absolute: the checks below run in $WORK

# expect RC PATTERN LOG what: exit status RC and an extended regex in LOG
expect() {
  local want=$1 pat=$2 log=$3 what=$4 got=$5
  check "$what: exit $want (got $got; $log)" [ "$got" -eq "$want" ]
  check "$what: message matches '$pat' ($(head -c 300 "$log"))" grep -qE -- "$pat" "$log"
}

# ---------------------------------------------------------------- 1. config
cd "$WORK" || die "cd $WORK"
timeout 60 "$HV" run "$WORK" >c-dir.log 2>&1; rc=$?   # before the fix it ran the default pipeline
expect 2 "config: $WORK: is a directory" c-dir.log "config is a directory" $rc
check "config is a directory: nothing run" [ ! -e runs ]
mkfifo "$WORK/fifo.ini"
timeout 20 "$HV" run "$WORK/fifo.ini" >c-fifo.log 2>&1; rc=$?
expect 2 "is a FIFO" c-fifo.log "config is a FIFO (no hang)" $rc

long=$(head -c 3000 /dev/zero | tr '\0' 7)
"$HV" run "$COHORT" --set output.dir="$WORK/long" --set "phantom.spacing=1,1,1 $long" >c-long.log 2>&1; rc=$?
expect 2 "phantom.spacing = '1,1,1 7+\.\.\.' \(3006 characters\): expected one number or three" \
  c-long.log "3000-character value" $rc
check "3000-character value: nothing written" [ ! -e "$WORK/long" ]
"$HV" run "$COHORT" --set output.dir="$WORK/junk" --set phantom.cases=3x >c-junk.log 2>&1; rc=$?
expect 2 "phantom.cases = '3x': expected an integer in \[1, 10000000\]" c-junk.log "trailing junk" $rc
"$HV" run "$COHORT" --set output.dir="$WORK/junk" --set phantom.noise_hu=nan >c-nan.log 2>&1; rc=$?
expect 2 "phantom.noise_hu = 'nan': expected a number in \[0, 1000\]" c-nan.log "nan" $rc
"$HV" run "$COHORT" --set output.dir="$WORK/junk" --set phantom.spacing=2,2 >c-sp2.log 2>&1; rc=$?
expect 2 "phantom.spacing = '2,2'" c-sp2.log "two spacings" $rc
printf '; test\n[phantom]\ncases = 3\n\n[output]\nimages = qcx\n' >bad-choice.ini
"$HV" run bad-choice.ini >c-choice.log 2>&1; rc=$?
expect 2 "bad-choice.ini:6: output.images = 'qcx': expected one of: none, qc, full" c-choice.log \
  "bad choice in the file" $rc
"$HV" run "$COHORT" --set output.dir="$WORK/junk" --set synthesis.precision=fp16 >c-prec.log 2>&1; rc=$?
expect 2 "synthesis.precision = 'fp16': expected one of: fp32, bf16" c-prec.log "bad synthesis.precision" $rc
printf '[phantom]\ncases = 3\nseed = 2\n[run]\nthreads = 1\n[phantom]\ncases = 4\n' >twice.ini
"$HV" run twice.ini >c-twice.log 2>&1; rc=$?
expect 2 "twice.ini:7: phantom.cases given twice \(first on line 2\)" c-twice.log "key twice in the file" $rc
"$HV" run "$COHORT" --set output.dir="$WORK/junk" --set phantom.cases=3 --set phantom.cases=4 \
  >c-set2.log 2>&1; rc=$?
expect 2 "--set phantom.cases given twice on the command line" c-set2.log "key twice in --set" $rc
check "bad values: nothing written" [ ! -e "$WORK/junk" ]
"$HV" run "$COHORT" --set output.dir="$WORK/$(head -c 950 /dev/zero | tr '\0' d)" >c-path.log 2>&1; rc=$?
expect 2 "output.dir = '[^']+\.\.\.' \([0-9]+ characters\): expected a path of at most 899 characters" \
  c-path.log "over-long path" $rc
"$HV" run "$COHORT" --set input.source=dataset >c-nods.log 2>&1; rc=$?
expect 2 "input.source = dataset needs input.dataset" c-nods.log "dataset without a path" $rc

# configs/example.ini: every key, in table order, at its default
"$HV" run --keys | sed -n 's/^\([a-z_]*\)\.\([a-z_]*\) = \(.*\)$/\1.\2 = \3/p' >keys.txt
awk '/^\[/{gsub(/[][]/,""); s=$0; next} /^[a-z_]+ = /{print s "." $0}' "$SRC/configs/example.ini" \
  | sed 's/ *$//' >example.txt
sed -i 's/ *$//' keys.txt
check "configs/example.ini lists every key at its default ($(diff keys.txt example.txt | head -3))" \
  diff -q keys.txt example.txt
check "at least 30 keys listed" [ "$(wc -l <keys.txt)" -ge 30 ]
"$HV" run "$SRC/configs/example.ini" --set output.dir="$WORK/ex" --set phantom.cases=0 >c-ex.log 2>&1; rc=$?
expect 2 "phantom.cases = '0'" c-ex.log "example.ini parses (then the bad --set is named)" $rc

# ------------------------------------------------- 2. bad inputs write nothing
run_hv 0 "$WORK/nosplit" --set input.split="$WORK/nosuch.json"; rc=$?
expect 1 "input.split: .*$WORK/nosuch.json: does not exist" "$WORK/nosplit.log" "missing split file" $rc
check "missing split file: no output folder, store or journal" [ ! -e "$WORK/nosplit" ]
mkdir -p "$WORK/splitdir.json"
run_hv 0 "$WORK/dirsplit" --set input.split="$WORK/splitdir.json"; rc=$?
expect 1 "input.split: .*splitdir.json: is a directory" "$WORK/dirsplit.log" "split is a directory" $rc
check "split is a directory: nothing written" [ ! -e "$WORK/dirsplit" ]
echo '{"train": {"ph0000_20": 0},' >"$WORK/broken.json"
run_hv 0 "$WORK/badsplit" --set input.split="$WORK/broken.json"; rc=$?
expect 1 "input.split: .*broken.json" "$WORK/badsplit.log" "malformed split" $rc
check "malformed split: nothing written" [ ! -e "$WORK/badsplit" ]
run_hv 2 "$WORK/nodata" --set input.source=dataset --set input.dataset="$WORK/nosuch-data"; rc=$?
expect 1 "input.dataset: $WORK/nosuch-data: No such file or directory" "$WORK/nodata.log" \
  "missing dataset (2 ranks)" $rc
check "missing dataset: no output folder, store or journal" [ ! -e "$WORK/nodata" ]

# ----------------------------------------------------------------- 3. lock
d="$WORK/busy"
( HV_TEST_CASE_DELAY_MS=400 exec "$MPIEXEC" -n 2 --oversubscribe "$HV" run "$COHORT" \
    --set output.dir="$d" >"$d-a.log" 2>&1 ) &
job=$!
for _ in $(seq 1 600); do [ "$(journal_bytes "$d")" -gt 0 ] && break; sleep 0.05; done
check "busy: the first run holds the lock" [ -s "$d/run.lock" ]
holder=$(sed -n 's/^pid=//p' "$d/run.lock")
t0=$(date +%s)
"$HV" run "$COHORT" --set output.dir="$d" >"$d-b.log" 2>&1; rc=$?
t1=$(date +%s)
expect 1 "in use by another run \(host $(hostname), pid $holder, started 20[0-9-]+T[0-9:]+Z; lock $d/run.lock\)" \
  "$d-b.log" "second run on a busy folder" $rc
check "second run: refused at once ($((t1 - t0)) s)" [ $((t1 - t0)) -le 10 ]
check "second run: ran no case" bash -c "! grep -q 'case ph.*: start' '$d-b.log'"
wait $job; rc=$?
check "first run: exits 0 (rc $rc; $d-a.log)" [ $rc -eq 0 ]
check "first run: not disturbed, store validates" valid "$d/store.h5"
check "first run: lock released" [ ! -e "$d/run.lock" ]
check "first run: no case pending" bash -c "! grep -q 'still pending' '$d-a.log'"

# a stale lock of this host (a pid that is gone) is taken over
sleep 0 & dead=$!; wait $dead
printf 'healthivert run lock\nhost=%s\npid=%s\nstarted=2020-01-01T00:00:00Z\n' "$(hostname)" "$dead" >"$d/run.lock"
run_hv 0 "$d"; rc=$?
check "stale lock: run exits 0 (rc $rc)" [ $rc -eq 0 ]
check "stale lock: warned and taken over" grep -qF "lock $d/run.lock is stale (host $(hostname), pid $dead," "$d.log"
check "stale lock: released at the end" [ ! -e "$d/run.lock" ]
# a lock of another host cannot be checked: refused, with how to clear it
printf 'healthivert run lock\nhost=elsewhere.invalid\npid=1\nstarted=2020-01-01T00:00:00Z\n' >"$d/run.lock"
run_hv 0 "$d"; rc=$?
expect 1 "run on another host \(host elsewhere.invalid, pid 1, .*remove $d/run.lock" "$d.log" \
  "lock of another host" $rc
check "lock of another host: left in place" grep -q elsewhere.invalid "$d/run.lock"
rm -f "$d/run.lock"
# SIGKILL leaves the lock; the next run takes it over and resumes. One
# process: with 2 ranks the crash may hit rank 1, and then mpiexec's SIGTERM
# lets rank 0 stop cleanly and release the lock (nothing stale to test).
HV_CRASH_AT=after-store:2 run_hv 0 "$WORK/killed"; rc=$?
check "SIGKILL: the killed run failed (rc $rc)" [ $rc -ne 0 ]
check "SIGKILL: lock left behind" [ -s "$WORK/killed/run.lock" ]
run_hv 2 "$WORK/killed"; rc=$?
check "SIGKILL: resume exits 0 (rc $rc)" [ $rc -eq 0 ]
check "SIGKILL: stale lock taken over" grep -q "run.lock is stale" "$WORK/killed.log"
check "SIGKILL: resume finished every case" grep -q '10 cases: 10 done, 0 failed, 0 pending' "$WORK/killed.log"

# ------------------------------------------------- 4. write errors say why
# Rank 1 alone runs under RLIMIT_FSIZE = 4 KiB (SIGXFSZ ignored): the store
# (66 KB, written by rank 0) is past its limit, so its first store write
# fails with EFBIG. Its message must say so, not only "write failed".
cohort="$d/cohort"
r="$WORK/fsize"
# (the trap is set inside the rank: Open MPI resets signals before exec)
( exec "$MPIEXEC" --oversubscribe \
    -n 1 "$HV" run "$COHORT" --set output.dir="$r" --set input.source=dataset \
      --set input.dataset="$cohort" --set output.images=none : \
    -n 1 bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' _ "$HV" run "$COHORT" --set output.dir="$r" \
      --set input.source=dataset --set input.dataset="$cohort" --set output.images=none \
) >"$r.log" 2>&1; rc=$?
check "RLIMIT_FSIZE on rank 1: the run fails (rc $rc)" [ $rc -ne 0 ]
check "RLIMIT_FSIZE on rank 1: its message carries the reason ($(grep 'rank 1 stops' "$r.log"))" \
  grep -qE '\[rank 1\] error: rank 1 stops: .*(store: write failed|journal .*): File too large' "$r.log"
check "RLIMIT_FSIZE: lock released after the error" [ ! -e "$r/run.lock" ]
# A full file system where mounting is allowed (root with CAP_SYS_ADMIN),
# filled at two points of a 2-rank run, sized from the busy run above: half
# its journals (phase B: every rank's journal append fails) and its journals
# plus half its store (phase B fits; rank 0's end-of-run image pass, grading
# or store close fails). Each run must end within 120 s (a full disk used to
# leave both ranks waiting in the collective store close forever), exit 1
# rather than crash (HDF5 1.10 touched freed memory at shutdown after a
# failed close), and say "No space left on device"; every rank that stops
# says so. Then the file system grows and the same command resumes.
mnt="$WORK/mnt"
mkdir -p "$mnt"
jk=$(du -sk "$d/journal" | cut -f1)
sk=$(du -sk "$d/store.h5" | cut -f1)
if mount -t tmpfs -o size=$((jk / 2))k tmpfs "$mnt" 2>/dev/null; then
  full_run() { # full_run NAME: the run into $mnt/run, log $WORK/NAME.log, sets rc
    timeout 120 "$MPIEXEC" -n 2 --oversubscribe "$HV" run "$COHORT" --set output.dir="$mnt/run" \
      --set input.source=dataset --set input.dataset="$cohort" >"$WORK/$1.log" 2>&1
    rc=$?
  }
  for point in journals:$((jk / 2)) end:$((jk + sk / 2)); do
    what=${point%%:*} kib=${point#*:}
    rm -rf "$mnt/run"
    mount -o remount,size=${kib}k "$mnt"
    full_run "full-$what"
    log="$WORK/full-$what.log"
    check "full disk ($what, $kib KiB): the run fails, exit 1, no hang or crash (rc $rc; $log)" [ $rc -eq 1 ]
    check "full disk ($what): says why ($(grep -E 'error|stops' "$log" | head -3))" \
      grep -q 'No space left on device' "$log"
    n=$(grep -c 'rank [01] stops' "$log")
    m=$(grep 'rank [01] stops' "$log" | grep -c 'No space left on device')
    check "full disk ($what): every stopping rank says why ($m of $n)" [ "$m" -eq "$n" ]
  done
  check "full disk (journals): both ranks stopped ($(grep -c 'rank [01] stops' "$WORK/full-journals.log"))" \
    [ "$(grep -c 'rank [01] stops' "$WORK/full-journals.log")" -eq 2 ]
  mount -o remount,size=$((4 * (jk + sk)))k "$mnt"
  full_run full-resume
  check "full disk, then room: the same command resumes (rc $rc; $WORK/full-resume.log)" [ $rc -eq 0 ]
  check "full disk, then room: 10 cases done" \
    grep -q '10 cases: 10 done, 0 failed, 0 pending' "$WORK/full-resume.log"
  check "full disk, then room: store validates" valid "$mnt/run/store.h5"
  umount "$mnt"
else
  echo "# tmpfs mount not permitted here: the full-disk check is covered by RLIMIT_FSIZE above"
fi

# --------------------------------------------- 5. export of a damaged store
s="$d/store.h5"
cp "$s" "$WORK/damaged.h5"
off=$(h5dump -p -H -d /cases/status "$WORK/damaged.h5" | sed -n 's/^ *OFFSET \([0-9]*\)$/\1/p')
check "status dataset offset found ($off)" [ -n "$off" ]
# case 0 says failed, with no reason: validation must catch it
printf '\002' | dd of="$WORK/damaged.h5" bs=1 seek="$off" conv=notrunc status=none
"$HV" export "$WORK/damaged.h5" --csv "$WORK/exp-bad" >"$WORK/exp-bad.log" 2>&1; rc=$?
expect 1 "failed without a reason" "$WORK/exp-bad.log" "export of a damaged store" $rc
check "export of a damaged store: says nothing was exported" grep -q "nothing exported" "$WORK/exp-bad.log"
check "export of a damaged store: no tables written" [ ! -e "$WORK/exp-bad/cases.csv" ]
"$HV" export "$WORK/damaged.h5" --csv "$WORK/exp-force" --force >"$WORK/exp-force.log" 2>&1; rc=$?
expect 0 "failed without a reason" "$WORK/exp-force.log" "export --force" $rc
check "export --force: the problems are a warning" grep -q "healthivert export: warning: " "$WORK/exp-force.log"
check "export --force: tables written" [ -s "$WORK/exp-force/cases.csv" ]
"$HV" export "$s" --csv "$WORK/exp-ok" >/dev/null 2>&1; rc=$?
check "export of a valid store: exit 0 (rc $rc)" [ $rc -eq 0 ]
check "export of a valid store: equals the run's cases.csv" cmp -s "$WORK/exp-ok/cases.csv" "$d/cases.csv"
"$HV" export "$WORK" --csv "$WORK/exp-dir" >"$WORK/exp-dir.log" 2>&1; rc=$?
expect 1 "store: $WORK: is a directory" "$WORK/exp-dir.log" "export of a directory" $rc
timeout 20 "$HV" inspect "$WORK/fifo.ini" >"$WORK/insp-fifo.log" 2>&1; rc=$?
expect 1 "is a FIFO" "$WORK/insp-fifo.log" "inspect of a FIFO (no hang)" $rc
finish
