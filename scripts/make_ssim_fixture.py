#!/usr/bin/env python3
"""Make tests/measure/fixtures/ssim_gaussian.txt: reference values for
hv_metrics_ssim_gaussian (and hv_metrics_psnr) from scikit-image.

SSIM is Wang et al. 2004's: structural_similarity(x, y, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=R) (an 11x11 Gaussian
window, K1 0.01, K2 0.03, mean over the image minus a 5-pixel border). On
Debian 12:
    apt-get install python3-skimage
    /usr/bin/python3 scripts/make_ssim_fixture.py tests/measure/fixtures
Seeded: re-running reproduces the file.
"""
import os
import sys

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

out = sys.argv[1] if len(sys.argv) > 1 else "tests/measure/fixtures"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261204)


def fmt(v):
    return "%.17g" % v


pairs = []
# smooth structure + noise, [0, 1]
yy, xx = np.mgrid[0:24, 0:31]
a = 0.5 + 0.4 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
pairs.append(("smooth", a, np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1), 1.0))
# a band-like pair: a bright block (a vertebral body) on a dark background,
# the second one shorter and noisier, as a synthesized band against its truth
a = np.full((30, 48), 0.15)
a[6:24, 10:38] = 0.7
a += rng.normal(0, 0.02, a.shape)
b = np.full((30, 48), 0.15)
b[9:22, 12:38] = 0.65
b += rng.normal(0, 0.04, b.shape)
pairs.append(("band", np.clip(a, 0, 1), np.clip(b, 0, 1), 1.0))
# flat regions (variance-0 windows), data range 255, non-square
a = np.zeros((13, 40))
a[:, 20:] = 200.0
b = a.copy()
b[4:9, 10:30] += 40.0
pairs.append(("flat", a, b, 255.0))
# the smallest image: 11x11, a single window
a = rng.uniform(0, 1, (11, 11))
pairs.append(("single", a, np.clip(a * 0.8 + 0.1 + rng.normal(0, 0.1, a.shape), 0, 1), 1.0))

with open(os.path.join(out, "ssim_gaussian.txt"), "w") as f:
    f.write("# name h w data_range ssim psnr, then h*w values of x, then of y (row-major)\n")
    f.write("# skimage %s structural_similarity(x, y, gaussian_weights=True, sigma=1.5, "
            "use_sample_covariance=False, data_range=R); peak_signal_noise_ratio(x, y, "
            "data_range=R); made by scripts/make_ssim_fixture.py\n" % skimage.__version__)
    for name, x, y, r in pairs:
        s = structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=r)
        p = peak_signal_noise_ratio(x, y, data_range=r)
        f.write("%s %d %d %s %s %s\n" % (name, x.shape[0], x.shape[1], fmt(r), fmt(s), fmt(p)))
        f.write(" ".join(fmt(v) for v in x.ravel()) + "\n")
        f.write(" ".join(fmt(v) for v in y.ravel()) + "\n")
