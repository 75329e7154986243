#!/usr/bin/env bash
# jobs/slurm/train.sbatch on a real one-node Slurm (as test_slurm.sh): a USR1
# sent to the batch script mid-training (as --signal=B:USR1@300 does before
# the time limit) makes the training write a checkpoint and exit 75, the job
# requeues itself, and the requeued job resumes to the same weights as the
# same training run outside Slurm (bitwise: 2 ranks both times). Skips (77)
# only when Slurm is not installed or not root, and CI is unset.
HV=$1 MPIEXEC=$2 WORK=$3 TRAINSET=$4 CKDIFF=$5 SRC=$6
TCFG=$SRC/tests/train/train.ini COHORT=$TCFG
source "$SRC/tests/mpi/lib.sh" || { echo "not ok: $SRC/tests/mpi/lib.sh missing"; exit 1; }
source "$SRC/tests/train/lib.sh"
source "$(dirname "$0")/slurm_cluster.sh"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then die "Slurm (slurm-wlm, root) is needed under CI"; fi
  echo "SKIP: slurm-wlm is not installed or not root"; exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
trap slurm_down EXIT
slurm_up "$WORK/slurm" || die "could not start slurmctld/slurmd"
slurm_watchdog 540 "$WORK/job.out" "$WORK/ref.log"   # CTest's limit is 600 s
export HV HV_MAX_REQUEUES=3
# 12 steps (4 epochs of 3): the USR1 goes out after step 2 and reaches the
# training some 100 ms later, well before the end even where a step takes 0.1 s
S="--set train.n_epochs=2 --set train.n_epochs_decay=2 --set train.checkpoint_every=12"

train_hv 2 "$WORK/ref" $S; rc=$?
[ $rc -eq 0 ] || die "reference training failed ($rc)"

cd "$SRC"
jid=$(slurm_q sbatch --parsable -o "$WORK/job.out" jobs/slurm/train.sbatch "$TCFG" --set train.file="$TRAINSET" \
      --set train.output="$WORK/job" $S) || die "sbatch failed"
slurm_jids+=("$jid")
# USR1 once two steps are done (at most 150 s of wall time from the submission)
steps() { [ -s "$WORK/job/losses.csv" ] && grep -c '^[0-9]' "$WORK/job/losses.csv" || echo 0; }
end=$((SECONDS + 150))
while [ "$(steps)" -lt 2 ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
if [ "$(steps)" -lt 2 ]; then
  bad "the job logged no 2 training steps within 150 s (job $jid: $(slurm_jobstate "$jid"))"
  slurm_tell "$WORK/job.out"
  finish
fi
slurm_q scancel --batch --signal=USR1 "$jid"
st=$(slurm_wait_job "$jid" 240)
check "train job completed after requeue (state $st; $WORK/job.out)" [ "$st" = COMPLETED ]
check "the training stopped with 75 once" grep -q 'training exited with status 75' "$WORK/job.out"
check "it wrote a checkpoint when stopped" grep -qE 'checkpoint: step ([2-9]|1[01]) written' "$WORK/job.out"
check "the job requeued itself" grep -q "requeueing $jid" "$WORK/job.out"
check "the requeued job resumed" grep -q 'resumed from the checkpoint' "$WORK/job.out"
check "2 ranks from the allocation" grep -q '; 2 ranks;' "$WORK/job.out"
check "requeued job == uninterrupted (bitwise)" same_weights "$WORK/ref/checkpoint.h5" "$WORK/job/checkpoint.h5" 0
slurm_tell "$WORK/job.out"
finish
