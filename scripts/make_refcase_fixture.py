#!/usr/bin/env python3
"""Make tests/measure/fixtures/refcase_mask.nii.gz and refcase_expected.txt.

The expected values of hv_measure_reference_case (the reference's RHLV on a
whole case) come from an independent numpy re-implementation of the
reference algorithm as written in the reference spec
(shared/reference/healthivert-reference-spec.md), not from our C code:
  2.2 curve: polyline through the whole-vertebra centroids, extended 20
      voxels at each end, knots at unit arc length; tangents by central
      differences over the point index, interpolated in s and normalised;
  2.3 frame: e1 = t, e2 = (-t2, 0, t0)/|.|, e3 = e2 x t;
  2.4 resampling: 128 x 128 cross-sections, labels nearest neighbour;
  2.5 crop: 64 LR slices [int(z-32), int(z+32)) around the target;
  3.1 de-pedicle: along the centre LR column from the curve backwards, the
      first AP index where the label occurs in no row: the label is deleted
      from there on;
  9   RHLV: central ~40 % of the original's LR extent, column counts, thirds
      of the fake mask's AP extent (anterior = small column index), the
      original-taller scaling, columns above T x centre height (T = 0.7).
The input (in I, P, L array order, as the reference expects) is our RAS
array with all three axes flipped.

The fixture is a straight lumbar stack on a 1 mm RAS grid: L1-L5 bodies
(41 x 30 mm) each with a posterior arch behind an 8 mm canal gap; L3 is an
anterior wedge (anterior 12 mm, posterior 24 mm), the others flat 24 mm.
The "fake" (pseudo-healthy) mask the reference would get from its GAN is
taken to be the ideal healthy body: the flat 24 mm box of the same
footprint, arch-less. Our pipeline makes its own pseudo-healthy mask
(hv_measure_synth_mask from the baseline), so the test compares h_ori (which
depends on the mask and the algorithm only) tightly and h_syn / RHLV with a
stated margin.

    apt-get install python3-numpy python3-nibabel
    /usr/bin/python3 scripts/make_refcase_fixture.py tests/measure/fixtures
Deterministic (no randomness).
"""
import os
import sys

import nibabel as nib
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/measure/fixtures"
os.makedirs(out, exist_ok=True)

NX, NY, NZ = 62, 70, 200
LABELS = [20, 21, 22, 23, 24]
T = 0.7


def zc_of(label):
    return 20.0 + (24 - label) * 40.0


def body_h(label, y, healthy=False):
    """Body height (mm) at AP position y (anterior +) in [-15, 15)."""
    if label == 22 and not healthy:
        return 24.0 + (12.0 - 24.0) * (y + 15.0) / 30.0
    return 24.0


def make(healthy_target=None):
    """Whole-vertebra mask (RAS, uint8); with healthy_target, only that
    label's body as the flat healthy box (the fake)."""
    m = np.zeros((NX, NY, NZ), np.uint8)
    x = np.arange(NX) - 31.0           # voxel centres, x in [-31, 30]
    y = np.arange(NY) - 35.0 + 0.5     # y in [-34.5, 34.5]
    z = np.arange(NZ) + 0.5
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    labels = [healthy_target] if healthy_target else LABELS
    for lab in labels:
        zc = zc_of(lab)
        inx = (X >= -20) & (X <= 20)   # 41 columns, centred on x = 0
        body = inx & (Y >= -15) & (Y < 15)
        h = np.vectorize(lambda yy: body_h(lab, yy, healthy_target is not None))(Y[body])
        sel = np.zeros_like(body)
        sel[body] = np.abs(Z[body] - zc) <= h / 2
        m[sel] = lab
        if not healthy_target:
            # a little lower than the body centre: keeps the centroids off .5
            arch = (np.abs(X) <= 6) & (Y >= -32) & (Y < -23) & (Z - zc >= -9) & (Z - zc <= 6)
            m[arch] = lab
    return m


def to_ipl(a):
    return np.ascontiguousarray(a[::-1, ::-1, ::-1].transpose(2, 1, 0))


def straighten(lab_ipl, centroids):
    """Spec 2.2-2.4 on a label array (I, P, L); nearest neighbour."""
    pts = [np.asarray(c, float) for c in centroids]
    shape = lab_ipl.shape
    first = pts[0] + 20.0 * (pts[0] - pts[1]) / np.linalg.norm(pts[0] - pts[1])
    last = pts[-1] + 20.0 * (pts[-1] - pts[-2]) / np.linalg.norm(pts[-1] - pts[-2])
    first = np.clip(first, 0, shape)
    last = np.clip(last, 0, shape)
    P = np.array([first] + pts + [last])
    seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
    s_pts = np.concatenate([[0.0], np.cumsum(seg)])
    N = int(np.ceil(s_pts[-1]))
    s = np.arange(N, dtype=float)
    knots = np.stack([np.interp(s, s_pts, P[:, d]) for d in range(3)], axis=1)
    tp = np.gradient(P, axis=0)
    tan = np.stack([np.interp(s, s_pts, tp[:, d]) for d in range(3)], axis=1)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    e2 = np.stack([-tan[:, 2], np.zeros(N), tan[:, 0]], axis=1)
    e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
    e3 = np.cross(e2, tan)
    ii, jj = np.meshgrid(np.arange(128) - 64.0, np.arange(128) - 64.0, indexing="ij")
    S = np.zeros((N, 128, 128), np.uint8)
    for n in range(N):
        q = knots[n][None, None, :] + jj[..., None] * e2[n] + ii[..., None] * e3[n]
        r = np.rint(q).astype(int)
        ok = np.all((r >= 0) & (r < np.array(shape)), axis=2)
        v = np.zeros((128, 128), np.uint8)
        v[ok] = lab_ipl[r[ok][:, 0], r[ok][:, 1], r[ok][:, 2]]
        S[n] = v
    # fractional parts of the knot coordinates must stay away from .5
    # (nearest-neighbour ties) for the fixture to be unambiguous
    frac = np.abs(np.abs(knots - np.floor(knots)) - 0.5)
    assert frac.min() > 1e-3, "sample positions too close to a rounding tie"
    return S, knots, e2, e3


