#!/usr/bin/python3
"""Make the PyTorch fixture of tests/nn/test_nn_ops.c: one expected forward
output and every expected gradient per op case, computed by PyTorch (autograd)
on small seeded tensors.

Each case of the test's table is written here again in PyTorch, from the
op's documented meaning (include/hv/nn.h, docs/nn.md, the reference spec),
not from our kernels: torch.nn.functional where PyTorch has the op (conv2d,
conv_transpose2d, batch_norm, max_pool2d, softmax, the losses, interpolate,
pad, ...), torch.nn.utils.spectral_norm's own power iteration, and for the
ops PyTorch lacks (Sobel edge magnitude of spec 5.7, Dice of spec 6, DeepFill
v1 contextual attention of spec 5.3 with one mask per batch item) a few lines
of tensor code. Leaves are created in the order the C case builds them
(inputs and parameters alike), so leaf i here is leaf i there.

The loss is sum(out * R) with a random R of the output's shape, so that the
gradients are those of a generic upstream gradient R.

Needs Debian's python3-torch (1.13) and numpy, run with /usr/bin/python3:
    /usr/bin/python3 scripts/make_nn_ops_fixture.py [out.bin]
Not needed by the build or the tests (the fixture is committed).

Reproducible bytes: PyTorch's convolutions (oneDNN) and matrix products
(OpenBLAS) pick their kernels by CPU, and kernels of other vector widths
round differently (relative differences up to 1e-6, far inside the test's
2e-5, but other bytes). The committed fixture was made with the AVX2 kernels
of both, so this script asks for them (DNNL_MAX_CPU_ISA=AVX2,
OPENBLAS_CORETYPE=Haswell, set here before torch loads unless already set):
on any CPU with AVX2, an AVX-512 one included, a rerun gives the committed
bytes. Cases are only ever appended to CASES (case k draws from seed
1000 + k), so adding a case leaves every earlier case's values unchanged.

File format: scripts/hvfx.py (b"HVFX", uint32 version 1,
uint32 count, then per tensor: uint32 name length, name, uint32 ndim, int64
shape[ndim], float32 data). Names, per case <c>:
    <c>.l<i>   value of leaf i (input or parameter, build order)
    <c>.R      the upstream gradient R
    <c>.out    the op's output
    <c>.g<i>   d sum(out * R) / d leaf i, for leaves that take a gradient
    <c>.b<i>   a buffer leaf (BN running statistics, spectral-norm u and v)
               after one training-mode forward, where the op updates it
"""
import os
import sys

# before torch loads: OpenBLAS reads its core type when it is loaded, oneDNN
# its ISA limit at its first primitive (see "Reproducible bytes" above)
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.spectral_norm import SpectralNorm  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hvfx  # noqa: E402

# leaf kinds
NORMAL, SAFE, CLAMPSAFE, POS01, SMALL, VAR, UNIT, MASK, LABELS = range(9)


class Case:
    def __init__(self, gen):
        self.gen = gen
        self.leaves = []  # (tensor, value at creation, requires_grad, is_buffer)

    def leaf(self, shape, kind=NORMAL, rg=True, buffer=False, mask_rows=None):
        g = self.gen
        if kind == NORMAL:
            v = torch.randn(shape, generator=g)
        elif kind == SAFE:  # away from 0 (ReLU and |x| kinks)
            v = torch.randn(shape, generator=g)
            v = torch.sign(v) * (0.1 + v.abs())
        elif kind == CLAMPSAFE:  # about a third beyond +-1, none within 0.05 of it
            v = 1.5 * torch.randn(shape, generator=g)
            near = (v.abs() - 1).abs() < 0.05
            v = torch.where(near, v + 0.1 * torch.sign(v), v)
        elif kind == POS01:
            v = 0.05 + 0.9 * torch.rand(shape, generator=g)
        elif kind == SMALL:  # Sobel: a mix of clipped (> 1) and unclipped magnitudes
            v = 0.1 * torch.randn(shape, generator=g)
        elif kind == VAR:
            v = 0.5 + torch.rand(shape, generator=g)
        elif kind == UNIT:
            v = torch.randn(shape, generator=g)
            v = v / v.norm()
        elif kind == MASK:  # one horizontal band per item, at another height per item
            v = torch.zeros(shape)
            for b, (y0, y1) in enumerate(mask_rows):
                v[b, :, y0:y1, :] = 1.0
        elif kind == LABELS:  # class values i % 4 (draws nothing)
            v = (torch.arange(shape[0]) % 4).float()
        v = v.float().contiguous()
        if rg:
            v.requires_grad_(True)
        self.leaves.append((v, v.detach().clone(), rg, buffer))
        return v


