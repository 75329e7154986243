#!/usr/bin/env python3
"""Make the fixtures of the SVM grader's liblinear path (docs/measure.md,
"SVM solvers"): what scikit-learn computes, independently of our C code, for

  - libsvm (the reference): StandardScaler on train+test, StratifiedKFold(5),
    SVC(kernel='linear', C=1, class_weight='balanced'); and
  - our liblinear scheme: the same scaler and folds, and one-vs-one over
    LinearSVC(loss='hinge', dual=True, C=1, intercept_scaling=B, tol=EPS),
    which is liblinear's L2R_L1LOSS_SVC_DUAL, one binary model per pair of
    grades on the pair's rows, class weights balanced over the whole
    training part (as SVC computes them before libsvm splits the pairs),
    votes counted as libsvm does (most votes, ties to the lower grade).

on two tables:
  - small:  tests/measure/fixtures/svm_table.csv + svm_split.json (100 rows,
            the table of the existing SVM tests);
  - verse:  tests/measure/fixtures/svm_verse_table.csv (written here) with the
            real VerSe 2019 split and grades of configs/verse19_split.json
            (1460 vertebrae), features drawn like the phantom's fractures
            (src/phantom/phantom.c draw_fracture: grade bands, wedge /
            biconcave / crush shares of the loss) plus measurement noise
            N(0, 0.04) per region (results/measure-phantom-big.md: healthy
            height error ~3 %).

Output tests/measure/fixtures/svm_linear_expected.txt, per table and fold:
predictions of both on the val rows, the rows where they differ, and each
row's distance to the closest of the six boundaries (|decision value|); per
table the final model (all train+test rows): the liblinear pairs' w and b
and both models' predictions and distances on every row. LinearSVC runs to
convergence here (max_iter 100000, tol 1e-3); Debian's liblinear 2.3 stops
its dual solver after 1000 passes, so the library's models are close to,
not equal to, these (the test allows for rows near a boundary).

    apt-get install python3-sklearn
    /usr/bin/python3 scripts/make_svm_linear_fixture.py
Run from the repository root. Seeded: re-running reproduces the files.
"""
import csv
import json
import os

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

B = 10.0        # HV_SVM_LINEAR_BIAS (include/hv/measure.h)
EPS = 1e-3      # converged reference; the library stops earlier (HV_SVM_LINEAR_EPS)
FIX = "tests/measure/fixtures"


def fmt(v):
    return "%.17g" % v


def verse_table():
    split = json.load(open("configs/verse19_split.json"))
    rng = np.random.default_rng(20250316)
    lo = {1: 0.205, 2: 0.255, 3: 0.405}
    hi = {1: 0.245, 2: 0.395, 3: 0.55}
    rows = []
    for s in ("test", "train", "val"):
        for key, g in split[s].items():
            case, label = key.rsplit("_", 1)
            x = rng.normal(0.0, 0.04, 3)
            if g > 0:
                L = rng.uniform(lo[g], hi[g])
                u = rng.random()
                f1, f2, f3 = rng.random(3)
                if u < 0.5:      # wedge
                    fr = [1.0, 0.40 + 0.25 * f1, 0.15 * f2]
                elif u < 0.75:   # biconcave
                    fr = [0.15 + 0.30 * f1, 1.0, 0.10 + 0.25 * f2]
                else:            # crush
                    fr = [0.85 + 0.12 * f1, 0.85 + 0.12 * f2, 0.85 + 0.12 * f3]
                    fr[int(rng.integers(0, 3))] = 1.0
                x += L * np.array(fr)
            rows.append((case, int(label), x))
    with open(os.path.join(FIX, "svm_verse_table.csv"), "w") as f:
        f.write("case,label,level,rhlv_ant,rhlv_mid,rhlv_post\n")
        for case, label, x in rows:
            f.write("%s,%d,x,%.6f,%.6f,%.6f\n" % (case, label, x[0], x[1], x[2]))


def load(table, split_path):
    split = json.load(open(split_path))
    feat = {}
    for r in csv.DictReader(open(table)):
        feat["%s_%s" % (r["case"], r["label"])] = [float(r[k]) for k in ("rhlv_ant", "rhlv_mid", "rhlv_post")]
    X, y, sets = [], [], []
    for s in ("test", "train", "val"):
        for key, g in split[s].items():
            X.append(feat[key])
            y.append(g)
            sets.append(s)
    return np.array(X), np.array(y), np.array(sets)


