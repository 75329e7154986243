#!/usr/bin/env python3
"""Make tests/measure/fixtures/svm_final.txt: scikit-learn's own final model
of the SVM protocol (spec section 10) on the committed table, as numbers a
test can apply without our SVM code.

`healthivert svm` trains one last model on ALL train+test rows (after the
folds) and saves it for `measure --grader svm:MODEL`. This script fits the
same model with scikit-learn: StandardScaler on the train+test rows of
tests/measure/fixtures/svm_table.csv (split svm_split.json), then
SVC(kernel='linear', C=1.0, class_weight='balanced'), and writes the scaler
and the six one-vs-one linear decision functions (coef_, intercept_, pairs in
scikit-learn's order). A test reads the grades `measure` wrote, and the
features next to them, and checks that scikit-learn's model votes the same.

    apt-get install python3-sklearn
    /usr/bin/python3 scripts/make_svm_final_fixture.py tests/measure/fixtures
Deterministic (linear SVC on a fixed table).
"""
import csv
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

d = sys.argv[1] if len(sys.argv) > 1 else "tests/measure/fixtures"
split = json.load(open(os.path.join(d, "svm_split.json")))
feat = {}
for r in csv.DictReader(open(os.path.join(d, "svm_table.csv"))):
    feat["%s_%s" % (r["case"], r["label"])] = [float(r[k]) for k in ("rhlv_ant", "rhlv_mid", "rhlv_post")]
X, y = [], []
for s in ("test", "train"):          # the JSON order test, train, val; val is not used
    for key, g in split[s].items():
        X.append(feat[key])
        y.append(g)
X, y = np.array(X), np.array(y)
sc = StandardScaler().fit(X)
clf = SVC(kernel="linear", C=1.0, class_weight="balanced").fit(sc.transform(X), y)
pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
with open(os.path.join(d, "svm_final.txt"), "w") as f:
    f.write("# scikit-learn %s: StandardScaler + SVC(kernel='linear', C=1, class_weight='balanced')\n"
            % sklearn.__version__)
    f.write("# on all %d train+test rows of svm_table.csv; x_scaled = (x - mean) / scale;\n" % len(y))
    f.write("# pair i j: d = w . x_scaled + b; d > 0 votes i, else j; most votes wins (ties: lower class)\n")
    f.write("mean %s\n" % " ".join("%.17g" % v for v in sc.mean_))
    f.write("scale %s\n" % " ".join("%.17g" % v for v in sc.scale_))
    for (i, j), w, b in zip(pairs, clf.coef_, clf.intercept_):
        f.write("pair %d %d %s %.17g\n" % (i, j, " ".join("%.17g" % v for v in w), b))
    # self-check of the vote rule against scikit-learn's predict
    Xs = sc.transform(X)
    votes = np.zeros((len(y), 4), int)
    for (i, j), w, b in zip(pairs, clf.coef_, clf.intercept_):
        dd = Xs @ w + b
        votes[dd > 0, i] += 1
        votes[dd <= 0, j] += 1
    assert (votes.argmax(1) == clf.predict(Xs)).all()
print(open(os.path.join(d, "svm_final.txt")).read())