def spectral_norm_weight(w, u, v, train):
    """W / sigma through torch.nn.utils.spectral_norm itself (dim 0, eps
    1e-12, one power iteration per training forward, u and v constants for
    autograd). u and v are updated in place when train."""
    cout = w.shape[0]
    conv = nn.utils.spectral_norm(nn.Conv2d(w.shape[1], cout, tuple(w.shape[2:]), bias=False))
    hook = [h for h in conv._forward_pre_hooks.values() if isinstance(h, SpectralNorm)][0]
    del conv.weight_orig
    conv.weight_orig = w  # the leaf itself, so that autograd reaches it
    with torch.no_grad():
        conv.weight_u.copy_(u)
        conv.weight_v.copy_(v)
    out = hook.compute_weight(conv, do_power_iteration=train)
    with torch.no_grad():
        u.copy_(conv.weight_u)
        v.copy_(conv.weight_v)
    return out


def sobel(x):
    """spec 5.7: replicate padding 1, Gx, Gy, magnitude clipped to <= 1."""
    gx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gy = torch.tensor([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]).view(1, 1, 3, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    mag = torch.sqrt(F.conv2d(xp, gx) ** 2 + F.conv2d(xp, gy) ** 2)
    return torch.clamp(mag, max=1.0)


def dice(p, t):
    """spec 6: per item (2 sum pt + 1e-5) / (sum p + sum t + 1e-5), mean over items."""
    n = p.shape[0]
    p, t = p.reshape(n, -1), t.reshape(n, -1)
    return ((2 * (p * t).sum(1) + 1e-5) / (p.sum(1) + t.sum(1) + 1e-5)).mean().view(1)


def context_attention(f, b, mask, ksize, rate, fuse_k, scale):
    """DeepFill v1 contextual attention as spec 5.3 describes it, except that
    every batch item takes the patch validity from its own mask."""
    n, c, h, w = f.shape
    hs, ws = h // rate, w // rate
    L = hs * ws
    kr = 2 * rate
    # raw 2r x 2r patches of b, stride r, "same" zero padding: (n, L, c, kr, kr)
    padr = (kr - rate) // 2
    raw = F.unfold(b, kr, padding=padr, stride=rate)
    raw = raw.view(n, c, kr, kr, L).permute(0, 4, 1, 2, 3)
    # nearest downsampling by r
    fs = f[:, :, ::rate, ::rate]
    bs = b[:, :, ::rate, ::rate]
    # 3x3 matching patches of bs, stride 1, same padding: (n, L, c, k, k)
    pk = ksize // 2
    wp = F.unfold(bs, ksize, padding=pk).view(n, c, ksize, ksize, L).permute(0, 4, 1, 2, 3)
    # patch validity from each item's own mask, downsampled to hs x ws
    q = mask.shape[2] // hs
    ms = mask[:, :, ::q, ::q]
    mwin = F.unfold(ms, ksize, padding=pk)  # (n, k*k, L)
    mm = (mwin.mean(1) == 0).float()  # (n, L)
    outs = []
    for i in range(n):
        wi = wp[i]
        norm = wi.pow(2).sum((1, 2, 3), keepdim=True).sqrt().clamp(min=1e-4)
        s = F.conv2d(fs[i:i + 1], wi / norm, padding=pk)  # (1, L, hs, ws): s[l, p]
        if fuse_k:
            # scores as an (L x P) image; fuse along the diagonal, then the
            # same in the transposed (column-major) ordering of both indices
            eye = torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k)
            fp = fuse_k // 2
            s = F.conv2d(s.reshape(1, 1, L, hs * ws), eye, padding=fp)
            s = s.view(hs, ws, hs, ws).permute(1, 0, 3, 2).reshape(1, 1, L, hs * ws)
            s = F.conv2d(s, eye, padding=fp)
            s = s.view(ws, hs, ws, hs).permute(1, 0, 3, 2).reshape(1, L, hs, ws)
        mi = mm[i].view(1, L, 1, 1)
        att = F.softmax(s * mi * scale, dim=1) * mi
        outs.append(F.conv_transpose2d(att, raw[i], stride=rate, padding=padr) / (rate * rate))
    return torch.cat(outs, 0)


