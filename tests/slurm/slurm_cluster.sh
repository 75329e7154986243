# slurm_cluster.sh: start and stop a real one-node Slurm cluster for tests.
#
# Sourced. slurm_up DIR writes DIR/slurm.conf (auth/none, cred/none, ports
# chosen from a free-looking range, state, spool and logs under DIR), starts
# slurmctld and slurmd in the foreground mode as background children of this
# shell, exports SLURM_CONF, and waits until the node is idle. slurm_down
# stops exactly the two daemons it started (by pid). Needs root: slurmd
# launches jobs as their user and SlurmUser is root here. slurm_tell FILE...
# prints, after a failed check, the end of each job output and of the
# daemons' logs: CI keeps only what the test prints.
#
# Every wait is bounded by wall time, and every Slurm client call by
# `timeout` (a slurmctld that does not answer makes scontrol retry for tens
# of seconds per call), so a test fails with its diagnostics before CTest's
# own timeout kills it silently. slurm_watchdog SECONDS FILE... is the last
# line of defence: past SECONDS it prints slurm_diag and the files' ends,
# stops the daemons and the test's processes, and kills the test.
slurm_pids=()
slurm_dir=
slurm_jids=()   # the jobs a test submitted (slurm_diag shows them)
slurm_node=     # the node's name: this host's short name (slurm_up)
slurm_wd=

# slurm_q CMD...: a Slurm client call that gives up after 15 s
slurm_q() { timeout 15 "$@"; }

slurm_jobstate() { slurm_q scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

# slurm_wait_job JOBID SECONDS: the job's final state, or
# TIMEOUT_WAITING(state) once SECONDS of wall time have passed
slurm_wait_job() {
  local s= end=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$end" ]; do
    s=$(slurm_jobstate "$1")
    case "$s" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "$s"; return ;;
    esac
    sleep 0.25
  done
  echo "TIMEOUT_WAITING($s)"
}

# slurm_diag: the submitted jobs, the node, the queue and the processes now
slurm_diag() {
  local j
  echo "# --- Slurm at $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  for j in "${slurm_jids[@]}"; do slurm_q scontrol show job "$j" 2>&1 | sed 's/^/# /'; done
  slurm_q sinfo -N -o '%N %T %E' 2>&1 | sed 's/^/# /'
  slurm_q squeue -o '%i %T %r %M' 2>&1 | sed 's/^/# /'
  ps -eo pid,ppid,stat,etimes,time,args | grep -E 'healthivert|mpirun|slurmstepd' | grep -v grep | cut -c1-240 | sed 's/^/# /'
}

slurm_tell() {
  [ "${failn:-0}" -gt 0 ] || return 0
  local f
  slurm_diag
  for f in "$@" "$slurm_dir"/log/*.log; do
    if [ -f "$f" ]; then echo "# --- last lines of $f"; tail -n 40 "$f" | sed 's/^/# /'
    else echo "# --- $f: missing"; fi
  done
}

slurm_down() {
  local p
  if [ -n "$slurm_wd" ]; then kill "$slurm_wd" 2>/dev/null; wait "$slurm_wd" 2>/dev/null; slurm_wd=; fi
  for p in "${slurm_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${slurm_pids[@]}"; do wait "$p" 2>/dev/null; done
  slurm_pids=()
}

slurm_up() {
  local dir=$1 base cpus
  slurm_dir=$dir
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  # two consecutive ports in 20000-39999, skipping ones something listens on
  for _ in $(seq 1 20); do
    base=$((20000 + (RANDOM % 10000) * 2))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$((base + 1))") 2>/dev/null; then break; fi
  done
  cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS
  # The node is named as the host is (short name), as on a real cluster:
  # mpirun inside a job compares the allocation's node list with its own
  # host name, and a node of another name looks remote to it, so it would
  # start its daemon there through srun and wait for it to call back over
  # TCP: a path a one-node job on a real cluster never takes.
  slurm_node=$(hostname -s)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=hvtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/none
AuthInfo=cred_expire=5
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=5
Waittime=0
NodeName=$slurm_node NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$slurm_node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.stdout" 2>&1 &
  slurm_pids+=($!)
  slurmd -D -N "$slurm_node" -f "$SLURM_CONF" >"$dir/log/slurmd.stdout" 2>&1 &
  slurm_pids+=($!)
  local state="" end=$((SECONDS + 45))
  while [ "$SECONDS" -lt "$end" ]; do
    state=$(slurm_q sinfo -h -n "$slurm_node" -o %T 2>/dev/null | head -1)
    [ "$state" = idle ] && return 0
    sleep 0.25
  done
  echo "slurm did not come up (node state '$state'); logs:"
  tail -n 20 "$dir/log/"*.log "$dir/log/"*.stdout 2>/dev/null
  return 1
}

# slurm_watchdog SECONDS FILE...: in the background, past SECONDS of wall
# time print what is going on (slurm_diag, the ends of FILE... and of the
# daemons' logs), stop the daemons and the processes of this test's jobs, and
# kill the test (its EXIT trap is not needed then). slurm_down stops it.
slurm_watchdog() {
  local secs=$1 main=$$; shift
  (
    sleep "$secs" >/dev/null 2>&1 &
    sp=$!
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    wait $sp
    echo "not ok: the test ran past its own limit of $secs s; what was going on:"
    failn=1 slurm_tell "$@"
    for p in "${slurm_pids[@]}"; do kill "$p" 2>/dev/null; done
    pkill -f "$(dirname "$slurm_dir")/" 2>/dev/null
    echo "watchdog: stopped the daemons and the test"
    kill -KILL "$main" 2>/dev/null
  ) &
  slurm_wd=$!
}
