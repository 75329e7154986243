#!/usr/bin/env bash
# test_soak.sh: N small phantom cases on 2 ranks with QC pictures on, read
# through a manifest (K generated cases, T12-L2 at 3 mm, listed in turn
# under N ids), run twice:
#
#  1. uninterrupted. Every rank logs each case's wall time and its resident
#     memory (VmRSS of /proc/self/status) on a "timing:" line; from them:
#     memory: per rank, the largest VmRSS over the last half of its cases
#       must stay within MAX_GROWTH (5 %) of the largest over its warm-up:
#       its first quarter, but at least 40 cases or half of them (allocator
#       arenas, HDF5 and MPI buffers, and every one of the K inputs met at
#       least once: cases run in index order, so the inputs take turns);
#       printed per tenth of its cases;
#     throughput: cases per minute in each tenth of the run (both ranks'
#       cases in order of finishing, each rank's time from its own loop
#       start), printed; and cases per CPU-minute of the ranks (process CPU
#       time of every thread, from the same lines) in each tenth of every
#       rank's cases, which must reach MIN_RATE of the median tenth: work
#       that grows with the cases done (a journal, store or queue cost that
#       is not constant) shows there, while wall-clock rates on a shared
#       machine also follow the other jobs.
#  2. killed with SIGKILL (the whole job: mpiexec and both ranks) after a
#     random number of finished cases between a fifth and a half of N, then
#     resumed: the tables (vertebrae.csv, cases.csv outcomes, grader
#     results) must equal those of run 1 byte for byte.
#
# usage: test_soak.sh HEALTHIVERT MPIEXEC WORK COHORT_INI N K [MIN_RATE [MAX_GROWTH [REPORT]]]
#   K inputs (1..100); MIN_RATE 0..1 (default 0.5); MAX_GROWTH (default
#   0.05); REPORT: also write the figures there.
# Measured (results/soak.md): a rank's VmRSS climbs by about 6 % over its
# first 20-40 cases (allocator arenas of the three threads, HDF5 and MPI
# buffers; one step of 5.5 MB, +10 %, was seen at a rank's 6th case on a
# loaded machine) and is flat after that, so the short version, whose 20
# cases per rank are all warm-up, compares its last 10 with its first 10
# and checks for 10 %: a leak of one case's volumes per case (1.2 MB at
# 3 mm: 68 x 70 x 42 voxels) adds 12 MB (+20 %) over those 10 cases.
# Under AddressSanitizer (a binary linked with libasan: the CI's sanitizer
# pass) the memory figures are printed, not judged: ASan's quarantine holds
# freed blocks (256 MB by default), so VmRSS grows until it is full.
# The short version (label mpi, N = 40, K = 2) runs in CI; the long one (label
# slow, N = 10000) is results/soak.md's.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 N=$5 K=$6 MIN_RATE=${7:-0.5} MAX_GROWTH=${8:-0.05} REPORT=${9:-}
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
cd "$WORK" || die "cannot enter $WORK"

"$HV" phantom --out base --cases $K --seed 11 --range T12-L2 --spacing 3 >phantom.log 2>&1 \
  || die "phantom cohort failed (phantom.log)"
{
  echo "id,ct,mask,centroids"
  awk -v n="$N" -v k=$K 'BEGIN { for (i = 0; i < n; i++) {
      b = sprintf("base/raw/ph%04d/ph%04d", i % k, i % k)
      printf "s%06d,%s.nii.gz,%s_msk.nii.gz,%s.json\n", i, b, b, b } }'
} >manifest.csv
SOAK=(run "$COHORT" --set input.source=manifest --set input.manifest="$WORK/manifest.csv"
      --set output.images=qc --set run.order=index --set run.progress_interval=30)

# ------------------------------------------------------------ 1. uninterrupted
t0=$(date +%s.%N)
"$MPIEXEC" -n 2 --oversubscribe "$HV" "${SOAK[@]}" --set output.dir="$WORK/ref" >ref.log 2>&1
rc=$?
t1=$(date +%s.%N)
[ $rc -eq 0 ] || die "uninterrupted run failed ($rc), see $WORK/ref.log"
check "uninterrupted: $N cases done" grep -q "$N total, $N done, 0 failed" ref/summary.md

# "[rank R] info: case ID: timing: wall W s, ... cpu C s, rss K kB" -> "R W K C"
sed -n 's/^\[rank \([0-9]*\)\] info: case [^:]*: timing: wall \([0-9.]*\) s,.* cpu \([0-9.]*\) s, rss \(-\{0,1\}[0-9]*\) kB$/\1 \2 \4 \3/p' \
  ref.log >timing.txt
check "a timing line per case ($(wc -l <timing.txt) of $N)" [ "$(wc -l <timing.txt)" -eq "$N" ]

wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
# both ranks' cases in order of finishing: each rank's time from its own
# loop start (the sum of its cases' wall times)
awk '{ t[$1] += $2; print t[$1] }' timing.txt | sort -g >events.txt
(
  asan=0
  ldd "$HV" 2>/dev/null | grep -q libasan && asan=1
  awk -v maxg=$MAX_GROWTH -v wall="$wall" -v asan=$asan '
    { r = $1; n[r]++; rss[r, n[r]] = $3; ne++ }
    END {
      bad = 0
      printf "run: %d cases on 2 ranks in %.1f s wall (%.1f cases/min with start-up, image pass and gather)\n", ne, wall, 60 * ne / wall
      for (r in n) {
        m = n[r]; base = 0; peak = 0; line = ""
        # the warm-up: the first quarter, but at least 40 cases or half
        w = m / 4; if (w < 40) w = (m / 2 < 40) ? m / 2 : 40
        for (i = 1; i <= m; i++) {
          if (i <= w && rss[r, i] > base) base = rss[r, i]
          if (i > m / 2 && rss[r, i] > peak) peak = rss[r, i]
        }
        for (d = 0; d < 10; d++) {
          mx = 0
          for (i = int(d * m / 10) + 1; i <= int((d + 1) * m / 10); i++) if (rss[r, i] > mx) mx = rss[r, i]
          line = line sprintf(" %d", mx)
        }
        g = base > 0 ? peak / base - 1 : 1
        printf "rank %s: %d cases; largest VmRSS per tenth of its cases (kB):%s; last half vs first %d (warm-up) %+.2f %% (limit %+.0f %%)\n", r, m, line, int(w), 100 * g, 100 * maxg
        if (asan) printf "  (AddressSanitizer build: its quarantine keeps freed memory; not judged)\n"
        else if (base <= 0 || g > maxg) { printf "MEMORY GROWS on rank %s\n", r; bad = 1 }
      }
      exit bad
    }' timing.txt
  r1=$?
  awk '
    { ev[++ne] = $1 }
    END {
      prev = 0; line = ""
      for (d = 0; d < 10; d++) {
        lo = int(d * ne / 10); hi = int((d + 1) * ne / 10)
        dt = ev[hi] - prev
        line = line sprintf(" %.0f", (hi - lo) / (dt > 0 ? dt : 1e-9) * 60); prev = ev[hi]
      }
      printf "work-loop throughput per tenth of the run, wall clock (cases/min):%s\n", line
    }' events.txt
  awk -v minr="$MIN_RATE" '
    { r = $1; n[r]++; cpu[r, n[r]] = $4 }
    END {
      line = ""
      for (d = 0; d < 10; d++) {
        c = 0; s = 0
        for (r in n) for (i = int(d * n[r] / 10) + 1; i <= int((d + 1) * n[r] / 10); i++) { c++; s += cpu[r, i] }
        rate[d] = c / (s > 0 ? s : 1e-9) * 60; v[d] = rate[d]; line = line sprintf(" %.0f", rate[d])
      }
      for (i = 0; i < 10; i++) for (j = i + 1; j < 10; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
      med = (v[4] + v[5]) / 2
      printf "cases per CPU-minute of the ranks per tenth of their cases:%s; median %.0f, lowest %.0f = %.0f %% of the median (limit %.0f %%)\n", line, med, v[0], 100 * v[0] / med, 100 * minr
      if (v[0] < minr * med) { print "THROUGHPUT NOT STEADY"; exit 1 }
    }' timing.txt
  r2=$?
  exit $((r1 | r2))
) >figures.txt
rc=$?
cat figures.txt
check "memory flat after warm-up and throughput steady (figures above)" [ $rc -eq 0 ]

# ----------------------------------------------- 2. kill -9, resume, compare
kill_at=$(( N / 5 + RANDOM % (N / 2 - N / 5 + 1) ))
echo "killing the second run after $kill_at finished cases (of $N)"
d=$WORK/kill
( exec setsid "$MPIEXEC" -n 2 --oversubscribe "$HV" "${SOAK[@]}" --set output.dir="$d" >kill.log 2>&1 ) &
job=$!
# kill.log may not exist yet when the loop starts (the job's shell opens it):
# count that as 0 finished cases, not as the end of the wait
finished() { local c; c=$(grep -c ': timing: wall' kill.log 2>/dev/null); echo "${c:-0}"; }
while kill -0 $job 2>/dev/null && [ "$(finished)" -lt "$kill_at" ]; do
  sleep 0.2
done
kill -9 $(ps -o pid= -s "$job") 2>/dev/null || kill -9 "$job"
wait $job 2>/dev/null
killed_after=$(grep -c ': timing: wall' kill.log)
check "the second run was killed before the end ($killed_after cases finished)" \
  [ "$killed_after" -lt "$N" ]
"$MPIEXEC" -n 2 --oversubscribe "$HV" "${SOAK[@]}" --set output.dir="$d" >resume.log 2>&1
rc=$?
check "resume exits 0 (rc $rc; $WORK/resume.log)" [ $rc -eq 0 ]
resumed=$(sed -n 's/.*case(s) to run, \([0-9]*\) finished earlier.*/\1/p' resume.log | head -1)
check "the resume kept the killed run's finished cases (${resumed:-?})" [ "${resumed:-0}" -gt 0 ]
check "resumed == uninterrupted (vertebrae.csv, cases, grader)" same_results "$WORK/ref" "$d"
check "resumed store complete" [ "$(store_state "$d")" = complete ]
echo "kill -9 after $killed_after finished cases; the resume found ${resumed:-?} finished earlier"

if [ -n "$REPORT" ]; then
  {
    echo "soak: $N cases ($K phantom cases T12-L2 at 3 mm, listed in turn under $N ids in a manifest), 2 ranks, output.images = qc"
    cat figures.txt
    echo "kill -9 of the whole job after $killed_after finished cases (random, between N/5 and N/2); the resume found ${resumed:-?} finished earlier and ended with tables identical to the uninterrupted run: $( same_results "$WORK/ref" "$d" >/dev/null && echo yes || echo NO)"
  } >"$REPORT"
fi
finish
