#!/usr/bin/env bash
# Fixture train_data: `healthivert prepare` on prepare.ini into DATA/prep
# (on 2 ranks), then DATA/train.h5 (the training file) and DATA/noval.h5
# (the same with an empty val split, by hv_make_noval).
HV=$1 DATA=$2 CFG=$3 NOVAL=$4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
MPIEXEC=${MPIEXEC:-mpiexec}
rm -rf "$DATA" && mkdir -p "$DATA"
"$MPIEXEC" -n 2 --oversubscribe "$HV" prepare "$CFG" --set output.dir="$DATA/prep" >"$DATA/prep.log" 2>&1
rc=$?
if [ $rc -ne 0 ] || [ ! -s "$DATA/prep/train.h5" ]; then
  tail -20 "$DATA/prep.log"; echo "not ok: prepare failed (rc $rc)"; echo "0 passed, 1 failed"; exit 1
fi
grep 'training set:' "$DATA/prep.log"
cp "$DATA/prep/train.h5" "$DATA/train.h5"
"$NOVAL" "$DATA/train.h5" "$DATA/noval.h5" || { echo "not ok: hv_make_noval"; echo "0 passed, 1 failed"; exit 1; }
echo "1 passed, 0 failed"
