#!/bin/sh
# tests/unit/test_rhlv_diff.sh SRC TMP: bench/synthesis/rhlv_diff.sh on two
# hand-made vertebrae.csv files whose answers are worked out below by hand.
#   ph0 20 T12: all 0.2000/0.2030 (0.30), ant 0.2500/0.2400 (1.00), mid same,
#               post 0.1000/0.1010 (0.10) -> 1.00, ant; grades 1 1
#   ph0 21 L1:  0.0500/0.0520 (0.20), rest equal -> 0.20, all; grades 0 0
#   ph1 20 T12: post 0.3000/0.2720 (2.80), rest equal -> 2.80, post; 2 -> 1
#   ph1 21 L1:  nan in both everywhere -> 0.00; grades -1 -1
# within 0.5: ph0 L1 and ph1 L1 (nan in both counts 0) -> 2 of 4; within
# 1.0: those and ph0 T12 (exactly 1.00: inclusive) -> 3 of 4;
# mean (1.00 + 0.20 + 2.80 + 0) / 4 = 1.00; largest 2.80 (ph1 20 T12, post);
# grades changed 1. The B file has its columns in another order and its rows
# in another order: the join is by name and by (case, label).
set -eu
src="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp/a" "$tmp/b/gan"
cat > "$tmp/a/vertebrae.csv" <<'CSV'
case,label,level,grade_rule,flags,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post
ph0,20,T12,1,,0.2000,0.2500,0.1500,0.1000
ph0,21,L1,0,,0.0500,0.0600,0.0700,0.0800
ph1,20,T12,2,deformed,0.2500,0.2000,0.2200,0.3000
ph1,21,L1,-1,,nan,nan,nan,nan
CSV
cat > "$tmp/b/gan/vertebrae.csv" <<'CSV'
label,case,level,rhlv_post,rhlv_mid,rhlv_ant,rhlv_all,flags,grade_rule
20,ph1,T12,0.2720,0.2200,0.2000,0.2500,deformed,1
21,ph1,L1,nan,nan,nan,nan,,-1
21,ph0,L1,0.0800,0.0700,0.0600,0.0520,,0
20,ph0,T12,0.1010,0.1500,0.2400,0.2030,,1
CSV
out=$(sh "$src/bench/synthesis/rhlv_diff.sh" "$tmp/a" "$tmp/b")
echo "$out"
fail=0
want() { echo "$out" | grep -qx "$1" || { echo "FAIL: no line '$1'"; fail=1; }; }
want "ph0            20 T12        1.00 ant   1 1"
want "ph0            21 L1         0.20 all   0 0"
want "ph1            20 T12        2.80 post  2 1"
want "ph1            21 L1         0.00 -     -1 -1"
want "within 0.5 points: 2 of 4"
want "within 1.0 point: 3 of 4"
want "mean of the per-vertebra largest change: 1.00 points"
want "largest: 2.80 points (ph1 20 T12, post)"
want "rule grades changed: 1"
# a vertebra missing from one run is an error, not a silent skip
head -4 "$tmp/b/gan/vertebrae.csv" > "$tmp/b/v3.csv"
mkdir -p "$tmp/c"; mv "$tmp/b/v3.csv" "$tmp/c/vertebrae.csv"
if sh "$src/bench/synthesis/rhlv_diff.sh" "$tmp/a" "$tmp/c" > /dev/null 2>&1; then
    echo "FAIL: a missing vertebra was accepted"; fail=1
fi
# nan against a number: inf, outside both counts
sed 's/^20,ph0,T12,0.1010/20,ph0,T12,nan/' "$tmp/b/gan/vertebrae.csv" > "$tmp/c/vertebrae.csv"
out=$(sh "$src/bench/synthesis/rhlv_diff.sh" "$tmp/a" "$tmp/c")
want "ph0            20 T12         inf post  1 1"
want "within 1.0 point: 2 of 4"
want "nan in one run only: 1"
rm -rf "$tmp"
[ $fail = 0 ] && echo PASS
exit $fail
