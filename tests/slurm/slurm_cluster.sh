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
slurm_pids=()
slurm_dir=

slurm_tell() {
  [ "${failn:-0}" -gt 0 ] || return 0
  local f
  for f in "$@" "$slurm_dir"/log/*.log; do
    if [ -f "$f" ]; then echo "# --- last lines of $f"; tail -n 40 "$f" | sed 's/^/# /'
    else echo "# --- $f: missing"; fi
  done
}

slurm_down() {
  local p
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
NodeName=hvnode NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=hvnode Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.stdout" 2>&1 &
  slurm_pids+=($!)
  slurmd -D -N hvnode -f "$SLURM_CONF" >"$dir/log/slurmd.stdout" 2>&1 &
  slurm_pids+=($!)
  local state=""
  for _ in $(seq 1 120); do
    state=$(sinfo -h -n hvnode -o %T 2>/dev/null | head -1)
    [ "$state" = idle ] && return 0
    sleep 0.25
  done
  echo "slurm did not come up (node state '$state'); logs:"
  tail -n 20 "$dir/log/"*.log "$dir/log/"*.stdout 2>/dev/null
  return 1
}
