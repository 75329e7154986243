#!/usr/bin/env bash
# jobs/slurm on a real one-node Slurm (slurmctld + slurmd started here with
# auth/none on localhost ports): run.sbatch on the small phantom cohort
# completes and its store is complete and valid; a USR1 sent to the batch
# script mid-run (as --signal=B:USR1@120 does before the time limit) stops
# the run cleanly, the job requeues itself and the requeued job resumes to
# the same results; the sharded array + afterok gather variant gives the same
# results too. Skips (77) only when Slurm is not installed and CI is unset.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 SRC=$5
source "$SRC/tests/mpi/lib.sh" || { echo "not ok: $SRC/tests/mpi/lib.sh missing"; exit 1; }
source "$(dirname "$0")/slurm_cluster.sh"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    die "Slurm is not installed under CI (scripts/deps.sh test installs slurm-wlm)"
  fi
  echo "SKIP: slurm-wlm is not installed (scripts/deps.sh test installs it)"; exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then die "the Slurm test needs root under CI"; fi
  echo "SKIP: the one-node Slurm test starts slurmd, which needs root"; exit 77
fi

rm -rf "$WORK" && mkdir -p "$WORK"
trap slurm_down EXIT
slurm_up "$WORK/slurm" || die "could not start slurmctld/slurmd"
slurm_watchdog 380 "$WORK/job1.out" "$WORK/job2.out"   # CTest's limit is 420 s
export HV HV_MAX_REQUEUES=3

# reference, outside Slurm
run_hv 0 "$WORK/ref"; rc=$?
[ $rc -eq 0 ] || die "reference run failed ($rc)"

exitcode() { slurm_q scontrol show job "$1" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p'; }

# 1. plain job
cd "$SRC"
jid=$(slurm_q sbatch --parsable -o "$WORK/job1.out" jobs/slurm/run.sbatch "$COHORT" \
      --set output.dir="$WORK/job1") || die "sbatch failed"
slurm_jids+=("$jid")
st=$(slurm_wait_job "$jid" 100)
check "run.sbatch job $jid completed (state $st; $WORK/job1.out)" [ "$st" = COMPLETED ]
check "job exit code 0:0 ($(exitcode "$jid"))" [ "$(exitcode "$jid")" = 0:0 ]
check "store complete" [ "$(store_state "$WORK/job1")" = complete ]
check "store validates" valid "$WORK/job1/store.h5"
check "2 ranks ran (from the job's allocation)" grep -q '2 ranks' "$WORK/job1.out"
check "slurm job == run outside slurm" same_results "$WORK/ref" "$WORK/job1"

# 2. USR1 to the batch script mid-run -> clean stop, requeue, resume
jid=$(HV_TEST_CASE_DELAY_MS=400 slurm_q sbatch --parsable -o "$WORK/job2.out" jobs/slurm/run.sbatch "$COHORT" \
      --set output.dir="$WORK/job2") || die "sbatch failed"
slurm_jids+=("$jid")
end=$((SECONDS + 60))
while [ "$(journal_bytes "$WORK/job2")" -le 0 ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
slurm_q scancel --batch --signal=USR1 "$jid"
st=$(slurm_wait_job "$jid" 120)
check "signalled job completed after requeue (state $st; $WORK/job2.out)" [ "$st" = COMPLETED ]
check "the run stopped with 75 once" grep -q 'run exited with status 75' "$WORK/job2.out"
check "the job requeued itself" grep -q "requeueing $jid" "$WORK/job2.out"
check "the requeued job resumed" grep -q 'restart 1' "$WORK/job2.out"
check "requeued job == uninterrupted" same_results "$WORK/ref" "$WORK/job2"

# 3. sharded: phantom cohort first, then 3 shards + afterok gather
"$HV" phantom --out "$WORK/data" --cases 10 --seed 7 --range T10-L3 --spacing 2 \
  --fracture-rate 0.4 >/dev/null 2>&1 || die "phantom failed"
out=$(HV_ARRAY_THROTTLE=2 jobs/slurm/submit-array.sh "$COHORT" 3 --set input.source=dataset \
      --set input.dataset="$WORK/data" --set input.split="$WORK/data/split.json" \
      --set output.dir="$WORK/arr" 2>&1) || die "submit-array failed: $out"
gid=$(sed -n 's/.*gather: job \([0-9]*\).*/\1/p' <<<"$out")
slurm_jids+=("$gid")
st=$(slurm_wait_job "$gid" 120)
check "gather job $gid completed after the array (state $st)" [ "$st" = COMPLETED ]
nshard=$(ls "$WORK/arr"/store-shard-*.h5 2>/dev/null | wc -l)
check "3 shard stores ($nshard)" [ "$nshard" -eq 3 ]
check "shard stores validate (state partial)" valid "$WORK/arr/store-shard-0001.h5"
check "gather store complete" [ "$(store_state "$WORK/arr")" = complete ]
check "gather ran no case itself" grep -q '0 to run' "$(ls "$SRC"/healthivert-gather-"$gid".out 2>/dev/null || echo /dev/null)"
check "sharded == one job" same_results "$WORK/ref" "$WORK/arr"
slurm_tell "$WORK/job1.out" "$WORK/job2.out" "$SRC"/healthivert-*.out
rm -f "$SRC"/healthivert-*.out
finish
