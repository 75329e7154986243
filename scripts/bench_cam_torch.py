#!/usr/bin/python3
"""PyTorch side of bench/cam: the classifier of spec 7 (MONAI's SEResNet50
layout, the plain-torch copy in scripts/make_cls_fixture.py) at a given
width, eval mode, on the CPU: median seconds per vertebra (30 slices of
256 x 256, in batches of BATCH) of forward + backward of the batch's summed
class-1 logit + Grad-CAM++ of every slice (spec 7, torch ops) + the bilinear
resize to 256 x 256, as hv_model_cam_crop does it.

    /usr/bin/python3 scripts/bench_cam_torch.py THREADS REPS BATCH WIDTH...

Two ways of getting the gradient, both timed:
  full: parameters require gradients and logits[:, 1].sum().backward() runs
        the whole backward (what pytorch-grad-cam and most Grad-CAM++ scripts
        do; ours also runs the backward down to the stem, without parameter
        gradients);
  min:  frozen parameters and torch.autograd.grad to the target only (the
        backward stops at layer4.2: the least work PyTorch can do).
Prints one line per width and mode:
"torch width W mode M seconds_per_vertebra S".
Needs Debian's python3-torch; bench/cam runs it when present.
"""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_cls_fixture as mcf  # noqa: E402


def one_vertebra(net, x, batch, store, mode):
    cams = []
    for s0 in range(0, x.shape[0], batch):
        xb = x[s0:s0 + batch]
        logits = net(xb)
        A = store["target"]
        if mode == "full":
            net.zero_grad(set_to_none=True)
            logits[:, 1].sum().backward()
            g = A.grad
        else:
            (g,) = torch.autograd.grad(logits[:, 1].sum(), A)
        for n in range(xb.shape[0]):
            cam = mcf.gradcampp(A[n].detach().double(), g[n].double(), logits[n, 1].detach().double())
            cams.append(F.interpolate(cam[None, None].float(), size=(256, 256), mode="bilinear",
                                      align_corners=False)[0, 0])
    return cams


def main():
    threads, reps, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    widths = [int(w) for w in sys.argv[4:]] or [64]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.floor(torch.rand(30, 1, 256, 256, generator=gen) * 256).clamp(max=255) / 255
    for w in widths:
        for mode in ("full", "min"):
            net = mcf.SEResNet50(w).eval()
            for p in net.parameters():
                p.requires_grad_(mode == "full")
            store = {}

            def keep(m, i, o):
                if o.requires_grad:
                    o.retain_grad()
                else:
                    o.requires_grad_(True)
                store["target"] = o

            net.layer4[2].conv1.conv.register_forward_hook(keep)
            one_vertebra(net, x, batch, store, mode)  # warm-up
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                one_vertebra(net, x, batch, store, mode)
                times.append(time.perf_counter() - t0)
            print("torch width %d mode %s seconds_per_vertebra %.4f"
                  % (w, mode, statistics.median(times)), flush=True)


if __name__ == "__main__":
    main()
