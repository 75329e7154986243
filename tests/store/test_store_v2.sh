#!/usr/bin/env bash
# test_store_v2.sh: a store of schema v2 (tests/store/fixtures/store_v2.h5,
# QC pictures as raw uint8 slots; fixtures/README.md) is still read by this
# build, which writes v4 (pictures as PNG bytes since v3):
#
#  - `healthivert inspect` describes it as v2 and validates it (exit 0);
#  - every used picture read through the store API (hv_qc_compare nonzero,
#    the v2 read path of hv_store_read_qc) has the nonzero pixel count that
#    h5dump, an independent reader, finds in the same hyperslab;
#  - `healthivert export` writes its QC PNGs, 2 per vertebra.
#
# usage: test_store_v2.sh HEALTHIVERT FIXTURE WORK QC_COMPARE
HV=$1 FIX=$2 WORK=$3 QCCMP=$4
pass=0 failn=0
check() { # check "what" command...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else failn=$((failn + 1)); echo "not ok: $what"; fi
}
case "$(basename "$WORK")" in tmp-*) ;; *) echo "not ok: scratch folder must be named tmp-*"; exit 1;; esac
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
command -v h5dump >/dev/null || { echo "not ok: h5dump not found (hdf5-tools)"; exit 1; }

out=$("$HV" inspect "$FIX" 2>&1); rc=$?
check "inspect validates the v2 store (rc $rc)" [ $rc -eq 0 ]
check "inspect says schema v2" grep -q 'healthivert-store v2' <<<"$out"
check "inspect: 2 cases done, 6 vertebrae" grep -q '6 (in done cases)' <<<"$out"

# the fixture: 2 cases x 3 vertebrae (T12, L1, L2): slots 0-2 and 26-28
ncmp=0 ncontent=0
for slot in 0 1 2 26 27 28; do
  for view in 0 1; do
    for ch in 0 1; do
      f="$WORK/s-$slot-$view-$ch.bin"
      h5dump -d /images/qc -s "$slot,$view,$ch,0,0" -c "1,1,1,256,256" -b NATIVE -o "$f" "$FIX" \
        >/dev/null 2>&1 || { check "h5dump reads slot $slot" false; continue; }
      want=$(tr -d '\000' <"$f" | wc -c)
      got=$("$QCCMP" "$FIX" nonzero $slot $view $ch 2>&1)
      check "slot $slot view $view channel $ch: $got nonzero pixels, h5dump $want" [ "$got" = "$want" ]
      ncmp=$((ncmp + 1))
      [ "$want" -gt 100 ] && ncontent=$((ncontent + 1))
    done
  done
done
check "24 pictures compared, every one with content ($ncontent)" [ $ncmp -eq 24 -a $ncontent -eq 24 ]

"$HV" export "$FIX" --csv "$WORK/exp" >"$WORK/exp.log" 2>&1; rc=$?
check "export of the v2 store exits 0 (rc $rc)" [ $rc -eq 0 ]
n=$(ls "$WORK/exp/qc" 2>/dev/null | grep -c '\.png$')
check "export wrote 12 QC PNGs ($n)" [ "$n" -eq 12 ]
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