# ------------------------------------------------------------------ the cases
# Each builder creates the leaves in the C builder's order and returns the
# output. `train` is the C case's plan mode (HV_NN_PLAN_TRAIN vs _GRAD).

def c_conv(c, train):
    x = c.leaf((2, 3, 7, 6))
    return F.conv2d(x, c.leaf((4, 3, 3, 3)), c.leaf((4,)), stride=1, padding=1, dilation=1)


def c_conv_s2d2(c, train):
    x = c.leaf((2, 3, 9, 8))
    return F.conv2d(x, c.leaf((5, 3, 3, 3)), c.leaf((5,)), stride=2, padding=2, dilation=2)


def c_conv_k5(c, train):
    x = c.leaf((1, 2, 8, 8))
    return F.conv2d(x, c.leaf((3, 2, 5, 5)), None, stride=1, padding=2, dilation=1)


def c_conv_k4s2(c, train):
    x = c.leaf((2, 2, 10, 10))
    return F.conv2d(x, c.leaf((3, 2, 4, 4)), c.leaf((3,)), stride=2, padding=1)


def c_deconv(c, train):
    x = c.leaf((2, 3, 4, 5))
    return F.conv_transpose2d(x, c.leaf((3, 2, 4, 4)), c.leaf((2,)), stride=2, padding=1,
                              output_padding=0)


def c_sn(c, train):
    w = c.leaf((4, 3, 3, 3))
    u = c.leaf((4,), UNIT, rg=False, buffer=True)
    v = c.leaf((27,), UNIT, rg=False, buffer=True)
    return spectral_norm_weight(w, u, v, train)


def c_genconv(c, train):
    x = c.leaf((2, 3, 6, 6))
    w = c.leaf((4, 3, 3, 3))
    u = c.leaf((4,), UNIT, rg=False, buffer=True)
    v = c.leaf((27,), UNIT, rg=False, buffer=True)
    ws = spectral_norm_weight(w, u, v, train)
    return F.elu(F.conv2d(x, ws, c.leaf((4,)), stride=1, padding=2, dilation=2), 1.0)


def c_elu(c, train): return F.elu(c.leaf((2, 3, 5, 4), SAFE), alpha=1.0)
def c_relu(c, train): return F.relu(c.leaf((2, 3, 5, 4), SAFE))
def c_lrelu(c, train): return F.leaky_relu(c.leaf((2, 3, 5, 4), SAFE), 0.2)
def c_sigmoid(c, train): return torch.sigmoid(c.leaf((2, 7, 5)))
def c_clamp(c, train): return torch.clamp(c.leaf((2, 3, 5, 4), CLAMPSAFE), -1.0, 1.0)
def c_scale(c, train): return -1.5 * c.leaf((2, 2, 3, 2, 2)) + 0.25
def c_up(c, train): return F.interpolate(c.leaf((2, 3, 3, 4)), scale_factor=2, mode="nearest")
def c_down(c, train): return F.interpolate(c.leaf((2, 3, 8, 4)), scale_factor=0.25, mode="nearest")


def c_concat(c, train):
    return torch.cat([c.leaf((2, 1, 3, 4)), c.leaf((2, 3, 3, 4)), c.leaf((2, 2, 3, 4))], 1)


def c_pad(c, train):  # top 1, bottom 2, left 3, right 0
    return F.pad(c.leaf((2, 2, 3, 4)), (3, 0, 1, 2))


def c_slice(c, train):
    return c.leaf((2, 5, 6, 4))[:, 1:4][:, :, 2:5]


def c_bn(c, train):
    x = c.leaf((3, 4, 5, 3))
    gamma, beta = c.leaf((4,)), c.leaf((4,))
    rm = c.leaf((4,), rg=False, buffer=True)
    rv = c.leaf((4,), VAR, rg=False, buffer=True)
    return F.batch_norm(x, rm, rv, gamma, beta, training=train, momentum=0.1, eps=1e-5)


def c_gap(c, train): return F.adaptive_avg_pool2d(c.leaf((2, 3, 5, 4)), 1)


def c_linear(c, train):
    x = c.leaf((3, 4, 2, 1))
    return F.linear(x.flatten(1), c.leaf((5, 8)), c.leaf((5,)))