def depedicle(S):
    """Spec 3.1."""
    S = S.copy()
    for lab in np.unique(S):
        if lab == 0:
            continue
        for i in range(64, 128):
            if not np.any(S[:, i, 64] == lab):
                sub = S[:, i:, :]
                sub[sub == lab] = 0
                break
    return S


def target_local(knots, e2, e3, c):
    """Spec 2.4 global_to_local: (s, 64 + e2.d, 64 + e3.d) at the knot where
    the projection on the tangent changes sign (nearest knot here)."""
    d = c[None, :] - knots
    n = int(np.argmin(np.linalg.norm(d, axis=1)))
    return n, 64 + d[n] @ e2[n], 64 + d[n] @ e3[n]


def crop_lr(S, lab, z):
    """Spec 2.5 for the label, rows all, AP all, 64 LR slices: already the
    RHLV layout (rows, AP columns anterior first, LR slices)."""
    z0 = int(z - 32)
    c = (S[:, :, max(0, z0):z0 + 64] == lab).astype(np.uint8)
    return c                 # axis 1 = e3, posterior larger: anterior = small column index (spec 9)


def rhlv(ori, syn):
    """Spec 9 on (rows, cols, slices) binary crops."""
    zs = np.nonzero(ori.any(axis=(0, 1)))[0]
    zmin, zmax = zs.min(), zs.max()
    idx = np.nonzero(ori)[2]
    zc = int(idx.mean())
    ln = (zmax - zmin) // 5
    sums = {k: [[], []] for k in ("all", "ant", "mid", "post")}
    C = ori.shape[1]
    for s in range(zc - ln, zc + ln):
        ho = ori[:, :, s].sum(axis=0).astype(float)
        hs = syn[:, :, s].sum(axis=0).astype(float)
        if ho.sum() == 0 or hs.sum() == 0:
            continue
        cols = np.nonzero(hs)[0]
        ymin, ymax = cols.min(), cols.max()
        t1 = int(ymin + (ymax - ymin) / 3)
        t2 = int(ymin + 2 * (ymax - ymin) / 3)
        cen_o = ho[int((np.arange(C) * ho).sum() / ho.sum())]
        cen_s = hs[int((np.arange(C) * hs).sum() / hs.sum())]
        for reg, lo, hi in (("all", 0, C), ("ant", 0, t1), ("mid", t1, t2), ("post", t2, C)):
            mo, ms = ho[lo:hi].max(), hs[lo:hi].max()
            f = mo / (ms + 1e-6) if mo > ms else 1.0
            if reg == "all":
                cen_s *= f
            hsf = hs[lo:hi] * f
            sums[reg][0] += list(hsf[hsf > cen_s * T])
            sums[reg][1] += list(ho[lo:hi][ho[lo:hi] > cen_o * T])
    res = {}
    for reg in ("all", "ant", "mid", "post"):
        h_syn = float(np.mean(sums[reg][0])) if sums[reg][0] else 0.0
        h_ori = float(np.mean(sums[reg][1])) if sums[reg][1] else 0.0
        res[reg] = (h_ori, h_syn, (h_syn - h_ori) / (h_syn + 1e-6))
    return res


mask = make()
aff = np.array([[1, 0, 0, -31.0], [0, 1, 0, -34.5], [0, 0, 1, 0.5], [0, 0, 0, 1]])
img = nib.Nifti1Image(mask, aff)
img.set_sform(aff, code=1)
img.set_qform(aff, code=1)
nib.save(img, os.path.join(out, "refcase_mask.nii.gz"))

ipl = to_ipl(mask)
cents = [np.argwhere(ipl == lab).mean(axis=0) for lab in LABELS]  # cranial first
S, knots, e2, e3 = straighten(ipl, cents)
S = depedicle(S)
with open(os.path.join(out, "refcase_expected.txt"), "w") as f:
    f.write("# refcase_mask.nii.gz: reference RHLV (spec 2.2-2.5, 3.1, 9; T = %.1f) per label,\n" % T)
    f.write("# fake = the ideal healthy flat 24 mm body. numpy %s, nibabel %s\n"
            % (np.__version__, nib.__version__))
    f.write("# label  h_ori(all ant mid post)  h_syn(all ant mid post)  rhlv(all ant mid post)\n")
    for lab, c in zip(LABELS, cents):
        fake = make(healthy_target=lab)
        Sf, _, _, _ = straighten(to_ipl(fake), cents)
        Sf = depedicle(Sf)
        n, z, y = target_local(knots, e2, e3, c)
        r = rhlv(crop_lr(S, lab, z), crop_lr(Sf, lab, z))
        regs = ("all", "ant", "mid", "post")
        f.write("%d %s %s %s\n" % (lab, " ".join("%.6f" % r[g][0] for g in regs),
                                   " ".join("%.6f" % r[g][1] for g in regs),
                                   " ".join("%.6f" % r[g][2] for g in regs)))
print(open(os.path.join(out, "refcase_expected.txt")).read())
