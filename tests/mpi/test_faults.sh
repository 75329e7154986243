#!/usr/bin/env bash
# A cohort with a corrupt .nii.gz, a missing mask, an empty mask and a
# single-vertebra mask: those four cases are recorded as failed with their
# reasons, all others are done, the run exits 3 (finished with failures) and
# says so, the store validates, and `inspect` and `export` report the same.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 MAKE_FAULTS=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

"$HV" phantom --out "$WORK/data" --cases 8 --seed 3 --range T12-L3 --spacing 2 \
  --fracture-rate 0.3 >"$WORK/phantom.log" 2>&1 || die "phantom cohort failed"
"$MAKE_FAULTS" "$WORK/data" >"$WORK/faults.log" 2>&1 || die "make_faults failed: $(cat "$WORK/faults.log")"

run_hv 2 "$WORK/run" --set input.source=dataset --set input.dataset="$WORK/data" \
  --set input.split="$WORK/data/split.json"; rc=$?
check "exit status 3 = finished with failed cases (got $rc; $WORK/run.log)" [ $rc -eq 3 ]
check "summary line counts the failures" grep -q '8 cases: 4 done, 4 failed, 0 pending' "$WORK/run.log"

c="$WORK/run/cases.csv"
status_of() { grep "^$1," "$c" | cut -d, -f2; }
for id in ph0000 ph0005 ph0006 ph0007; do
  check "$id done" [ "$(status_of $id)" = done ]
done
for id in ph0001 ph0002 ph0003 ph0004; do
  check "$id failed" [ "$(status_of $id)" = failed ]
done
check "corrupt CT: reason names the load stage and the file" \
  grep -q '^ph0001,failed,0,.*load: .*ph0001.nii.gz' "$c"
check "missing mask: reason says the mask is missing" grep -qi '^ph0002,failed,0,.*mask' "$c"
check "empty mask: reason says there is no label" grep -qiE '^ph0003,failed,0,.*(no vertebra|no label|empty)' "$c"
check "single vertebra: reason says only one vertebra" grep -q '^ph0004,failed,0,.*only one vertebra (L1)' "$c"

out=$("$HV" inspect "$WORK/run/store.h5"); rc=$?
check "inspect validates the store (rc $rc)" [ $rc -eq 0 ]
check "inspect shows the schema version" grep -q 'healthivert-store v4' <<<"$out"
check "inspect lists 4 failures" [ "$(sed -n '/^failures:/,/^$/p' <<<"$out" | grep -c '^  ph000')" -eq 4 ]
check "summary.md lists the failures" grep -q 'only one vertebra' "$WORK/run/summary.md"

"$HV" export "$WORK/run/store.h5" --csv "$WORK/export" >/dev/null; rc=$?
check "export exits 0" [ $rc -eq 0 ]
check "export cases.csv equals the run's" cmp -s "$WORK/export/cases.csv" "$c"
nv=$(tail -n +2 "$WORK/export/vertebrae.csv" | wc -l)
check "export has 4 done cases x 4 vertebrae T12-L3 ($nv rows)" [ "$nv" -eq 16 ]
# Error paths: the status, the message that names the bad input, and nothing
# written (docs/testing.md, "What makes a test honest here").
"$HV" run "$COHORT" --set phantom.casess=3 --set output.dir="$WORK/unknown" \
  >"$WORK/unknown.log" 2>&1; rc=$?
check "an unknown config key is a usage error (rc $rc)" [ $rc -eq 2 ]
check "... the message names the key and its section" \
  grep -q "unknown config key 'casess' in \[phantom\]" "$WORK/unknown.log"
check "... and nothing was written" [ ! -e "$WORK/unknown" ]
# the first run's outputs, to show a refused resume leaves them alone
snap() { (cd "$WORK/run" && find . -type f ! -name '*.lock' -print0 | sort -z | xargs -0 md5sum); }
snap >"$WORK/before.md5"
"$HV" run "$COHORT" --set output.dir="$WORK/run" --set phantom.cases=9 >"$WORK/changed.log" 2>&1; rc=$?
check "resuming with other result-affecting settings is refused (rc $rc)" [ $rc -eq 1 ]
check "... the message names the output folder and the journal's config" \
  grep -q "$WORK/run holds the journal of a run with other settings (see $WORK/run/journal/config.txt)" \
  "$WORK/changed.log"
check "... and says how to start over" grep -q 'run.fresh=1' "$WORK/changed.log"
check "... before generating anything" bash -c "! grep -q 'generating a phantom cohort' '$WORK/changed.log'"
check "... and every file of the earlier run is as it was (store, tables, journal, no cohort)" \
  diff "$WORK/before.md5" <(snap)
cp "$c" "$WORK/cases-first.csv"
"$HV" run "$COHORT" --set output.dir="$WORK/run" --fresh --set input.source=dataset \
  --set input.dataset="$WORK/data" --set input.split="$WORK/data/split.json" >"$WORK/fresh.log" 2>&1; rc=$?
check "--fresh starts over (rc $rc)" [ $rc -eq 3 ]
check "--fresh: attempt 1, nothing resumed" grep -q '8 cases: 4 done, 4 failed, 0 pending (attempt 1, 1 rank, .*; 0 finished by earlier attempts)' "$WORK/fresh.log"
check "--fresh: same outcomes as before" diff <(cut -d, -f1-3,6 "$WORK/cases-first.csv") <(cut -d, -f1-3,6 "$c")
"$HV" export "$WORK/nope.h5" --csv "$WORK/x" >"$WORK/nope.log" 2>&1; rc=$?
check "export refuses a missing store (rc $rc)" [ $rc -eq 1 ]
check "... the message names the store" grep -q "store: $WORK/nope.h5: does not exist" "$WORK/nope.log"
check "... and nothing was written" [ ! -e "$WORK/x" ]
finish