def ovo_linear(Xs, y):
    cls = sorted(set(y.tolist()))
    n = len(y)
    wt = {c: n / (len(cls) * (y == c).sum()) for c in cls}
    pairs = []
    for a in range(len(cls)):
        for b in range(a + 1, len(cls)):
            ca, cb = cls[a], cls[b]
            m = (y == ca) | (y == cb)
            yy = np.where(y[m] == ca, 1, -1)
            clf = LinearSVC(loss="hinge", dual=True, C=1.0, intercept_scaling=B, tol=EPS,
                            class_weight={1: wt[ca], -1: wt[cb]}, max_iter=100000,
                            random_state=0).fit(Xs[m], yy)
            w = clf.coef_[0].copy()
            b0 = clf.intercept_[0]
            if clf.classes_[1] != 1:   # decision_function is for classes_[1]
                w, b0 = -w, -b0
            pairs.append((ca, cb, w, b0))
    return cls, pairs


def near(pairs, Xs):
    # distance (in decision units) of each row to its closest pair boundary
    return np.min(np.abs(np.array([Xs @ w + b for _, _, w, b in pairs])), axis=0)


def ovo_predict(cls, pairs, Xs):
    votes = np.zeros((len(Xs), 4), int)
    for ca, cb, w, b in pairs:
        d = Xs @ w + b
        votes[d > 0, ca] += 1
        votes[d <= 0, cb] += 1
    return votes.argmax(1)   # ties: the lower grade, as libsvm


def run(name, table, split_path, out):
    X, y, sets = load(table, split_path)
    pool = sets != "val"
    val = sets == "val"
    sc = StandardScaler().fit(X[pool])
    Xs = sc.transform(X)
    Xp, yp = Xs[pool], y[pool]
    Xv = Xs[val]
    out.write("table %s %d %d\n" % (name, pool.sum(), val.sum()))
    skf = StratifiedKFold(n_splits=5, shuffle=False)
    for k, (tr, _) in enumerate(skf.split(Xp, yp)):
        svc = SVC(kernel="linear", C=1.0, class_weight="balanced").fit(Xp[tr], yp[tr]).predict(Xv)
        cls, pairs = ovo_linear(Xp[tr], yp[tr])
        lin = ovo_predict(cls, pairs, Xv)
        out.write("svc %d %s\n" % (k, " ".join(str(v) for v in svc)))
        out.write("lin %d %s\n" % (k, " ".join(str(v) for v in lin)))
        out.write("near %d %s\n" % (k, " ".join("%.4g" % v for v in near(pairs, Xv))))
        diff = np.nonzero(svc != lin)[0]
        out.write("differ %d %s\n" % (k, " ".join(str(v) for v in diff)))
        print("%s fold %d: %d of %d val predictions differ %s" % (name, k, len(diff), len(lin), diff))
    svc = SVC(kernel="linear", C=1.0, class_weight="balanced").fit(Xp, yp)
    cls, pairs = ovo_linear(Xp, yp)
    for ca, cb, w, b in pairs:
        out.write("pair %d %d %s %s\n" % (ca, cb, " ".join(fmt(v) for v in w), fmt(b)))
    fs = svc.predict(Xs)
    fl = ovo_predict(cls, pairs, Xs)
    out.write("final_svc %s\n" % " ".join(str(v) for v in fs))
    out.write("final_lin %s\n" % " ".join(str(v) for v in fl))
    out.write("final_near %s\n" % " ".join("%.4g" % v for v in near(pairs, Xs)))
    diff = np.nonzero(fs != fl)[0]
    out.write("final_differ %s\n" % " ".join(str(v) for v in diff))
    print("%s final: %d of %d predictions differ %s" % (name, len(diff), len(fl), diff))


verse_table()
with open(os.path.join(FIX, "svm_linear_expected.txt"), "w") as out:
    out.write("# scikit-learn %s: SVC (libsvm) vs one-vs-one LinearSVC(loss='hinge', dual=True, "
              "intercept_scaling=%g, tol=%g) (liblinear);\n" % (sklearn.__version__, B, EPS))
    out.write("# scripts/make_svm_linear_fixture.py; indices count val rows in split order\n")
    run("small", os.path.join(FIX, "svm_table.csv"), os.path.join(FIX, "svm_split.json"), out)
    run("verse", os.path.join(FIX, "svm_verse_table.csv"), "configs/verse19_split.json", out)
