#!/usr/bin/env python3
"""cam_margin.py: where a Grad-CAM++ map's mass falls, with a margin.

For each ID_LABEL_cam.nii.gz that `healthivert attention` wrote into ATT_DIR
(256 rows x 256 AP x 64 LR, the reference's layout) and the de-pedicled
label crop that `healthivert straighten` wrote for the same vertebra into
CROP_DIR (64 LR x 256 AP x 256 rows), prints the fraction of the map's mass
on the 30 mapped LR slices (17..46) that lies inside the vertebra's body and
inside the body dilated in-plane by R pixels (R = 16 and 32: half and one
cell of the classifier's layer4 grid, 8 x 8 over 256 px), beside the share
of the slice area that the dilated body covers (what a uniform map would
put there). Two more readings of the same one-cell region (R = 32):
hm_r32, the share of the mass of the map's upper half (values at least half
the map's maximum) that lies in it, which leaves out the low floor that
min-max normalisation leaves over the whole slice; and peak_r32, the
fraction of the 30 slices whose maximum lies in it (a pointing game).
Grades come from the phantom's ground_truth.csv.

Used for results/attention-phantom.md ("With a margin"); needs numpy,
scipy and nibabel (Debian: python3-scipy, python3-nibabel). Never needed by
the build or the tests.

usage: cam_margin.py ATT_DIR CROP_DIR GROUND_TRUTH_CSV
"""
import csv
import glob
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    att, crops, truth = sys.argv[1:]
    grade = {(r["case"], int(r["label"])): int(r["grade"]) for r in csv.DictReader(open(truth))}
    print("case,label,grade,mass_body,mass_r16,area_r16,mass_r32,area_r32,hm_r32,peak_r32")
    for f in sorted(glob.glob(os.path.join(att, "*_cam.nii.gz"))):
        base = os.path.basename(f)[: -len("_cam.nii.gz")]
        case, lab = base.rsplit("_", 1)
        lab = int(lab)
        cam = np.asarray(nib.load(f).dataobj, dtype=np.float64)
        lab_crop = np.asarray(nib.load(os.path.join(crops, base + "_label.nii.gz")).dataobj)
        body = np.transpose(lab_crop, (2, 1, 0)) == lab  # -> rows x AP x LR
        if cam.shape != body.shape:
            sys.exit("%s: map %s, crop %s" % (base, cam.shape, body.shape))
        s = slice(17, 47)
        c, b = cam[:, :, s], body[:, :, s]
        tot = c.sum()
        out = [(c * b).sum() / tot if tot > 0 else float("nan")]
        for r in (16, 32):
            # dilation by a (2r+1)^2 in-plane square: separable, as two
            # running maxima (a 3-D binary_dilation of it took seconds a map)
            d = b.astype(np.uint8)
            for ax in (0, 1):
                d = ndimage.maximum_filter1d(d, 2 * r + 1, axis=ax, mode="constant", cval=0)
            d = d.astype(bool)
            out += [(c * d).sum() / tot if tot > 0 else float("nan"), d.mean()]
        # d is now the one-cell region (R = 32)
        upper = c * (c >= 0.5 * c.max())
        out.append((upper * d).sum() / upper.sum() if tot > 0 else float("nan"))
        peaks = [d[np.unravel_index(np.argmax(c[:, :, k]), c.shape[:2]) + (k,)]
                 for k in range(c.shape[2]) if c[:, :, k].max() > 0]
        out.append(np.mean(peaks) if peaks else float("nan"))
        print("%s,%d,%d,%s" % (case, lab, grade[(case, lab)], ",".join("%.4f" % v for v in out)))


if __name__ == "__main__":
    main()
