#!/usr/bin/env bash
# test_manifest.sh: input.source = manifest, end to end under mpiexec.
#
#  1. A phantom cohort (5 cases, T12-L3 at 2 mm) is run twice on 2 ranks:
#     once as a dataset folder, once through a manifest that lists the same
#     files in another order, with relative, absolute and quoted paths, a
#     BOM, CRLF line ends and comments, and one case's files listed again
#     under a second id. Every row of vertebrae.csv for the shared cases is
#     identical between the two runs, and the second id's rows are the first
#     one's, number for number. The manifest's grades come back as each
#     vertebra's known_grade and split set.
#  2. A manifest with one bad row of each kind: `run` exits 1 at once, the
#     message names every bad line, and no output folder is made.
#
# usage: test_manifest.sh HEALTHIVERT MPIEXEC SOURCE_DIR WORK
HV=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$(dirname "$0")/lib.sh"
run() { "$MPIEXEC" -n 2 --oversubscribe "$HV" run "$SRC/configs/example.ini" --set output.images=none "$@"; }

# -- the cohort, and the dataset run
"$HV" phantom --out "$WORK/cohort" --cases 5 --seed 7 --range T12-L3 --spacing 2 >"$WORK/phantom.log" 2>&1
check "phantom cohort written" test -s "$WORK/cohort/raw/ph0004/ph0004_msk.nii.gz"
run --set input.source=dataset --set input.dataset="$WORK/cohort" --set output.dir="$WORK/ds" \
  >"$WORK/ds.log" 2>&1
rc=$?
check "dataset run exits 0 (got $rc; see $WORK/ds.log)" test "$rc" -eq 0

# -- the same files through a manifest, in another folder, rows shuffled
m=$WORK/lists/m1
mkdir -p "$m" "$WORK/with, comma"
cp "$WORK/cohort/raw/ph0003/ph0003.nii.gz" "$WORK/with, comma/ct3.nii.gz"
c=$WORK/cohort/raw
{
  printf '\xef\xbb\xbf# the phantom cohort, listed by hand\r\n'
  printf 'id,mask,ct,centroids,split,grades\r\n'
  printf 'ph0003,../../cohort/raw/ph0003/ph0003_msk.nii.gz,"../../with, comma/ct3.nii.gz",../../cohort/raw/ph0003/ph0003.json,,\r\n'
  printf '\r\n'
  printf 'ph0001,%s/ph0001/ph0001_msk.nii.gz,%s/ph0001/ph0001.nii.gz,%s/ph0001/ph0001.json,,\r\n' "$c" "$c" "$c"
  printf '# ph0001 again, under another id\r\n'
  printf 'zz-copy-of-ph0001,%s/ph0001/ph0001_msk.nii.gz,%s/ph0001/ph0001.nii.gz,%s/ph0001/ph0001.json,,\r\n' "$c" "$c" "$c"
  printf 'ph0004,../../cohort/raw/ph0004/ph0004_msk.nii.gz,../../cohort/raw/ph0004/ph0004.nii.gz,../../cohort/raw/ph0004/ph0004.json,test,"T12:3; L2:1"\r\n'
  printf ' ph0000 , ../../cohort/raw/ph0000/ph0000_msk.nii.gz , ../../cohort/raw/ph0000/ph0000.nii.gz , ../../cohort/raw/ph0000/ph0000.json ,,\r\n'
  printf 'ph0002,../../cohort/raw/ph0002/ph0002_msk.nii.gz,../../cohort/raw/ph0002/ph0002.nii.gz,../../cohort/raw/ph0002/ph0002.json,,\r\n'
} >"$m/manifest.csv"
# run from another folder: relative paths are the CSV's, not the caller's
(cd "$WORK" && run --set input.source=manifest --set input.manifest="$m/manifest.csv" \
  --set output.dir="$WORK/mf" >"$WORK/mf.log" 2>&1)
rc=$?
check "manifest run exits 0 (got $rc; see $WORK/mf.log)" test "$rc" -eq 0
check "manifest run: 6 cases done" grep -q "6 total, 6 done, 0 failed" "$WORK/mf/summary.md"
check "manifest grades written as a split file" test -s "$WORK/mf/manifest_split.json"

