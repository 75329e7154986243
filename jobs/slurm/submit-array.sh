#!/usr/bin/env bash
# Submit the sharded variant: an array of SHARDS jobs, then a gather job that
# starts only when every shard has succeeded (afterok).
#
#   jobs/slurm/submit-array.sh CONFIG.ini SHARDS [--set section.key=value]...
#
# Add %N to throttle (e.g. HV_ARRAY_THROTTLE=8 runs at most 8 shards at once).
set -euo pipefail
CONFIG=$1; SHARDS=$2; shift 2
here=$(dirname "$0")
spec="0-$((SHARDS - 1))${HV_ARRAY_THROTTLE:+%$HV_ARRAY_THROTTLE}"
arr=$(sbatch --parsable --array="$spec" "$here/run-array.sbatch" "$CONFIG" "$SHARDS" "$@")
arr=${arr%%;*}
gat=$(sbatch --parsable --dependency=afterok:"$arr" "$here/gather.sbatch" "$CONFIG" "$@")
echo "shards: job array $arr ($spec); gather: job ${gat%%;*} (after all shards succeed)"