def c_softmax(c, train): return F.softmax(c.leaf((2, 5, 3, 2)), dim=1)
def c_add(c, train): return c.leaf((2, 3, 4)) + c.leaf((2, 3, 4))
def c_sub(c, train): return c.leaf((2, 3, 4)) - c.leaf((2, 3, 4))
def c_mul(c, train): return c.leaf((2, 3, 4)) * c.leaf((2, 3, 4))
def c_sum(c, train): return c.leaf((3, 7)).sum().view(1)
def c_mean(c, train): return c.leaf((3, 7)).mean().view(1)


def c_bce(c, train):
    x, t = c.leaf((2, 1, 4, 4)), c.leaf((2, 1, 4, 4), POS01)
    return F.binary_cross_entropy_with_logits(x, t).view(1)


def c_l1(c, train):
    x, t = c.leaf((2, 1, 4, 4), SAFE), c.leaf((2, 1, 4, 4))
    return F.l1_loss(x, t).view(1)


def c_mse(c, train):
    x, t = c.leaf((2, 1, 4, 4)), c.leaf((2, 1, 4, 4))
    return F.mse_loss(x, t).view(1)


def c_dice(c, train):
    return dice(c.leaf((3, 1, 4, 4), POS01), c.leaf((3, 1, 4, 4), POS01))


def c_sobel(c, train): return sobel(c.leaf((2, 1, 6, 5), SMALL))
def c_reshape(c, train): return c.leaf((2, 3, 2, 2)).reshape(6, 4)
def c_maxpool(c, train): return F.max_pool2d(c.leaf((2, 3, 7, 8)), 3, 2, 1)


def c_chmul(c, train):
    return c.leaf((2, 3, 4, 5)) * c.leaf((2, 3, 1, 1))


def c_ca_same(c, train):
    f = c.leaf((2, 3, 8, 8))
    # 16x16 mask, downsampled by 4 to the 4x4 grid: item 0 covers grid row 1,
    # item 1 grid row 3, so the valid patches differ (rows {3} vs {0, 1})
    m = c.leaf((2, 1, 16, 16), MASK, rg=False, mask_rows=[(4, 8), (12, 16)])
    return context_attention(f, f, m, 3, 2, 3, 10.0)


def c_ca_fb(c, train):
    f, b = c.leaf((2, 2, 8, 12)), c.leaf((2, 2, 8, 12))
    m = c.leaf((2, 1, 8, 12), MASK, rg=False, mask_rows=[(0, 2), (4, 6)])
    return context_attention(f, b, m, 3, 2, 3, 2.0)


def c_ca_nofuse(c, train):
    f, b = c.leaf((2, 2, 8, 8)), c.leaf((2, 2, 8, 8))
    m = c.leaf((2, 1, 8, 8), MASK, rg=False, mask_rows=[(2, 4), (6, 8)])
    return context_attention(f, b, m, 3, 2, 0, 5.0)


# 3-D cases (NCDHW): torch.nn.functional's conv3d, max_pool3d (padding is
# -inf there, so it never wins), batch_norm and adaptive_avg_pool3d on 5-D.
# Per-axis geometry is given in the order D, H, W on both sides.

def c_conv3d(c, train):
    x = c.leaf((2, 3, 5, 4, 6))
    return F.conv3d(x, c.leaf((4, 3, 3, 3, 3)), c.leaf((4,)), stride=1, padding=1, dilation=1)


def c_conv3d_aniso(c, train):  # every axis its own geometry
    x = c.leaf((1, 2, 7, 6, 5))
    return F.conv3d(x, c.leaf((3, 2, 3, 2, 3)), c.leaf((3,)), stride=(2, 1, 2), padding=(1, 0, 2),
                    dilation=(1, 2, 1))


def c_conv3d_k1s2(c, train):  # a ResNet shortcut: 1x1x1, stride 2, no bias
    x = c.leaf((2, 3, 4, 5, 4))
    return F.conv3d(x, c.leaf((5, 3, 1, 1, 1)), None, stride=2, padding=0, dilation=1)


def c_bn5d(c, train):
    x = c.leaf((3, 4, 3, 2, 3))
    gamma, beta = c.leaf((4,)), c.leaf((4,))
    rm = c.leaf((4,), rg=False, buffer=True)
    rv = c.leaf((4,), VAR, rg=False, buffer=True)
    return F.batch_norm(x, rm, rv, gamma, beta, training=train, momentum=0.1, eps=1e-5)


