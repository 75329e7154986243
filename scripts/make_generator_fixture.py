#!/usr/bin/python3
"""Make the PyTorch equivalence fixture of the reference generator.

Builds the HealthiVert generator (spec 5.1-5.3: coarse + fine stage with
contextual attention, spectral-normalised convolutions) at reduced width
(cnum 4) in PyTorch, with seeded random weights, runs one forward pass in
eval mode on a seeded random input and writes weights, inputs and outputs to
tests/model/fixtures/generator_cnum4.bin, which tests/model/test_model_nets.c
compares our forward pass against (1e-4 relative error).

The network is written here from the specification (module and parameter
names follow the reference's state_dict, so the same names load into our
engine); it is not the reference's code. Contextual attention uses each batch
item's own mask (the reference uses item 0's mask for every item); the
fixture gives both items the same mask so that both behaviours agree.

Needs Debian's python3-torch (1.13) and numpy, run with /usr/bin/python3:
    /usr/bin/python3 scripts/make_generator_fixture.py [out.bin]
Not needed by the build or the tests (the fixture is committed).

File format: scripts/hvfx.py (b"HVFX", uint32 version 1, uint32 count, then
per tensor: uint32 name length, name (UTF-8), uint32 ndim, int64 shape[ndim],
float32 data (row-major). Names: every state_dict entry, then "in.x",
"in.mask", "in.cam", "in.ratio", "out.coarse_seg", "out.x_stage1", "out.p1",
"out.fine_seg", "out.x_stage2", "out.p2".
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hvfx  # noqa: E402


class Block(nn.Module):
    """gen_conv: spectral-normalised Conv2d(bias), zero padding, activation."""

    def __init__(self, cin, cout, k, s=1, p=0, d=1, act="elu"):
        super().__init__()
        self.conv = nn.utils.spectral_norm(nn.Conv2d(cin, cout, k, s, padding=p, dilation=d))
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if self.act == "elu":
            return F.elu(x)
        if self.act == "relu":
            return F.relu(x)
        if self.act == "sigmoid":
            return torch.sigmoid(x)
        return x


def context_attention(f, b, mask, ksize=3, rate=2, fuse_k=3, scale=10.0):
    """DeepFill v1 contextual attention (spec 5.3), per-item masks."""
    n, c, h, w = b.shape
    kr = 2 * rate
    pr = rate // 2
    # raw 2r x 2r patches of b, stride r, "same" padding -> (n, L, c, kr, kr)
    raw = F.unfold(F.pad(b, (pr, rate - pr, pr, rate - pr)), kr, stride=rate)
    L = raw.shape[-1]
    raw = raw.view(n, c, kr, kr, L).permute(0, 4, 1, 2, 3)
    fs = F.interpolate(f, scale_factor=1.0 / rate, mode="nearest")
    bs = F.interpolate(b, scale_factor=1.0 / rate, mode="nearest")
    hs, ws = fs.shape[2], fs.shape[3]
    half = ksize // 2
    wpat = F.unfold(F.pad(bs, (half, half, half, half)), ksize).view(n, c, ksize, ksize, L)
    wpat = wpat.permute(0, 4, 1, 2, 3)
    q = mask.shape[2] // hs
    ms = mask[:, :, ::q, ::q]
    mpat = F.unfold(F.pad(ms, (half, half, half, half)), ksize)  # (n, k*k, L)
    mm = (mpat.mean(dim=1) == 0).float()  # (n, L)
    eye = torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k)
    fp = fuse_k // 2
    out = []
    for i in range(n):
        wi = wpat[i]
        norm = torch.clamp(torch.sqrt((wi ** 2).sum(dim=(1, 2, 3), keepdim=True)), min=1e-4)
        yi = F.conv2d(F.pad(fs[i:i + 1], (half, half, half, half)), wi / norm)  # (1, L, hs, ws)
        if fuse_k:
            yi = yi.view(1, 1, L, hs * ws)
            yi = F.conv2d(F.pad(yi, (fp, fp, fp, fp)), eye)
            yi = yi.view(1, hs, ws, hs, ws).permute(0, 2, 1, 4, 3).reshape(1, 1, L, hs * ws)
            yi = F.conv2d(F.pad(yi, (fp, fp, fp, fp)), eye)
            yi = yi.view(1, ws, hs, ws, hs).permute(0, 2, 1, 4, 3)
        yi = yi.reshape(1, L, hs, ws)
        mi = mm[i].view(1, L, 1, 1)
        yi = F.softmax(yi * mi * scale, dim=1) * mi
        out.append(F.conv_transpose2d(yi, raw[i], stride=rate, padding=pr) / (rate * rate))
    return torch.cat(out, 0)


class Coarse(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.conv1 = Block(3, c, 5, 1, 2)
        self.conv2_downsample = Block(c, 2 * c, 3, 2, 1)
        self.conv3 = Block(2 * c, 2 * c, 3, 1, 1)
        self.conv4_downsample = Block(2 * c, 4 * c, 3, 2, 1)
        self.conv5 = Block(4 * c, 4 * c, 3, 1, 1)
        self.conv6 = Block(4 * c, 4 * c, 3, 1, 1)
        self.conv7_atrous = Block(4 * c, 4 * c, 3, 1, 2, 2)
        self.conv8_atrous = Block(4 * c, 4 * c, 3, 1, 4, 4)
        self.conv9_atrous = Block(4 * c, 4 * c, 3, 1, 8, 8)
        self.conv10_atrous = Block(4 * c, 4 * c, 3, 1, 16, 16)
        self.conv11 = Block(4 * c, 4 * c, 3, 1, 1)
        self.conv12 = Block(4 * c, 4 * c, 3, 1, 1)
        self.conv20 = Block(4 * c + 1, 4 * c, 3, 1, 1)
        self.conv13 = Block(4 * c, 2 * c, 3, 1, 1)
        self.conv14 = Block(2 * c, 2 * c, 3, 1, 1)
        self.conv19 = Block(2 * c + 1, 2 * c, 3, 1, 1)
        self.conv15 = Block(2 * c, c, 3, 1, 1)
        self.conv16 = Block(c, h, 3, 1, 1)
        self.conv17 = Block(h, 1, 3, 1, 1, act="none")
        self.conv18 = Block(h, 1, 3, 1, 1, act="sigmoid")
        self.fc_height = nn.Linear(4 * c, 1)

    def forward(self, x, mask, cam_inv, ratio):
        x = self.conv1(torch.cat([x, ratio, mask], 1))
        for m in (self.conv2_downsample, self.conv3, self.conv4_downsample, self.conv5, self.conv6,
                  self.conv7_atrous, self.conv8_atrous, self.conv9_atrous, self.conv10_atrous):
            x = m(x)
        p1 = torch.sigmoid(self.fc_height(x.mean(dim=(2, 3))))
        x = self.conv12(self.conv11(x))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv20(torch.cat([x, F.interpolate(cam_inv, scale_factor=0.5, mode="nearest")], 1))
        x = self.conv14(self.conv13(x))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv19(torch.cat([x, cam_inv], 1))
        x = self.conv16(self.conv15(x))
        return self.conv18(x), torch.clamp(self.conv17(x), -1, 1), p1


class Fine(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.conv1 = Block(4, c, 5, 1, 2)
        self.conv2_downsample = Block(c, c, 3, 2, 1)
        self.conv3 = Block(c, 2 * c, 3, 1, 1)
        self.conv4_downsample = Block(2 * c, 2 * c, 3, 2, 1)
        self.conv5 = Block(2 * c, 4 * c, 3, 1, 1)
        self.conv6 = Block(4 * c, 4 * c, 3, 1, 1)
        self.conv7_atrous = Block(4 * c, 4 * c, 3, 1, 2, 2)
        self.conv8_atrous = Block(4 * c, 4 * c, 3, 1, 4, 4)
        self.conv9_atrous = Block(4 * c, 4 * c, 3, 1, 8, 8)
        self.conv10_atrous = Block(4 * c, 4 * c, 3, 1, 16, 16)
        self.pmconv1 = Block(4, c, 5, 1, 2)
        self.pmconv2_downsample = Block(c, c, 3, 2, 1)
        self.pmconv3 = Block(c, 2 * c, 3, 1, 1)
        self.pmconv4_downsample = Block(2 * c, 4 * c, 3, 2, 1)
        self.pmconv5 = Block(4 * c, 4 * c, 3, 1, 1)
        self.pmconv6 = Block(4 * c, 4 * c, 3, 1, 1, act="relu")
        self.pmconv9 = Block(4 * c, 4 * c, 3, 1, 1)
        self.pmconv10 = Block(4 * c, 4 * c, 3, 1, 1)
        self.allconv11 = Block(8 * c, 4 * c, 3, 1, 1)
        self.allconv19 = Block(4 * c, 4 * c, 3, 1, 1)
        self.allconv12 = Block(4 * c, 4 * c, 3, 1, 1)
        self.allconv13 = Block(4 * c, 2 * c, 3, 1, 1)
        self.allconv14 = Block(2 * c, 2 * c, 3, 1, 1)
        self.allconv15 = Block(2 * c, c, 3, 1, 1)
        self.allconv16 = Block(c, h, 3, 1, 1)
        self.allconv17 = Block(h + 1, 1, 3, 1, 1, act="none")
        self.allconv18 = Block(h + 1, 1, 3, 1, 1, act="sigmoid")
        self.fc_height = nn.Linear(4 * c, 1)

    def forward(self, xin, x_stage1, mask, coarse_seg, ratio):
        xnow = torch.cat([xin, coarse_seg, mask, ratio], 1)
        x = xnow
        for m in (self.conv1, self.conv2_downsample, self.conv3, self.conv4_downsample, self.conv5,
                  self.conv6, self.conv7_atrous, self.conv8_atrous, self.conv9_atrous,
                  self.conv10_atrous):
            x = m(x)
        hallu = x
        x = xnow
        for m in (self.pmconv1, self.pmconv2_downsample, self.pmconv3, self.pmconv4_downsample,
                  self.pmconv5, self.pmconv6):
            x = m(x)
        x = context_attention(x, x, mask)
        x = self.pmconv10(self.pmconv9(x))
        x = self.allconv11(torch.cat([hallu, x], 1))
        p2 = torch.sigmoid(self.fc_height(x.mean(dim=(2, 3))))
        x = self.allconv19(self.allconv12(x))
        x = self.allconv14(self.allconv13(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = self.allconv16(self.allconv15(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = torch.cat([x, x_stage1], 1)
        return self.allconv18(x), torch.clamp(self.allconv17(x), -1, 1), p2


class Generator(nn.Module):
    def __init__(self, cnum):
        super().__init__()
        self.coarse_generator = Coarse(cnum)
        self.fine_generator = Fine(cnum)

    def forward(self, x, mask, cam, ratio):
        cam_inv = 1.0 - cam
        cseg, xs1, p1 = self.coarse_generator(x, mask, cam_inv, ratio)
        fseg, xs2, p2 = self.fine_generator(x, xs1, mask, cseg, ratio)
        return cseg, xs1, p1, fseg, xs2, p2


def build(cnum, seed=2025):
    torch.manual_seed(seed)
    g = Generator(cnum)
    # a few training-mode passes move the spectral-norm vectors off their
    # random start, as in a trained checkpoint
    with torch.no_grad():
        g.train()
        for _ in range(3):
            g(*make_inputs(2, 64, 64, seed + 1))
    g.eval()
    return g


def make_inputs(n, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, h, w, generator=gen) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, h // 2 - h // 8:h // 2 + h // 8, :] = 1.0  # the same band for every item
    x = x * (1 - mask) - mask
    cam = torch.rand(n, 1, h, w, generator=gen)
    ratio = torch.ones(n, 1, h, w) * torch.tensor([0.1, 0.6][:n]).view(n, 1, 1, 1)
    return x, mask, cam, ratio


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model/fixtures/generator_cnum4.bin"
    torch.set_num_threads(2)
    g = build(4)
    inputs = make_inputs(2, 64, 64, 7)
    with torch.no_grad():
        outs = g(*inputs)
    tensors = list(g.state_dict().items())
    tensors += list(zip(["in.x", "in.mask", "in.cam", "in.ratio"], inputs))
    tensors += list(zip(["out.coarse_seg", "out.x_stage1", "out.p1", "out.fine_seg",
                         "out.x_stage2", "out.p2"], outs))
    hvfx.write(out, tensors)
    n_train = sum(p.numel() for p in g.parameters())
    print("wrote %s: %d tensors, %d trainable parameters (torch %s)"
          % (out, len(tensors), n_train, torch.__version__))


if __name__ == "__main__":
    main()
