#!/bin/sh
# bench/synthesis/rhlv_diff.sh A B [METHOD]: how far two runs' RHLV lie apart,
# per vertebra (issue 12: bf16 synthesis must change RHLV by at most 0.5
# points; results/bf16-synthesis.md).
#
# A and B are run output folders: a folder holding vertebrae.csv (a
# `healthivert run` output.dir) or a synth_eval.sh output folder, whose
# METHOD/vertebrae.csv (METHOD default gan) is read. Rows are joined on
# (case, label); a row in one file only is an error (exit 1).
#
# Per vertebra it prints the largest |RHLV_A - RHLV_B| over rhlv_all, _ant,
# _mid and _post in points (x 100), the region it is in, and both rule
# grades; then the vertebrae within 0.5 and within 1.0 point, the mean of the
# per-vertebra largest change, the largest (case, label, level, region) and
# the rule grades that differ. A region whose RHLV is nan in one file and a
# number in the other counts as an infinite change ("inf"); nan in both as 0.
# The columns are found by name in each header, so the two files may come
# from builds that order them differently.
#
# Why awk over the CSVs rather than a C tool: the numbers are already in the
# exports (17 significant digits), and the comparison is a join and a max.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 RUN_A RUN_B [METHOD]" >&2; exit 2; }
method="${3:-gan}"
pick() {
    if [ -f "$1/vertebrae.csv" ]; then echo "$1/vertebrae.csv"
    elif [ -f "$1/$method/vertebrae.csv" ]; then echo "$1/$method/vertebrae.csv"
    else echo "$0: no vertebrae.csv in $1 or $1/$method" >&2; exit 2
    fi
}
fa=$(pick "$1")
fb=$(pick "$2")
awk -F, '
function isnum(s) { return s != "" && s !~ /^[+-]?(nan|inf)/ }
FNR == 1 {
    fi++
    for (i = 1; i <= NF; i++) col[fi, $i] = i
    for (r = 1; r <= 4; r++)
        if (!((fi, "rhlv_" rn[r]) in col)) { print "rhlv_diff: " FILENAME ": no column rhlv_" rn[r] > "/dev/stderr"; bad = 1; exit 1 }
    next
}
{
    k = $col[fi, "case"] SUBSEP $col[fi, "label"]
    if (k in seen && seen[k] == fi) { print "rhlv_diff: " FILENAME ": vertebra " $col[fi, "case"] " " $col[fi, "label"] " twice" > "/dev/stderr"; bad = 1; exit 1 }
    seen[k] = fi
    g[fi, k] = $col[fi, "grade_rule"]
    for (r = 1; r <= 4; r++) v[fi, k, r] = $col[fi, "rhlv_" rn[r]]
    if (fi == 1) { order[++n] = k; lev[k] = $col[fi, "level"]; cs[k] = $col[fi, "case"]; lb[k] = $col[fi, "label"] }
    else nb++
}
BEGIN { split("all ant mid post", rn, " ") }
END {
    if (bad) exit 1
    for (i = 1; i <= n; i++) if (!((2, order[i]) in g)) { print "rhlv_diff: " cs[order[i]] " " lb[order[i]] " only in the first run" > "/dev/stderr"; exit 1 }
    if (nb != n) { print "rhlv_diff: the second run has " nb " vertebrae, the first " n > "/dev/stderr"; exit 1 }
    printf "%-10s %6s %-6s %8s %-5s %s\n", "case", "label", "level", "max|d|", "where", "grade a b"
    big = -1
    for (i = 1; i <= n; i++) {
        k = order[i]; d = 0; wr = "-"; inf = 0
        for (r = 1; r <= 4; r++) {
            a = v[1, k, r]; b = v[2, k, r]
            if (!isnum(a) && !isnum(b)) continue
            if (!isnum(a) || !isnum(b)) { inf = 1; wr = rn[r]; break }
            x = 100 * (a - b); if (x < 0) x = -x
            if (x > d) { d = x; wr = rn[r] }
        }
        if (inf) { ninf++; printf "%-10s %6s %-6s %8s %-5s %s %s\n", cs[k], lb[k], lev[k], "inf", wr, g[1, k], g[2, k] }
        else {
            printf "%-10s %6s %-6s %8.2f %-5s %s %s\n", cs[k], lb[k], lev[k], d, wr, g[1, k], g[2, k]
            # 1e-9: 0.25 - 0.24 is 0.0100000000000000089 in doubles
            if (d <= 0.5 + 1e-9) w05++
            if (d <= 1.0 + 1e-9) w10++
            sum += d; nfin++
            if (d > big) { big = d; bk = k; bw = wr }
        }
        if (g[1, k] != g[2, k]) ng++
    }
    printf "\nvertebrae: %d\n", n
    printf "within 0.5 points: %d of %d\n", w05, n
    printf "within 1.0 point: %d of %d\n", w10, n
    if (nfin) printf "mean of the per-vertebra largest change: %.2f points\n", sum / nfin
    if (nfin) printf "largest: %.2f points (%s %s %s, %s)\n", big, cs[bk], lb[bk], lev[bk], bw
    if (ninf) printf "nan in one run only: %d\n", ninf
    printf "rule grades changed: %d\n", ng
}' "$fa" "$fb"
