#!/usr/bin/env python3
"""Make the small committed fixtures of tests/measure/fixtures.

Reference values come from the libraries the reference pipeline used:
scikit-image (SSIM/PSNR, spec section 11) and scikit-learn (StandardScaler,
StratifiedKFold, SVC, metrics; spec section 10). On Debian 12:
    apt-get install python3-skimage python3-sklearn
    /usr/bin/python3 scripts/make_measure_fixtures.py tests/measure/fixtures
Made with scikit-image 0.19.3 and scikit-learn 1.2.1 (Debian 12); the
defaults used here are the same in the reference's 0.22 / 1.4.1.
Everything is seeded, so re-running reproduces the files.
"""
import json
import os
import sys

import numpy as np
import sklearn
import skimage
from skimage.metrics import structural_similarity, peak_signal_noise_ratio
from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix,
                             f1_score, precision_score, recall_score)
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

out = sys.argv[1] if len(sys.argv) > 1 else "tests/measure/fixtures"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20250301)


def fmt(v):
    return "%.17g" % v


# ------------------------------------------------------------------ SSIM
# Three pairs: smooth structure + noise (float, data_range 1), a uint8-like
# pair (data_range 255, as the reference's CT crops in [0, 255]), and a
# non-square pair with a flat region (variance 0 windows).
pairs = []
h, w = 24, 31
yy, xx = np.mgrid[0:h, 0:w]
a = 0.5 + 0.4 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
b = a + rng.normal(0, 0.05, a.shape)
pairs.append(("float", a, b, 1.0))
a = np.floor(rng.uniform(0, 256, (32, 32)))
b = np.clip(a + np.floor(rng.normal(0, 20, a.shape)), 0, 255)
pairs.append(("u8", a, b, float(a.max() - a.min())))
a = np.zeros((9, 40))
a[:, 20:] = 100.0
b = a.copy()
b[3:6, 10:30] += 30.0
pairs.append(("flat", a, b, 130.0))
with open(os.path.join(out, "ssim_fixtures.txt"), "w") as f:
    f.write("# name h w data_range ssim psnr, then h*w values of x, then of y (row-major)\n")
    f.write("# skimage %s structural_similarity(x, y, data_range=R) defaults; "
            "peak_signal_noise_ratio(x, y, data_range=R)\n" % skimage.__version__)
    for name, x, y, r in pairs:
        s = structural_similarity(x, y, data_range=r)
        p = peak_signal_noise_ratio(x, y, data_range=r)
        f.write("%s %d %d %s %s %s\n" % (name, x.shape[0], x.shape[1], fmt(r), fmt(s), fmt(p)))
        f.write(" ".join(fmt(v) for v in x.ravel()) + "\n")
        f.write(" ".join(fmt(v) for v in y.ravel()) + "\n")

# -------------------------------------------------------- classification
yt = rng.integers(0, 4, 40)
yp = yt.copy()
flip = rng.random(40) < 0.35
yp[flip] = rng.integers(0, 4, flip.sum())
yp[yp == 2] = 1  # class 2 never predicted: zero_division path for precision
with open(os.path.join(out, "class_metrics.txt"), "w") as f:
    f.write("# y_true, y_pred, then macro_precision macro_recall macro_f1 accuracy kappa_linear "
            "(scikit-learn %s)\n" % sklearn.__version__)
    f.write(" ".join(str(v) for v in yt) + "\n")
    f.write(" ".join(str(v) for v in yp) + "\n")
    f.write(" ".join(fmt(v) for v in (
        precision_score(yt, yp, average="macro", zero_division=0),
        recall_score(yt, yp, average="macro", zero_division=0),
        f1_score(yt, yp, average="macro", zero_division=0),
        accuracy_score(yt, yp),
        cohen_kappa_score(yt, yp, weights="linear"))) + "\n")

# ------------------------------------------------------------------- SVM
# A small RHLV table in the reference's order (split JSON order test, train,
# val): grade g has losses around 0.1 + 0.12 g, with overlap.
centres = {0: 0.02, 1: 0.17, 2: 0.30, 3: 0.48}
sets = {"test": 24, "train": 46, "val": 30}
grades_p = [0.55, 0.15, 0.17, 0.13]
split = {}
rows = []
case = 0
for sname in ("test", "train", "val"):
    split[sname] = {}
    for i in range(sets[sname]):
        g = int(rng.choice(4, p=grades_p))
        c = centres[g]
        kind = rng.integers(0, 3)  # which region carries the loss
        x = rng.normal(0.0, 0.05, 3) + 0.3 * c
        x[kind] += 0.7 * c
        cid = "sub-fx%03d" % case
        label = 8 + (i % 17)
        case += 1
        split[sname]["%s_%d" % (cid, label)] = g
        rows.append((cid, label, sname, g, x))
with open(os.path.join(out, "svm_split.json"), "w") as f:
    json.dump(split, f, indent=1)
with open(os.path.join(out, "svm_table.csv"), "w") as f:
    f.write("case,label,level,rhlv_ant,rhlv_mid,rhlv_post\n")
    for cid, label, sname, g, x in rows:
        f.write("%s,%d,x,%s,%s,%s\n" % (cid, label, fmt(x[0]), fmt(x[1]), fmt(x[2])))
pool = [r for r in rows if r[2] in ("test", "train")]
val = [r for r in rows if r[2] == "val"]
Xp = np.array([r[4] for r in pool])
yp_ = np.array([r[3] for r in pool])
Xv = np.array([r[4] for r in val])
yv = np.array([r[3] for r in val])
sc = StandardScaler().fit(Xp)
Xps, Xvs = sc.transform(Xp), sc.transform(Xv)
skf = StratifiedKFold(n_splits=5, shuffle=False)
fold = np.zeros(len(pool), dtype=int)
with open(os.path.join(out, "svm_expected.txt"), "w") as f:
    f.write("# scikit-learn %s: StandardScaler on train+test, StratifiedKFold(5), "
            "SVC(kernel='linear', class_weight='balanced'), scored on val\n" % sklearn.__version__)
    res = []
    lines = []
    for k, (tr, te) in enumerate(skf.split(Xps, yp_)):
        fold[te] = k
        clf = SVC(kernel="linear", class_weight="balanced").fit(Xps[tr], yp_[tr])
        pr = clf.predict(Xvs)
        m = (f1_score(yv, pr, average="macro", zero_division=0),
             precision_score(yv, pr, average="macro", zero_division=0),
             recall_score(yv, pr, average="macro", zero_division=0),
             accuracy_score(yv, pr))
        res.append(m)
        lines.append("pred %d %s\n" % (k, " ".join(str(v) for v in pr)))
        lines.append("metrics %d %s\n" % (k, " ".join(fmt(v) for v in m)))
    f.write("folds %s\n" % " ".join(str(v) for v in fold))
    f.writelines(lines)
    res = np.array(res)
    f.write("mean %s\n" % " ".join(fmt(v) for v in res.mean(0)))
    f.write("var %s\n" % " ".join(fmt(v) for v in res.var(0)))
    f.write("scaler_mean %s\n" % " ".join(fmt(v) for v in sc.mean_))
    f.write("scaler_scale %s\n" % " ".join(fmt(v) for v in sc.scale_))
print("fixtures written to", out)
