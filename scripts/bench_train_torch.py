#!/usr/bin/python3
"""PyTorch side of bench/train: one HealthiVert-GAN training step, the same
step as hv_model_gan_step (docs/model.md, "One step"), on the CPU.

    /usr/bin/python3 scripts/bench_train_torch.py THREADS REPS CNUM NDF BATCH

The generator is the one of scripts/make_generator_fixture.py (spectral-norm
convolutions, contextual attention), the discriminators are pix2pix
NLayerDiscriminators (n_layers 3, batch norm, LeakyReLU 0.2) like
src/model/patchgan.c. One step, in the reference's order
(optimize_parameters): G forward in training mode; the height composites of
spec 5.5 (rows chosen from the detached heads, comp = gen * w + rest);
D1 (fine composite vs A), D2 (fine segmentation vs A_mask), D3 (composite
times the band and the central 70 columns) each on fake.detach() and real,
0.5 (BCE(fake, 0) + BCE(real, 1)), backward, Adam; then the generator loss
(adversarial terms from the updated D's with target 1, weight 1/6; L1 with
the rows*cols/nnz normaliser, fine and coarse Dice, Sobel edge MSE on the
sigmoid segmentation, height), backward, Adam (2e-4, 0.5/0.999).

The inputs are synthetic (the bench measures time, not learning): a 40-row
band, a 30-row target inside it. Prints one line:
    "torch train cnum C ndf D batch B seconds_per_step S"
the median over REPS steps after one warm-up step. Needs Debian's
python3-torch; bench/train runs it when python3 can import torch.

One difference in arithmetic, not in work: the Sobel magnitude is
sqrt(gx^2 + gy^2 + 1e-12) so that PyTorch's sqrt backward stays finite where
the gradient is 0 (ours skips those pixels).
"""
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_generator_fixture as fx  # noqa: E402

ROWS = COLS = 256
BAND_LO, BAND_ROWS = 108, 40
X1, X2 = 113, 143  # target rows [x1, x2), inside the band
LOCAL_COLS = 70
LAMBDA = dict(l1=200.0, dice_f=15.0, dice_c=10.0, edge=800.0, height=40.0, gan=1.0 / 6.0)


def patchgan(ndf):
    return nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * ndf),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * ndf, 8 * ndf, 4, 1, 1, bias=False), nn.BatchNorm2d(8 * ndf),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(8 * ndf, 1, 4, 1, 1))


def composite_weights(p, real):
    """w, rest of spec 5.5 for every item (p detached: the height is an integer)."""
    n = p.shape[0]
    w = torch.zeros_like(real)
    rest = torch.zeros_like(real)
    for i in range(n):
        h = X2 - X1
        hp = max(int(torch.ceil(p[i, 0] * BAND_ROWS).item()), h)
        d = hp - h
        x_up = X1 - d // 2
        x_lo = x_up + hp
        for r in range(ROWS):
            if x_up <= r < x_lo:
                w[i, :, r, :] = 1.0
                continue
            src = r + d // 2 if r < x_up else X2 + (r - x_lo)
            if 0 <= src < ROWS:
                rest[i, :, r, :] = real[i, :, src, :]
    return w, rest


SOBEL = torch.tensor([[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]],
                      [[[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]]])


def sobel(x):
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), SOBEL)
    return torch.clamp(torch.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2 + 1e-12), max=1.0)


def dice(p, t):
    n = p.shape[0]
    p, t = p.reshape(n, -1), t.reshape(n, -1)
    return ((2 * (p * t).sum(1) + 1e-5) / (p.sum(1) + t.sum(1) + 1e-5)).mean()


def make_batch(n):
    gen = torch.Generator().manual_seed(5)
    mask = torch.zeros(n, 1, ROWS, COLS)
    mask[:, :, BAND_LO:BAND_LO + BAND_ROWS, :] = 1.0
    real = torch.rand(n, 1, ROWS, COLS, generator=gen) * 2 - 1
    x = real * (1 - mask) - mask
    cam = torch.rand(n, 1, ROWS, COLS, generator=gen)
    ratio = torch.ones(n, 1, ROWS, COLS) * 0.4
    real_mask = torch.zeros(n, 1, ROWS, COLS)
    real_mask[:, :, X1:X2, 90:166] = 1.0
    normal = torch.zeros(n, 1, ROWS, COLS)
    normal[:, :, 60:100, 90:166] = 1.0
    normal[:, :, 150:190, 90:166] = 1.0
    height = torch.full((n, 1), float(X2 - X1))
    bandcol = mask.clone()
    c0 = COLS // 2 - LOCAL_COLS // 2
    bandcol[:, :, :, :c0] = 0
    bandcol[:, :, :, c0 + LOCAL_COLS:] = 0
    return x, mask, cam, ratio, real, real_mask, normal, height, bandcol


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def step(G, Ds, optG, optDs, batch):
    x, mask, cam, ratio, real, real_mask, normal, height, bandcol = batch
    cseg, xs1, p1, fseg, xs2, p2 = G(x, mask, cam, ratio)
    w1, r1 = composite_weights(p1.detach(), real)
    w2, r2 = composite_weights(p2.detach(), real)
    comp1, comp2 = xs1 * w1 + r1, xs2 * w2 + r2
    fakes = [comp2, fseg, comp2 * bandcol]
    reals = [real, real_mask, real * bandcol]
    # discriminators
    for D, opt, f, r in zip(Ds, optDs, fakes, reals):
        for p in D.parameters():
            p.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (bce(D(f.detach()), 0.0) + bce(D(r), 1.0))
        loss.backward()
        opt.step()
    # generator
    for D in Ds:
        for p in D.parameters():
            p.requires_grad_(False)
    optG.zero_grad(set_to_none=True)
    gan = sum(bce(D(f), 1.0) for D, f in zip(Ds, fakes)) * LAMBDA["gan"]
    nnz = mask.sum()
    l1 = 0.5 * ((comp2 - real).abs().mean() + (comp1 - real).abs().mean()) * \
        LAMBDA["l1"] * ROWS * COLS * 2 / nnz
    dice_f = LAMBDA["dice_f"] * (1 - dice(fseg, real_mask))
    dice_c = LAMBDA["dice_c"] * (1 - dice(cseg, normal))
    edge = LAMBDA["edge"] * F.mse_loss(sobel(fseg), sobel(real_mask))
    hgt = LAMBDA["height"] * ((p1 * BAND_ROWS - height).abs() / height +
                              (p2 * BAND_ROWS - height).abs() / height).mean()
    total = gan + l1 + dice_f + dice_c + edge + hgt
    total.backward()
    optG.step()
    return float(total)


def main():
    threads, reps, cnum, ndf, n = (int(a) for a in sys.argv[1:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = fx.Generator(cnum)
    Ds = [patchgan(ndf) for _ in range(3)]
    G.train()
    for D in Ds:
        D.train()
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optDs = [torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)) for D in Ds]
    batch = make_batch(n)
    step(G, Ds, optG, optDs, batch)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step(G, Ds, optG, optDs, batch)
        times.append(time.perf_counter() - t0)
    print("torch train cnum %d ndf %d batch %d seconds_per_step %.5f"
          % (cnum, ndf, n, statistics.median(times)), flush=True)


if __name__ == "__main__":
    main()
