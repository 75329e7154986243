#!/usr/bin/python3
"""Make tests/model/fixtures/senet3d_w4.bin: PyTorch's values of the 3-D
SE-ResNet of the SupCon direct grader (src/model/senet3d.c, issue 15) at
width 4, blocks (2, 1, 1, 1), projection 8, on 4 x 1 x 16 x 16 x 32 crops,
for tests/model/test_model_senet3d.c.

The network is written here in plain torch from its description in
include/hv/model.h and docs/model.md, under the same module names (the
state_dict keys are our parameter names):
  layer0: conv1 Conv3d(1, w, 3, 1, 1, bias=False), bn1, ReLU,
          MaxPool3d(3, 2, 1)
  layer1..4: SE basic blocks, planes w, 2w, 4w, 8w, stride 2 on the first
          block of layers 2..4: conv1 (3x3x3/stride, BN) ReLU, conv2
          (3x3x3, BN), se_layer (adaptive_avg_pool3d, Linear(C, max(1,
          C // 16)), ReLU, Linear, Sigmoid, x * s; Hu et al.), + shortcut
          (project = 1x1x1/stride conv + BN on the first block of layers
          2..4), ReLU
  adaptive_avg_pool3d(1), flatten -> feat (N, 8w)
  head: Linear(8w, 8w), ReLU, Linear(8w, P), F.normalize(dim=1) -> proj
  last_linear: Linear(8w, 4) -> logits
The SupCon loss is Khosla et al.'s L_out written out from the paper (as in
scripts/make_nn_ops_fixture.py), the cross entropy F.cross_entropy with
class weights.

Stored (HVFX version 1, scripts/hvfx.py):
  "w.<name>"        every parameter and buffer: seeded random weights
                    (N(0, 1) * 1.2 / sqrt(fan_in), BN weight U(0.6, 1.4),
                    bias and running_mean N(0, 0.1), running_var U(0.5, 1.5))
  "x"               the input, 4 x 1 x 16 x 16 x 32, U(0, 1)
  "labels"          grades 0, 1, 0, 3 (item 3 alone in its class)
  "class_w"         cross-entropy class weights (1, 2, 0.5, 1.5)
  "eval.feat", "eval.proj", "eval.logits"    eval mode (running statistics)
  "train.proj", "train.logits"               training mode (batch statistics)
  "train.loss"      supcon(proj, labels, t = 0.07) + cross_entropy(logits)
  "train.g.<name>"  d train.loss / d parameter, for a few parameters
  "train.rm.layer0.bn1" the stem's running mean after the training forward

Needs Debian's python3-torch (1.13), run with /usr/bin/python3:
    /usr/bin/python3 scripts/make_senet3d_fixture.py [out.bin]
The committed fixture was made with AVX2 kernels (DNNL_MAX_CPU_ISA=AVX2,
OPENBLAS_CORETYPE=Haswell, set here before torch loads), as
make_nn_ops_fixture.py.
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

WIDTH, BLOCKS, PROJ = 4, (2, 1, 1, 1), 8
SHAPE = (4, 1, 16, 16, 32)
LABELS = [0.0, 1.0, 0.0, 3.0]
CLASS_W = [1.0, 2.0, 0.5, 1.5]
TEMP = 0.07


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, k, stride, k // 2, bias=False)
        self.adn = nn.Module()
        self.adn.N = nn.BatchNorm3d(cout)

    def forward(self, x):
        return self.adn.N(self.conv(x))


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        r = max(1, c // 16)
        self.fc = nn.Sequential(nn.Linear(c, r), nn.ReLU(), nn.Linear(r, c), nn.Sigmoid())

    def forward(self, x):
        s = self.fc(F.adaptive_avg_pool3d(x, 1).flatten(1))
        return x * s.view(s.shape[0], s.shape[1], 1, 1, 1)


class Block(nn.Module):
    def __init__(self, cin, planes, stride, project):
        super().__init__()
        self.conv1 = ConvBN(cin, planes, 3, stride)
        self.conv2 = ConvBN(planes, planes, 3, 1)
        self.se_layer = SE(planes)
        if project:
            self.project = ConvBN(cin, planes, 1, stride)
        else:
            self.project = None

    def forward(self, x):
        y = self.se_layer(self.conv2(F.relu(self.conv1(x))))
        res = self.project(x) if self.project is not None else x
        return F.relu(y + res)


class Stem(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv1 = nn.Conv3d(1, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(w)

    def forward(self, x):
        return F.max_pool3d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)


class SENet3d(nn.Module):
    def __init__(self, w, blocks, proj):
        super().__init__()
        self.layer0 = Stem(w)
        inplanes = w
        for l in range(4):
            planes = w << l
            layer = nn.Sequential(*[
                Block(inplanes if b == 0 else planes, planes, 2 if (b == 0 and l > 0) else 1,
                      b == 0 and l > 0) for b in range(blocks[l])])
            setattr(self, "layer%d" % (l + 1), layer)
            inplanes = planes
        f = 8 * w
        self.head = nn.Sequential(nn.Linear(f, f), nn.ReLU(), nn.Linear(f, proj))
        self.last_linear = nn.Linear(f, 4)

    def forward(self, x):
        y = self.layer0(x)
        for l in range(4):
            y = getattr(self, "layer%d" % (l + 1))(y)
        feat = F.adaptive_avg_pool3d(y, 1).flatten(1)
        proj = F.normalize(self.head(feat), dim=1, eps=1e-12)
        return feat, proj, self.last_linear(feat)


def supcon(z, labels, t):
    n = z.shape[0]
    s = z @ z.t() / t
    eye = torch.eye(n, dtype=torch.bool)
    lse = torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    pos = (labels.view(-1, 1) == labels.view(1, -1)) & ~eye
    npos = pos.sum(1).clamp(min=1)
    return -(((s - lse) * pos).sum(1) / npos).mean()


def randomise(net, g):
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif t.dim() == 1:  # BN weight
                t.copy_(0.6 + 0.8 * torch.rand(t.shape, generator=g))
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * 1.2 / fan_in ** 0.5)


GRAD_OF = ["layer0.conv1.weight", "layer1.1.se_layer.fc.0.weight", "layer2.0.project.conv.weight",
           "layer4.0.conv2.adn.N.weight", "head.2.weight", "last_linear.weight"]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model/fixtures/senet3d_w4.bin"
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(3015)
    net = SENet3d(WIDTH, BLOCKS, PROJ)
    randomise(net, g)
    tensors = [("w." + k, v.clone()) for k, v in net.state_dict().items()
               if not k.endswith("num_batches_tracked")]
    x = torch.rand(SHAPE, generator=g)
    labels = torch.tensor(LABELS)
    cw = torch.tensor(CLASS_W)
    tensors += [("x", x), ("labels", labels), ("class_w", cw)]
    net.eval()
    with torch.no_grad():
        feat, proj, logits = net(x)
    tensors += [("eval.feat", feat), ("eval.proj", proj), ("eval.logits", logits)]
    net.train()
    feat, proj, logits = net(x)
    loss = supcon(proj, labels, TEMP) + F.cross_entropy(logits, labels.long(), weight=cw)
    loss.backward()
    params = dict(net.named_parameters())
    tensors += [("train.proj", proj), ("train.logits", logits), ("train.loss", loss.view(1))]
    tensors += [("train.g." + n, params[n].grad) for n in GRAD_OF]
    tensors.append(("train.rm.layer0.bn1", net.layer0.bn1.running_mean))
    hvfx.write(out, tensors)
    ntrain = sum(p.numel() for p in net.parameters())
    print("wrote %s: %d tensors; %d trainable parameters at width %d, blocks %s, proj %d; "
          "loss %.6f (torch %s)" % (out, len(tensors), ntrain, WIDTH, BLOCKS, PROJ, loss.item(),
                                    torch.__version__))


if __name__ == "__main__":
    main()
