#!/usr/bin/python3
"""Make the fixture that tests loading a PyTorch checkpoint (issue 17).

What a user does with a trained reference model is: take its .pth file,
convert it with scripts/pth_to_hv.py, and load the result with
hv_nn_checkpoint_load into our generator. This script does exactly that with
a small seeded generator, so that tests/model/test_model_pth.c can check the
whole path against PyTorch:

  1. builds the generator of scripts/make_generator_fixture.py at width
     cnum 2 (seed 2031; a few training-mode passes move the spectral-norm
     vectors off their start, as in a trained checkpoint), eval mode;
  2. saves its state_dict with torch.save, as the reference saves
     latest_net_G.pth (spec 6), wrapped as a DataParallel model is
     ("module." prefixes, inside {"state_dict": ...}) so that the script's
     unwrapping is exercised too;
  3. runs scripts/pth_to_hv.py on it (a separate process, as a user would)
     to tests/model/fixtures/generator_cnum2_pth.h5;
  4. runs PyTorch's forward on a fixed input (2 items at 32 x 32, each with
     its own band: contextual attention must see per-item masks) and writes
     inputs and outputs, and NO weights, to
     tests/model/fixtures/generator_cnum2_pth_io.bin (HVFX format, see
     make_generator_fixture.py). The weights reach the C test only through
     the converted checkpoint.

Needs Debian's python3-torch (1.13), python3-numpy and python3-h5py
(scripts/deps.sh dev); without them it stops with a message saying what is
missing and how to install it. Run from the repository root:
    /usr/bin/python3 scripts/make_pth_fixture.py
Not needed by the build or the tests (both files are committed).
"""
import os
import subprocess
import sys
import tempfile

missing = []
for mod, pkg in (("torch", "python3-torch"), ("numpy", "python3-numpy"), ("h5py", "python3-h5py")):
    try:
        __import__(mod)
    except ImportError:
        missing.append(pkg)
if missing:
    sys.stderr.write("make_pth_fixture.py: missing Python modules; install them with\n"
                     "  apt-get install -y %s   (or scripts/deps.sh dev)\n"
                     "and run this script with /usr/bin/python3\n" % " ".join(missing))
    sys.exit(1)

import h5py  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_generator_fixture as gf  # noqa: E402

CNUM = 2
SEED = 2031
OUT_H5 = "tests/model/fixtures/generator_cnum2_pth.h5"
OUT_IO = "tests/model/fixtures/generator_cnum2_pth_io.bin"


def inputs(n, h, w, seed):
    """Like make_generator_fixture.make_inputs, but a different band per item."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, h, w, generator=gen) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    bands = [(h // 2 - h // 8, h // 2 + h // 8), (h // 4, h // 4 + h // 8)]
    for i in range(n):
        lo, hi = bands[i % 2]
        mask[i, :, lo:hi, :] = 1.0
    x = x * (1 - mask) - mask
    cam = torch.rand(n, 1, h, w, generator=gen)
    ratio = torch.ones(n, 1, h, w) * torch.tensor([0.3, 0.8][:n]).view(n, 1, 1, 1)
    return x, mask, cam, ratio


def main():
    torch.set_num_threads(2)
    g = gf.build(CNUM, seed=SEED)
    sd = g.state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "latest_net_G.pth")
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, pth)
        out = os.path.abspath(OUT_H5)
        # relative source name, so that the file's /meta does not name tmp
        subprocess.run([sys.executable, os.path.join(HERE, "pth_to_hv.py"), "latest_net_G.pth",
                        out], cwd=tmp, check=True)
    # the converted file holds every float tensor of the state_dict, bit for bit
    with h5py.File(OUT_H5, "r") as f:
        names = set(f["params"].keys())
        want = {k for k, v in sd.items() if v.is_floating_point()}
        if names != want:
            raise SystemExit("pth_to_hv.py wrote %d tensors, the state_dict has %d: %s"
                             % (len(names), len(want), sorted(names ^ want)[:5]))
        for k in want:
            a = f["params"][k][()]
            if a.shape != tuple(sd[k].shape) or (a != sd[k].numpy()).any():
                raise SystemExit("pth_to_hv.py changed tensor %s" % k)
    ins = inputs(2, 32, 32, 11)
    with torch.no_grad():
        outs = g(*ins)
    tensors = list(zip(["in.x", "in.mask", "in.cam", "in.ratio"], ins))
    tensors += list(zip(["out.coarse_seg", "out.x_stage1", "out.p1", "out.fine_seg",
                         "out.x_stage2", "out.p2"], outs))
    gf.write(OUT_IO, tensors)
    print("wrote %s (%d tensors, %d values) and %s (torch %s)"
          % (OUT_H5, len(want), sum(sd[k].numel() for k in want), OUT_IO, torch.__version__))


if __name__ == "__main__":
    main()