def c_gap5d(c, train): return F.adaptive_avg_pool3d(c.leaf((2, 3, 3, 4, 2)), 1)


def c_chmul5d(c, train):
    return c.leaf((2, 3, 2, 3, 4)) * c.leaf((2, 3, 1, 1, 1))


def c_maxpool3d(c, train):  # the ResNet stem's 3/2 pad 1, in 3-D
    return F.max_pool3d(c.leaf((2, 2, 5, 6, 7)), 3, 2, 1)


def c_maxpool3d_aniso(c, train):
    return F.max_pool3d(c.leaf((1, 2, 3, 5, 6)), (1, 2, 3), (1, 2, 2), (0, 1, 1))


# AOT-GAN's ops (researchmm/AOT-GAN-for-Inpainting, src/model/aotgan.py):
# torch.tanh, ReflectionPad2d (F.pad mode "reflect", pads (left, right, top,
# bottom)), F.interpolate bilinear with align_corners=True as its UpConv, and
# its my_layer_norm written out as there (torch.std: Bessel-corrected, 1e-9
# added to the std).

def aot_layer_norm(feat):
    mean = feat.mean((2, 3), keepdim=True)
    std = feat.std((2, 3), keepdim=True) + 1e-9
    return 5 * (2 * (feat - mean) / std - 1)


def c_tanh(c, train): return torch.tanh(c.leaf((2, 3, 5, 4)))
def c_rpad(c, train): return F.pad(c.leaf((2, 2, 4, 5)), (4, 3, 1, 2), mode="reflect")
def c_rpad_d(c, train): return nn.ReflectionPad2d(4)(c.leaf((1, 3, 6, 7)))


def c_upbl(c, train):
    return F.interpolate(c.leaf((2, 3, 3, 4)), scale_factor=2, mode="bilinear", align_corners=True)


def c_upbl3(c, train):
    return F.interpolate(c.leaf((1, 2, 4, 3)), scale_factor=3, mode="bilinear", align_corners=True)


def c_aotnorm(c, train): return aot_layer_norm(c.leaf((2, 3, 4, 5)))


# the edges the CUDA kernels must get right: every pad at its largest (n - 1:
# each reflection reaches the far edge's first element), factor 4 on a
# non-square input, a norm over planes of one row
def c_rpad_max(c, train): return F.pad(c.leaf((1, 2, 3, 5)), (4, 4, 2, 2), mode="reflect")


def c_upbl4(c, train):
    return F.interpolate(c.leaf((1, 3, 2, 5)), scale_factor=4, mode="bilinear", align_corners=True)


def c_aotnorm_row(c, train): return aot_layer_norm(c.leaf((2, 3, 1, 7)))


def c_aotgate(c, train):  # reflect pad 1, 3x3 conv, norm, sigmoid: an AOT block's gate
    # (no bias: the norm removes each plane's mean, a bias's gradient is 0)
    x = c.leaf((2, 3, 5, 6))
    return torch.sigmoid(aot_layer_norm(F.conv2d(nn.ReflectionPad2d(1)(x), c.leaf((3, 3, 3, 3)))))


# Supervised contrastive learning (Khosla et al., NeurIPS 2020): F.normalize
# and the loss L_out with one view per item written out from the paper's
# formula, an item alone in its class adding 0 and counting in the mean (as
# HobbitLong/SupContrast's losses.py, base_temperature = temperature).

def supcon(z, labels, t):
    n = z.shape[0]
    s = z @ z.t() / t
    eye = torch.eye(n, dtype=torch.bool)
    lse = torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    pos = (labels.view(-1, 1) == labels.view(1, -1)) & ~eye
    npos = pos.sum(1).clamp(min=1)
    return -(((s - lse) * pos).sum(1) / npos).mean().view(1)


def c_l2n(c, train): return F.normalize(c.leaf((5, 6)), dim=1, eps=1e-12)


def c_supcon(c, train):
    z = c.leaf((7, 5))
    return supcon(z, c.leaf((7,), LABELS, rg=False), 0.5)


def c_supcon_norm(c, train):
    x = c.leaf((6, 4))
    return supcon(F.normalize(x, dim=1, eps=1e-12), c.leaf((6,), LABELS, rg=False), 0.07)


def c_ce(c, train):
    z = c.leaf((6, 4))
    lab = c.leaf((6,), LABELS, rg=False)
    w = c.leaf((4,), POS01, rg=False)
    return F.cross_entropy(z, lab.long(), weight=w).view(1)


