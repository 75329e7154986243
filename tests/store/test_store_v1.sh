#!/usr/bin/env bash
# test_store_v1.sh: a store of schema v1 (tests/store/fixtures/store_v1.h5,
# written by git e3ecd55; fixtures/README.md) is still read by stage name:
#
#  - `healthivert inspect` describes it as v1, prints seconds/case under the
#    six v1 stage names with the means computed by hand from h5dump's values,
#    and validates it (exit 0, "ok (schema v1)");
#  - `healthivert export` writes cases.csv with one column s_<name> per v1
#    stage, and every value, looked up by its column NAME, equals h5dump's
#    value rounded to 6 decimals.
#
# The expected numbers below were read with h5dump, never with healthivert;
# the test also reads them again with h5dump, so a changed fixture cannot
# pass silently.
#
# usage: test_store_v1.sh HEALTHIVERT FIXTURE WORK
HV=$1 FIX=$2 WORK=$3
pass=0 failn=0
check() { # check "what" command...
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else failn=$((failn + 1)); echo "not ok: $what"; fi
}
case "$(basename "$WORK")" in tmp-*) ;; *) echo "not ok: scratch folder must be named tmp-*"; exit 1;; esac
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1

# h5dump -m '%.17g' -d /cases/table store_v1.h5: the `seconds` member per case
declare -A want
stages=(load measure synthesis grade images journal)
rows=(
  "ph0000 0.048917526999503025 0.20535130099960952 0.0078361230007431004 8.7370008259313181e-06 1.9999970390927047e-07 0.0047709169994050171"
  "ph0001 0.066242944001714932 0.17757755200000247 0.01044389299931936 4.4489988795248792e-06 1.6000012692529708e-07 0.00064938800096570048"
  "ph0002 0.050272046000827686 0.19193789900054981 0.0084784179998678155 6.5530002757441252e-06 1.4999932318460196e-07 0.0098551999999472173"
  "ph0003 0.071545577000506455 0.21878990999903181 0.01047199599997839 7.5950010796077549e-06 1.5999830793589354e-07 0.01169017000029271"
)
for r in "${rows[@]}"; do
  set -- $r
  id=$1; shift
  for s in "${stages[@]}"; do want[$id,$s]=$1; shift; done
done

# the fixture still holds exactly these values
if command -v h5dump >/dev/null; then
  got=$(h5dump -m '%.17g' -d /cases/table "$FIX" | sed -n 's/^ *\[ \(.*\) \]$/\1/p' | tr -d ,)
  exp=$(for r in "${rows[@]}"; do echo "${r#* }"; done)
  check "fixture: h5dump reads the seconds listed here" [ "$got" = "$exp" ]
else
  echo "not ok: h5dump not found (hdf5-tools)"; failn=$((failn + 1))
fi

# -- inspect
out=$("$HV" inspect "$FIX" 2>&1); rc=$?
echo "$out" >"$WORK/inspect.txt"
check "inspect of a v1 store: exit 0 (got $rc)" [ $rc -eq 0 ]
check "inspect says schema v1" grep -q '^schema: *healthivert-store v1$' <<<"$out"
check "inspect validates it as v1" grep -q '^validation: *ok (schema v1)$' <<<"$out"
check "inspect: 4 done cases" grep -q '^cases: *4 total, 4 done, 0 failed, 0 pending$' <<<"$out"
# means by hand from the table above (fixtures/README.md), 3 decimals
check "inspect: seconds/case by name" grep -q \
  '^seconds/case:  *load 0.059 measure 0.198 synthesis 0.009 grade 0.000 images 0.000 journal 0.007$' \
  <<<"$out"

# -- export
"$HV" export "$FIX" --csv "$WORK/exp" >"$WORK/export.log" 2>&1; rc=$?
check "export of a v1 store: exit 0 (got $rc)" [ $rc -eq 0 ]
csv=$WORK/exp/cases.csv
check "cases.csv header: the v1 stage names, s_<name>" [ "$(head -n 1 "$csv")" = \
  "case,status,n_vert,rank,attempt,error_code,error,ct_path,mask_path,s_load,s_measure,s_synthesis,s_grade,s_images,s_journal" ]
check "cases.csv: 4 cases" [ "$(tail -n +2 "$csv" | wc -l)" -eq 4 ]
# every s_<name> value, found by its column name, against h5dump's value
for id in ph0000 ph0001 ph0002 ph0003; do
  for s in "${stages[@]}"; do
    v=$(awk -F, -v id="$id" -v col="s_$s" '
      NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
      $1 == id && c { print $c }' "$csv")
    check "export $id s_$s = ${want[$id,$s]} (got '$v')" \
      awk -v a="$v" -v b="${want[$id,$s]}" 'BEGIN { d = a - b; if (a == "" || d > 5.0001e-7 || d < -5.0001e-7) exit 1 }'
  done
done
check "vertebrae.csv: 24 vertebrae" [ "$(tail -n +2 "$WORK/exp/vertebrae.csv" | wc -l)" -eq 24 ]

echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