# vertebrae.csv, compared without the columns the manifest's grades set
# (known_grade, split; the rule grader's output does not depend on them)
ds=$WORK/ds/vertebrae.csv mf=$WORK/mf/vertebrae.csv
hdr=$(head -1 "$ds")
check "same columns" test "$hdr" = "$(head -1 "$mf")"
skip=$(echo "$hdr" | tr ',' '\n' | grep -n -x -E 'known_grade|split' | cut -d: -f1 | paste -sd, -)
check "known_grade and split columns found ($skip)" test "$(echo "$skip" | tr ',' '\n' | wc -l)" -eq 2
strip() { awk -F, -v OFS=, -v skip="$skip" 'BEGIN { n = split(skip, s, ","); for (i = 1; i <= n; i++) drop[s[i]] = 1 }
  { out = ""; for (i = 1; i <= NF; i++) if (!(i in drop)) out = out (out == "" ? "" : OFS) $i; print out }' "$1"; }
strip "$ds" | tail -n +2 | sort >"$WORK/ds.rows"
strip "$mf" | tail -n +2 | grep -v '^zz-copy-of-ph0001,' | sort >"$WORK/mf.rows"
check "20 vertebra rows in the dataset run (5 cases x T12-L3)" test "$(wc -l <"$WORK/ds.rows")" -eq 20
check "the manifest's rows of the shared cases equal the dataset run's" cmp -s "$WORK/ds.rows" "$WORK/mf.rows"
grep '^ph0001,' "$WORK/mf.rows" >"$WORK/orig.rows"
strip "$mf" | grep '^zz-copy-of-ph0001,' | sed 's/^zz-copy-of-ph0001,/ph0001,/' | sort >"$WORK/copy.rows"
check "the second id has the first one's rows ($(wc -l <"$WORK/copy.rows") rows)" \
  sh -c "test -s '$WORK/copy.rows' && test \$(wc -l <'$WORK/copy.rows') -eq 4 && cmp -s '$WORK/orig.rows' '$WORK/copy.rows'"
# ph0004: T12 (label 19) graded 3, L2 (21) graded 1, both test; others unknown
kg=$(echo "$hdr" | tr ',' '\n' | grep -n -x known_grade | cut -d: -f1)
ss=$(echo "$hdr" | tr ',' '\n' | grep -n -x split | cut -d: -f1)
got=$(awk -F, -v kg="$kg" -v ss="$ss" 'NR > 1 && $(kg) >= 0 { print $1 "_" $2 "=" $(kg) "/" $(ss) }' "$mf" | sort | paste -sd' ' -)
check "manifest grades reach the rows: ph0004_19=3, ph0004_21=1, set test (got '$got')" \
  test "$got" = "ph0004_19=3/test ph0004_21=1/test"

# -- a bad manifest: refused as a whole, every bad line named, nothing made
b=$WORK/lists/bad
mkdir -p "$b/folder"
{
  echo 'id,ct,mask,split,grades'
  echo "ok,$c/ph0000/ph0000.nii.gz,$c/ph0000/ph0000_msk.nii.gz,,"
  echo "gone,$c/ph0000/nothing.nii.gz,$c/ph0000/ph0000_msk.nii.gz,,"
  echo "ok,$c/ph0001/ph0001.nii.gz,$c/ph0001/ph0001_msk.nii.gz,,"
  echo "g4,$c/ph0002/ph0002.nii.gz,$c/ph0002/ph0002_msk.nii.gz,train,L1:5"
  echo "dir,$c/ph0002/ph0002.nii.gz,folder,,"
  echo "s6,$c/ph0002/ph0002.nii.gz,$c/ph0002/ph0002_msk.nii.gz,holdout,L1:1"
} >"$b/manifest.csv"
run --set input.source=manifest --set input.manifest="$b/manifest.csv" --set output.dir="$WORK/bad-out" \
  >"$WORK/bad.log" 2>&1
rc=$?
check "bad manifest: exit 1 (got $rc)" test "$rc" -eq 1
for want in "manifest.csv:3: ct 'PATH/nothing.nii.gz'" "manifest.csv:4: id 'ok' is already used on line 2" \
            "manifest.csv:5: grades: grade '5'" "manifest.csv:6: mask 'folder'" "manifest.csv:7: split 'holdout'"; do
  w=${want/PATH/$c\/ph0000}
  check "bad manifest: '$w' listed" grep -qF "$w" "$WORK/bad.log"
done
check "bad manifest: the good line is not listed" sh -c "! grep -q 'manifest.csv:2:' '$WORK/bad.log'"
check "bad manifest: one message (5 problems)" grep -q "5 problem(s) on 5 line(s) of 6 data row(s)" "$WORK/bad.log"
check "bad manifest: no output folder, store or lock" test ! -e "$WORK/bad-out"
check "bad manifest: no case started" sh -c "! grep -q 'case .*: start' '$WORK/bad.log'"
finish
