#!/usr/bin/env bash
# `healthivert prepare` (the GAN's training set, docs/model.md) under mpiexec:
#  1. on a phantom cohort (configs/prepare-phantom.ini, 4 cases): one item
#     per vertebra of the phantom's ground_truth.csv, with its true grade and
#     the cohort's split, sorted by (case, label) - read with h5dump, not
#     with our reader;
#  2. the same cohort as a dataset with one case's top cut by the field of
#     view (cut_fov): that vertebra is skipped with its reason recorded;
#     1 and 2 ranks give the same training file (h5diff: dataset contents
#     and attributes, not the bytes of HDF5 metadata);
#  3. SIGKILL while writing a part (HV_CRASH_AT=prepare-part) and during the
#     merge (prepare-merge), then the same command again: the same file;
#  4. a done case whose part was deleted: the merge is refused naming it.
HV=$1 MPIEXEC=$2 WORK=$3 COHORT=$4 CUT=$5
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -x "$CUT" ] || die "cut_fov helper '$CUT' not found"

# prep N OUTDIR [args]: prepare on N ranks, log in OUTDIR.log
prep() {
  local n=$1 out=$2; shift 2
  "$MPIEXEC" -n "$n" --oversubscribe "$HV" prepare "$COHORT" --set output.dir="$out" \
    --set phantom.cases=4 "$@" >"$out.log" 2>&1
}
# column NAME of FILE: the values of a 1-D dataset, one per line
column() { h5dump -y -w 0 -d "/$1" "$2" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' |
           sed 's/^ *//; s/ *$//; s/"//g' | grep -v '^$'; }

# ---------------------------------------------------------- 1. phantom
prep 1 "$WORK/ph"; rc=$?
[ $rc -eq 0 ] || die "prepare on the phantom failed ($rc), see $WORK/ph.log"
gt="$WORK/ph/cohort/ground_truth.csv"
# case,label,grade of every vertebra, sorted by case then label (numerically)
tail -n +2 "$gt" | awk -F, '{print $1 "," $2 "," $4}' | sort -t, -k1,1 -k2,2n >"$WORK/want.txt"
paste -d, <(column case "$WORK/ph/train.h5") <(column label "$WORK/ph/train.h5") \
  <(column grade "$WORK/ph/train.h5") >"$WORK/have.txt"
check "phantom: one item per vertebra with its true grade, sorted ($(diff "$WORK/want.txt" "$WORK/have.txt" | head -3 | tr '\n' ' '))" \
  diff -q "$WORK/want.txt" "$WORK/have.txt"
check "phantom: 16 items" [ "$(wc -l <"$WORK/have.txt")" -eq 16 ]
# the split of each item is its case's set in split.json (0 train, 1 val, 2 test)
splits_ok() {
  local rc=0
  python_free=$(paste -d, <(column case "$WORK/ph/train.h5") <(column split "$WORK/ph/train.h5") | sort -u)
  while IFS=, read -r c s; do
    set_name=$(case $s in 0) echo train;; 1) echo val;; 2) echo test;; *) echo none;; esac)
    # the case's keys sit inside the "<set>": { ... } object of split.json
    awk -v set="\"$set_name\"" -v key="\"${c}_" 'index($0, set) {inside = 1}
        inside && index($0, key) {found = 1} inside && /}/ {inside = 0} END {exit !found}' \
      "$WORK/ph/cohort/split.json" || { echo "  $c: split $s ($set_name) not in split.json"; rc=1; }
  done <<<"$python_free"
  return $rc
}
check "phantom: each item's split is its case's set in split.json" splits_ok
check "phantom: a part per case" [ "$(ls "$WORK/ph/prepare"/*.h5 | wc -l)" -eq 4 ]
check "phantom: no temporary file left" [ -z "$(find "$WORK/ph" -name '*.tmp*')" ]
check "phantom: 'prepare' is a stage of the store" grep -q 'prepare' <(h5dump -d /cases/stage_names "$WORK/ph/store.h5")

# ------------------------------------- 2. a cut case, 1 and 2 ranks
cp -r "$WORK/ph/cohort" "$WORK/data"
rm -f "$WORK/data/.complete"
"$CUT" "$WORK/data/raw/ph0002/ph0002.nii.gz" 30 >/dev/null &&
  "$CUT" "$WORK/data/raw/ph0002/ph0002_msk.nii.gz" 30 label >/dev/null ||
  die "could not cut ph0002"
DS=(--set input.source=dataset --set input.dataset="$WORK/data"
    --set input.split="$WORK/data/split.json")
prep 1 "$WORK/r1" "${DS[@]}"; rc=$?
check "cut cohort, 1 rank: exit 0 ($rc; $WORK/r1.log)" [ $rc -eq 0 ]
prep 2 "$WORK/r2" "${DS[@]}"; rc=$?
check "cut cohort, 2 ranks: exit 0 ($rc; $WORK/r2.log)" [ $rc -eq 0 ]
check "1 rank == 2 ranks (h5diff)" h5diff -q "$WORK/r1/train.h5" "$WORK/r2/train.h5"
sk=$(paste -d, <(column skipped_case "$WORK/r1/train.h5") <(column skipped_label "$WORK/r1/train.h5") \
      <(column skipped_reason "$WORK/r1/train.h5"))
check "the cut vertebra is skipped with its reason ($sk)" grep -q '^ph0002,18,cut by the field of view' <<<"$sk"
check "every other vertebra is an item" [ "$(column label "$WORK/r1/train.h5" | wc -l)" -eq 15 ]
check "the skip is in the log" grep -q 'case ph0002 T11: not a training item: cut by the field of view' "$WORK/r1.log"

# ------------------------------------------------- 3. kills, then resume
for point in prepare-part:2 prepare-merge; do
  d="$WORK/kill-${point%%:*}"
  HV_CRASH_AT=$point prep 2 "$d" "${DS[@]}"; rc=$?
  check "$point: the killed run did not succeed (rc $rc)" [ $rc -ne 0 ]
  check "$point: crash hook fired" grep -q "crash point '${point%%:*}' reached" "$d.log"
  check "$point: no training file after the kill" [ ! -e "$d/train.h5" ]
  cp "$d.log" "$d.killed.log"
  # what a writer killed inside HDF5 would leave: removed by the resume
  echo torn >"$d/prepare/ph0001.h5.tmp999999"
  echo torn >"$d/train.h5.tmp999999"
  prep 2 "$d" "${DS[@]}"; rc=$?
  check "$point: resume exits 0 (rc $rc; $d.log)" [ $rc -eq 0 ]
  check "$point: resumed == uninterrupted (h5diff)" h5diff -q "$WORK/r1/train.h5" "$d/train.h5"
  check "$point: no temporary file left" [ -z "$(find "$d" -name '*.tmp*')" ]
done

# ---------------------------------------- 4. a done case lost its part
rm -f "$WORK/r1/prepare/ph0001.h5"
prep 1 "$WORK/r1" "${DS[@]}"; rc=$?
check "missing part: refused (rc $rc)" [ $rc -eq 1 ]
check "missing part: the message names the case" \
  grep -q 'case ph0001 is done but its training part is not usable' "$WORK/r1.log"
finish