def c_ce_nw(c, train):
    z = c.leaf((5, 4))
    return F.cross_entropy(z, c.leaf((5,), LABELS, rg=False).long()).view(1)


# name, builder, training mode (the C table's HV_NN_PLAN_TRAIN). Append new
# cases at the end: case k's values come from seed 1000 + k.
CASES = [
    ("conv2d", c_conv, True), ("conv2d_s2_d2", c_conv_s2d2, True),
    ("conv2d_k5_nobias", c_conv_k5, True), ("conv2d_k4_s2", c_conv_k4s2, True),
    ("deconv2d", c_deconv, True), ("spectral_norm_train", c_sn, True),
    ("spectral_norm_eval", c_sn, False), ("gen_conv_block", c_genconv, True),
    ("elu", c_elu, True), ("relu", c_relu, True), ("leaky_relu", c_lrelu, True),
    ("sigmoid", c_sigmoid, True), ("clamp", c_clamp, True), ("scale_5d", c_scale, True),
    ("upsample", c_up, True), ("downsample", c_down, True), ("concat", c_concat, True),
    ("pad", c_pad, True), ("slice", c_slice, True), ("batch_norm_train", c_bn, True),
    ("batch_norm_eval", c_bn, False), ("gap", c_gap, True), ("linear", c_linear, True),
    ("softmax", c_softmax, True), ("add", c_add, True), ("sub", c_sub, True),
    ("mul", c_mul, True), ("sum", c_sum, True), ("mean", c_mean, True),
    ("bce_logits", c_bce, True), ("l1", c_l1, True), ("mse", c_mse, True),
    ("dice", c_dice, True), ("sobel", c_sobel, True), ("reshape", c_reshape, True),
    ("maxpool", c_maxpool, True), ("channel_mul", c_chmul, True),
    ("ctx_attn_same", c_ca_same, True), ("ctx_attn_f_b", c_ca_fb, True),
    ("ctx_attn_nofuse", c_ca_nofuse, True),
    ("conv3d", c_conv3d, True), ("conv3d_aniso", c_conv3d_aniso, True),
    ("conv3d_k1_s2_nobias", c_conv3d_k1s2, True), ("batch_norm_5d_train", c_bn5d, True),
    ("batch_norm_5d_eval", c_bn5d, False), ("gap_5d", c_gap5d, True),
    ("channel_mul_5d", c_chmul5d, True), ("maxpool3d", c_maxpool3d, True),
    ("maxpool3d_aniso", c_maxpool3d_aniso, True),
    ("tanh", c_tanh, True), ("reflect_pad", c_rpad, True), ("reflect_pad_4", c_rpad_d, True),
    ("upsample_bilinear", c_upbl, True), ("upsample_bilinear_3", c_upbl3, True),
    ("aot_norm", c_aotnorm, True), ("aot_gate", c_aotgate, True),
    ("l2_normalize", c_l2n, True), ("supcon", c_supcon, True),
    ("supcon_normalized", c_supcon_norm, True),
    ("cross_entropy", c_ce, True), ("cross_entropy_noweight", c_ce_nw, True),
    ("reflect_pad_max", c_rpad_max, True), ("upsample_bilinear_4", c_upbl4, True),
    ("aot_norm_row", c_aotnorm_row, True),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/nn/fixtures/nn_ops.bin"
    torch.set_num_threads(1)
    tensors = []
    for k, (name, build, train) in enumerate(CASES):
        c = Case(torch.Generator().manual_seed(1000 + k))
        y = build(c, train)
        r = torch.randn(y.shape, generator=c.gen)
        (y * r).sum().backward()
        for i, (v, v0, rg, buf) in enumerate(c.leaves):
            tensors.append(("%s.l%d" % (name, i), v0))
            if rg:
                tensors.append(("%s.g%d" % (name, i), v.grad))
            if buf and train and not torch.equal(v0, v):
                tensors.append(("%s.b%d" % (name, i), v))
        tensors.append((name + ".R", r))
        tensors.append((name + ".out", y))
    hvfx.write(out, tensors)
    nfl = sum(t.numel() for _, t in tensors)
    print("wrote %s: %d cases, %d tensors, %d floats (torch %s)"
          % (out, len(CASES), len(tensors), nfl, torch.__version__))


if __name__ == "__main__":
    main()
