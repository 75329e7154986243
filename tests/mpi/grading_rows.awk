# grading_rows.awk: the grading_rows.csv a run must write, rebuilt from its
# other outputs without the gather's code (test_rows.sh diffs the two).
#
#   awk -v folds=K -f grading_rows.awk SPLIT.json vertebrae.csv
#
# SPLIT.json: the split the run graded with, as cJSON prints it (one
# "<case>_<label>": grade entry a line inside "test"/"train"/"val" objects);
# its order is the rows' order. vertebrae.csv: the run's vertebra table
# (columns found by name); a split entry whose vertebra is not in it, or has
# a nan RHLV, is not a row. The features, level and predicted grade are the
# table's strings (both files print doubles with %.17g), the grade and set
# the split's.
#
# The fold of each train/test row is scikit-learn's StratifiedKFold(K,
# shuffle=False).split over the train/test rows in order with the grades as
# y, re-derived here from scikit-learn's _make_test_folds (spec section 10):
# classes numbered by first appearance; y_order = the sorted class numbers;
# allocation[f][c] = how many of y_order[f], y_order[f+K], ... are class c;
# each class's rows, in order, take fold 0 allocation[0][c] times, then
# fold 1 allocation[1][c] times, and so on. Val rows have no fold (empty).
BEGIN { FS = ","; if (folds < 2) { print "grading_rows.awk: folds must be >= 2" > "/dev/stderr"; exit 2 } }
FNR == 1 { file++ }
file == 1 {
    line = $0
    gsub(/[ \t\r]/, "", line)
    if (line ~ /^"(train|val|test)":\{/) {
        set = line
        sub(/^"/, "", set)
        sub(/".*/, "", set)
        next
    }
    if (line ~ /^"[^"]+_[0-9]+":[0-3],?$/) {
        key = line
        sub(/^"/, "", key)
        sub(/":.*/, "", key)
        g = line
        sub(/.*":/, "", g)
        sub(/,$/, "", g)
        us = match(key, /_[0-9]+$/)
        ns++
        sid[ns] = substr(key, 1, us - 1)
        slab[ns] = substr(key, us + 1)
        sgr[ns] = g
        sset[ns] = set
    }
    next
}
file == 2 && FNR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    split("case label level grade_pred rhlv_ant rhlv_mid rhlv_post", need, " ")
    for (i = 1; i <= 7; i++)
        if (!(need[i] in col)) { print "grading_rows.awk: vertebrae.csv has no " need[i] > "/dev/stderr"; exit 2 }
    next
}
file == 2 {
    k = $col["case"] SUBSEP $col["label"]
    have[k] = 1
    lev[k] = $col["level"]
    pred[k] = $col["grade_pred"]
    feat[k] = $col["rhlv_ant"] "," $col["rhlv_mid"] "," $col["rhlv_post"]
    bad[k] = ($col["rhlv_ant"] == "nan" || $col["rhlv_mid"] == "nan" || $col["rhlv_post"] == "nan")
    next
}
END {
    if (file < 2) exit 2
    n = 0
    for (s = 1; s <= ns; s++) {
        k = sid[s] SUBSEP slab[s]
        if (!(k in have) || bad[k]) continue
        row[n] = s
        rk[n] = k
        n++
    }
    # StratifiedKFold over the train/test rows
    np = 0
    nc = 0
    for (i = 0; i < n; i++) {
        s = row[i]
        if (sset[s] == "val") continue
        y = sgr[s]
        if (!(y in enc)) enc[y] = nc++
        pool[np++] = i
        cnt[enc[y]]++
    }
    p = 0
    for (c = 0; c < nc; c++)
        for (q = 0; q < cnt[c]; q++) yorder[p++] = c
    for (f = 0; f < folds; f++)
        for (c = 0; c < nc; c++) alloc[f, c] = 0
    for (j = 0; j < np; j++) alloc[j % folds, yorder[j]]++
    for (c = 0; c < nc; c++) { cf[c] = 0; used[c] = 0 }
    for (j = 0; j < np; j++) {
        i = pool[j]
        c = enc[sgr[row[i]]]
        while (cf[c] < folds && used[c] >= alloc[cf[c], c]) { cf[c]++; used[c] = 0 }
        fold[i] = cf[c]
        used[c]++
    }
    print "row,case,label,level,split,fold,rhlv_ant,rhlv_mid,rhlv_post,grade,pred"
    for (i = 0; i < n; i++) {
        s = row[i]
        k = rk[i]
        print i "," sid[s] "," slab[s] "," lev[k] "," sset[s] "," ((i in fold) ? fold[i] : "") "," \
              feat[k] "," sgr[s] "," pred[k]
    }
}
