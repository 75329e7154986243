#!/bin/sh
# test_phantom_cli.sh BIN TMPDIR: `healthivert phantom` on the command line.
# Bad options exit 2 with a message naming the problem; an unusable output
# folder exits 1; a small valid run exits 0, prints its per-case line and
# totals, and writes the reference layout.
bin="$1"
tmp="$2"
pass=0
fail=0
rm -rf "$tmp" && mkdir -p "$tmp" || exit 1

# expect STATUS PATTERN ARGS...: exit status and a pattern in stdout+stderr
expect() {
    want="$1"
    pat="$2"
    shift 2
    out=$("$bin" phantom "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && printf '%s\n' "$out" | grep -q -- "$pat"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "not ok: phantom $*: exit $rc (want $want), output:"
        printf '%s\n' "$out" | sed 's/^/    /'
        echo "    (wanted pattern: $pat)"
    fi
}

expect 0 "usage: healthivert phantom" --help
expect 0 "Genant band" -h
expect 2 "required" --cases 2
expect 2 "expects a number, got 'abc'" --out "$tmp/x" --cases abc
expect 2 "outside \[1, 100000\]" --out "$tmp/x" --cases 0
expect 2 "whole number" --out "$tmp/x" --cases 2.5
expect 2 "non-negative integer" --out "$tmp/x" --seed -3
expect 2 "outside \[0, 1\]" --out "$tmp/x" --fracture-rate 1.5
expect 2 "outside \[0, 1\]" --out "$tmp/x" --scoliosis-rate=-0.1
expect 2 "expects a number" --out "$tmp/x" --noise lots
expect 2 "runs upwards" --out "$tmp/x" --range L2-T12
expect 2 "expects levels within T1..L5" --out "$tmp/x" --range C5-T2
expect 2 "expects levels within T1..L5" --out "$tmp/x" --range T1-X9
expect 2 "expects RAS, LPS, PIR or oblique" --out "$tmp/x" --orientation XYZ
expect 2 "expects X or X,Y,Z" --out "$tmp/x" --spacing 1,2
expect 2 "outside \[0.1, 20\]" --out "$tmp/x" --spacing 0
expect 2 "unknown option '--frobnicate'" --out "$tmp/x" --frobnicate 1
expect 2 "needs a value" --out "$tmp/x" --seed
touch "$tmp/afile"
expect 1 "cannot create directory" --out "$tmp/afile/cohort" --cases 1 --range T12-L1

# a small real run
expect 0 "^ph0000  .*2.00x2.00x2.00 mm  LPS      T12-L1 (2)  fractures:" \
    --out "$tmp/ok" --cases 2 --seed 9 --range T12-L1 --spacing 2 --orientation lps --fracture-rate 1
expect 0 "^total: 2 cases, 4 vertebrae: grade 0: 0," \
    --out "$tmp/ok" --cases 2 --seed 9 --range T12-L1 --spacing 2 --orientation LPS --fracture-rate 1
for f in raw/ph0000/ph0000.nii.gz raw/ph0000/ph0000_msk.nii.gz raw/ph0000/ph0000.json \
         raw/ph0001/ph0001.json split.json ground_truth.csv; do
    if [ -s "$tmp/ok/$f" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "not ok: missing $f"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
