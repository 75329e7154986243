#!/usr/bin/python3
"""Make tests/model/fixtures/cls_w4.bin: PyTorch's values of the fracture
classifier (spec 7: MONAI SEResNet50, spatial_dims 2, in_channels 1,
num_classes 2) at width 4 on 64 x 64 inputs, for
tests/model/test_model_classifier.c.

MONAI is not installed here, so the network is written below in plain torch
with MONAI's module names (the state_dict keys are MONAI's:
"layer1.0.conv1.conv.weight", "layer1.0.conv1.adn.N.running_mean",
"layer1.0.se_layer.fc.0.weight", "layer1.0.project.conv.weight", ...) and
MONAI's structure: SENet with SEResNetBottleneck, layers 3-4-6-3, groups 1,
reduction 16, no dropout, inplanes = width, 7x7/2 stem, MaxPool(3, 2,
ceil_mode=True), stride on the bottleneck's first 1x1 convolution,
ChannelSELayer (avg pool, Linear(C, C//16) ReLU Linear(C//16, C) Sigmoid,
x * y), + shortcut, ReLU; adaptive average pool, last_linear. The SE layer
keeps max(1, C // 16) channels (MONAI refuses C < 16; at width 4 layer1's
16 channels give 1, so the fixture is inside MONAI's domain).

Stored (HVFX version 1, scripts/hvfx.py):
  "w.<name>"        every parameter and buffer (num_batches_tracked left
                    out): seeded random weights (N(0, 1) * 1.2 / sqrt(fan_in)
                    convolutions, BN weight U(0.6, 1.4), bias/running_mean
                    N(0, 0.1), running_var U(0.5, 1.5))
  "x"               the input, 2 x 1 x 64 x 64 in [0, 1]
  "eval.logits"     logits in eval mode (running statistics)
  "eval.target"     layer4.2.conv1.conv's output (before its BN), 2 x 32 x 2 x 2
  "eval.grad"       d (sum over the batch of the class-1 logit) / d target
  "eval.se_out"     layer1.0.se_layer's output (x * y, before + shortcut)
  "eval.block_out"  layer1.0's output (after the final ReLU)
  "eval.pool_out"   layer0's output (after the ceil-mode pool), 2 x 4 x 16 x 16
  "cam.<n>"         Grad-CAM++ map of item n (2 x 2, spec 7, computed from
                    autograd's gradient with torch ops, in float64)
  "cam64.<n>"       that map resized to 64 x 64 with
                    F.interpolate(mode="bilinear", align_corners=False)
  "train.logits"    logits of a training-mode forward (batch statistics)
  "train.loss"      BCE-with-logits (mean) of those logits against one-hot
                    targets [[1, 0], [0, 1]] (the engine's bce_logits)
  "train.grad.<name>"  d loss / d parameter for a few parameters
  "train.after.<name>" a running statistic after that one training forward

Also prints the trainable parameter count of the width-64 network (MONAI's
SEResNet50 with in_channels 1 and num_classes 2); tests/model/
test_model_classifier.c hard-codes it with this script named as the source.

Needs Debian's python3-torch (1.13) and numpy, run from the repository root:
    /usr/bin/python3 scripts/make_cls_fixture.py [out.bin]
Not needed by the build or the tests (the fixture is committed).
"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hvfx  # noqa: E402


class Convolution(nn.Sequential):
    """MONAI's Convolution (conv, then ADN with the norm as "N" and the
    activation as "A")."""

    def __init__(self, cin, cout, k, stride, act):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False))
        adn = nn.Sequential()
        adn.add_module("N", nn.BatchNorm2d(cout))
        if act:
            adn.add_module("A", nn.ReLU())
        self.add_module("adn", adn)


class ChannelSELayer(nn.Module):
    def __init__(self, c, r=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        ch = max(1, c // r)
        self.fc = nn.Sequential(nn.Linear(c, ch, bias=True), nn.ReLU(),
                                nn.Linear(ch, c, bias=True), nn.Sigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y


class SEResNetBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, project=None):
        super().__init__()
        self.conv1 = Convolution(inplanes, planes, 1, stride, True)
        self.conv2 = Convolution(planes, planes, 3, 1, True)
        self.conv3 = Convolution(planes, planes * 4, 1, 1, False)
        self.se_layer = ChannelSELayer(planes * 4, 16)
        self.project = project
        self.act = nn.ReLU()

    def forward(self, x):
        residual = x if self.project is None else self.project(x)
        x = self.conv1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.se_layer(x)
        x = x + residual
        return self.act(x)


class SEResNet50(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.inplanes = width
        self.layer0 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, width, 7, 2, 3, bias=False)),
            ("bn1", nn.BatchNorm2d(width)),
            ("relu1", nn.ReLU()),
            ("pool", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ]))
        self.layer1 = self._make_layer(width, 3, 1)
        self.layer2 = self._make_layer(2 * width, 4, 2)
        self.layer3 = self._make_layer(4 * width, 6, 2)
        self.layer4 = self._make_layer(8 * width, 3, 2)
        self.adaptive_avg_pool = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(8 * width * 4, 2)
        for m in self.modules():  # MONAI's SENet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride):
        project = None
        if stride != 1 or self.inplanes != planes * 4:
            project = Convolution(self.inplanes, planes * 4, 1, stride, False)
        layers = [SEResNetBottleneck(self.inplanes, planes, stride, project)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(SEResNetBottleneck(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.layer0(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.adaptive_avg_pool(x)
        x = torch.flatten(x, 1)
        return self.last_linear(x)


def gradcampp(A, g, S):
    """Spec 7 on one item: A, g (K, h, w) float64, S the class-1 logit."""
    sum_a = A.sum(dim=(1, 2), keepdim=True)
    g2 = g ** 2
    g3 = g ** 3
    den = 2 * g2 + sum_a * g3 + 1e-7
    alpha = torch.where(den != 0, g2 / torch.where(den != 0, den, torch.ones_like(den)),
                        torch.zeros_like(den))
    w = (alpha * F.relu(torch.exp(S) * g)).sum(dim=(1, 2))
    cam = F.relu((w[:, None, None] * A).sum(0))
    mx = cam.max()
    if mx == 0:
        return torch.zeros_like(cam)
    return (cam - cam.min()) / mx


TRAIN_GRADS = ["layer0.conv1.weight", "layer0.bn1.weight", "layer1.0.se_layer.fc.0.weight",
               "layer1.0.project.conv.weight", "layer3.2.conv2.conv.weight",
               "layer4.2.conv3.adn.N.bias", "last_linear.weight"]
TRAIN_AFTER = ["layer0.bn1.running_mean", "layer2.1.conv2.adn.N.running_var"]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model/fixtures/cls_w4.bin"
    torch.manual_seed(1313)
    full = SEResNet50(64)
    n_full = sum(p.numel() for p in full.parameters() if p.requires_grad)
    print("width 64 trainable parameters:", n_full)

    width = 4
    net = SEResNet50(width)
    gen = torch.Generator().manual_seed(20261204)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.ndim == 1:  # BN weight
                t.copy_(torch.rand(t.shape, generator=gen) * 0.8 + 0.6)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * 1.2 / fan_in ** 0.5)
    tensors = []
    for name, t in net.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            tensors.append(("w." + name, t.numpy().copy()))

    # input: smooth structure + noise, in [0, 1] (a slice's u8 / 255)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(xx / 5.0) * torch.cos(yy / 7.0)
    x = torch.stack([base, 1.0 - base]).unsqueeze(1)
    x = (x + 0.15 * torch.rand(x.shape, generator=gen)).clamp(0, 1)
    x = torch.floor(x * 255) / 255
    tensors.append(("x", x.numpy()))

    # eval mode: logits, target, its gradient, SE/block/pool outputs
    net.eval()
    saved = {}

    def keep_target(m, i, o):
        saved["target"] = o
        o.retain_grad()

    hooks = [
        net.layer4[2].conv1.conv.register_forward_hook(keep_target),
        net.layer1[0].se_layer.register_forward_hook(lambda m, i, o: saved.update(se=o)),
        net.layer1[0].register_forward_hook(lambda m, i, o: saved.update(block=o)),
        net.layer0.register_forward_hook(lambda m, i, o: saved.update(pool=o)),
    ]
    logits = net(x)
    # items are independent in eval mode: d(sum_n S_n)/dA_n = dS_n/dA_n
    logits[:, 1].sum().backward()
    for h in hooks:
        h.remove()
    A = saved["target"]
    tensors += [("eval.logits", logits.detach().numpy()), ("eval.target", A.detach().numpy()),
                ("eval.grad", A.grad.numpy()), ("eval.se_out", saved["se"].detach().numpy()),
                ("eval.block_out", saved["block"].detach().numpy()),
                ("eval.pool_out", saved["pool"].detach().numpy())]
    print("eval logits", logits.detach().numpy().tolist())
    for n in range(x.shape[0]):
        cam = gradcampp(A[n].detach().double(), A.grad[n].double(),
                        logits[n, 1].detach().double())
        up = F.interpolate(cam[None, None], size=(64, 64), mode="bilinear",
                           align_corners=False)[0, 0]
        print("cam", n, cam.numpy().tolist())
        tensors += [("cam.%d" % n, cam.numpy()), ("cam64.%d" % n, up.numpy())]

    # training mode: one forward (batch statistics) + backward of the CE loss
    net.train()
    net.zero_grad()
    tl = net(x)
    loss = F.binary_cross_entropy_with_logits(tl, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    loss.backward()
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    tensors += [("train.logits", tl.detach().numpy()), ("train.loss", loss.detach().reshape(1))]
    for name in TRAIN_GRADS:
        tensors.append(("train.grad." + name, params[name].grad.numpy()))
    for name in TRAIN_AFTER:
        tensors.append(("train.after." + name, buffers[name].numpy()))
    hvfx.write(out, tensors)
    print("wrote", out, len(tensors), "tensors")


if __name__ == "__main__":
    main()
