#!/usr/bin/python3
"""Make tests/model/fixtures/aotgan_w4.bin: AOT-GAN's generator in PyTorch at
width 4 (the paper's is 64), 2 AOT blocks of rates 1, 2, 4, 8, one image
channel plus the mask, on a 2 x 36 x 40 batch; the expected values of
tests/model/test_model_aotgan.c.

The network is written here from the architecture facts of AOT-GAN (Zeng et
al., TVCG 2022; researchmm/AOT-GAN-for-Inpainting, src/model/aotgan.py):
modules named as its InpaintGenerator's, so that state_dict keys are its
keys; nn.ReflectionPad2d, nn.Conv2d, F.interpolate(bilinear, align_corners=
True), torch.tanh and its my_layer_norm (torch.std, Bessel-corrected, plus
1e-9) from PyTorch itself. Weights are PyTorch's default Conv2d init
(seeded) rather than AOT-GAN's N(0, 0.02), so that activations, gates and
the tanh output are far from trivial.

Contents (format of scripts/make_nn_ops_fixture.py): every parameter under
its state_dict name, "x", "mask", "out" (the generator's output), "R" (a
random upstream gradient), and "g.x", "g.<name>" for d sum(out * R) / d x
and for two parameters (the first encoder weight, the last gate weight).

Needs Debian's python3-torch (1.13): /usr/bin/python3 scripts/make_aotgan_fixture.py
Pins the AVX2 kernels as make_nn_ops_fixture.py does, for reproducible bytes.
"""
import os
import sys

os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hvfx  # noqa: E402


def gate_norm(feat):
    mean = feat.mean((2, 3), keepdim=True)
    std = feat.std((2, 3), keepdim=True) + 1e-9
    return 5 * (2 * (feat - mean) / std - 1)


class Block(nn.Module):
    def __init__(self, dim, rates):
        super().__init__()
        self.rates = rates
        for i, r in enumerate(rates):
            setattr(self, "block%02d" % i, nn.Sequential(
                nn.ReflectionPad2d(r), nn.Conv2d(dim, dim // 4, 3, dilation=r), nn.ReLU()))
        self.fuse = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.gate = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))

    def forward(self, x):
        out = self.fuse(torch.cat([getattr(self, "block%02d" % i)(x)
                                   for i in range(len(self.rates))], 1))
        m = torch.sigmoid(gate_norm(self.gate(x)))
        return x * (1 - m) + out * m


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


class Generator(nn.Module):
    def __init__(self, img_ch, w, n_blocks, rates):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(img_ch + 1, w, 7), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.ReLU())
        self.middle = nn.Sequential(*[Block(4 * w, rates) for _ in range(n_blocks)])
        self.decoder = nn.Sequential(Up(4 * w, 2 * w), nn.ReLU(), Up(2 * w, w), nn.ReLU(),
                                     nn.Conv2d(w, img_ch, 3, padding=1))

    def forward(self, x, mask):
        return torch.tanh(self.decoder(self.middle(self.encoder(torch.cat([x, mask], 1)))))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model/fixtures/aotgan_w4.bin"
    torch.set_num_threads(1)
    torch.manual_seed(15)
    net = Generator(1, 4, 2, [1, 2, 4, 8])
    g = torch.Generator().manual_seed(1515)
    img = torch.rand((2, 1, 36, 40), generator=g) * 2 - 1
    mask = torch.zeros((2, 1, 36, 40))
    mask[0, :, 10:22, 8:30] = 1  # a band per item, at another place per item
    mask[1, :, 20:30, 4:36] = 1
    x = (img * (1 - mask) + mask).requires_grad_(True)  # as AOT-GAN's trainer
    y = net(x, mask)
    r = torch.randn(y.shape, generator=g)
    (y * r).sum().backward()
    sd = net.state_dict()
    tensors = [(k, v) for k, v in sd.items()]
    tensors += [("x", x), ("mask", mask), ("out", y), ("R", r), ("g.x", x.grad)]
    params = dict(net.named_parameters())
    for k in ("encoder.1.weight", "middle.1.gate.1.weight"):
        tensors.append(("g." + k, params[k].grad))
    hvfx.write(out, tensors)
    print("wrote %s: %d tensors, %d parameters (torch %s)"
          % (out, len(tensors), sum(v.numel() for v in sd.values()), torch.__version__))


if __name__ == "__main__":
    main()
