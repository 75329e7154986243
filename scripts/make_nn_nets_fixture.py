#!/usr/bin/python3
"""Make tests/model/fixtures/nn_nets.bin: PyTorch's forward outputs and
gradients of the two reference networks, for tests/model/test_model_nets.c.

1. PatchGAN (spec 5.4, pix2pix NLayerDiscriminator, n_layers 3, ndf 64,
   batch norm), written here from the spec. Its 2.76 M weights are not
   stored: both sides compute them from a closed formula of the parameter's
   name and the element index (patchgan_value below, mirrored in the test),
   so the fixture stays small. Stored: the input (2 x 1 x 48 x 48), R, the
   training-mode logits (batch statistics), the gradient of sum(logits * R)
   with respect to the input and three parameters, one running variance
   after the forward, and the eval-mode logits (running statistics).
2. Generator gradients: the cnum 4 generator of generator_cnum4.bin (made by
   make_generator_fixture.py; its weights and inputs are read from that file
   and its network class is imported from that script), eval mode, loss
       mse(x_stage2, x) + mse(fine_seg, cam) + mse(x_stage1, x)
       + mean(p1) + mean(p2)
   on the fixture's inputs. Stored: the loss and its gradient with respect
   to five parameters, among them the first layer's weight
   (coarse_generator.conv1.conv.weight_orig).

Needs Debian's python3-torch (1.13) and numpy, run with /usr/bin/python3
from the repository root:
    /usr/bin/python3 scripts/make_nn_nets_fixture.py [out.bin]
Not needed by the build or the tests (the fixture is committed). Format as
scripts/hvfx.py (HVFX version 1). Names: "D.x", "D.R",
"D.out_train", "D.grad.x", "D.grad.<param>", "D.after.<buffer>",
"D.out_eval"; "G.loss", "G.grad.<param>".

Reproducible bytes: as make_nn_ops_fixture.py, the script asks for the AVX2
kernels of oneDNN and OpenBLAS (DNNL_MAX_CPU_ISA=AVX2,
OPENBLAS_CORETYPE=Haswell, unless already set), those the committed
nn_nets.bin was made with, so that a rerun on any CPU with AVX2 gives the
committed bytes (PyTorch picks these kernels by CPU, and wider ones round
differently).
"""
import math
import os
import sys

# before torch loads (see "Reproducible bytes" above)
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_generator_fixture as mgf  # noqa: E402
import hvfx  # noqa: E402


def name_code(name):
    return sum((k + 1) * b for k, b in enumerate(name.encode())) % 1000


def patchgan_value(name, shape):
    """The fixed weights: f(i) = sin(0.37 (i + 1) + 1.7 (c + 1)), c from the
    name; conv weights f * 1.7 / sqrt(fan_in), conv biases 0.1 f, BN weight
    1 + 0.2 f, BN bias 0.1 f, running_mean 0.1 f, running_var 1 + 0.5 f."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    f = np.sin(0.37 * (i + 1) + 1.7 * (name_code(name) + 1))
    if name.endswith("running_var"):
        v = 1 + 0.5 * f
    elif len(shape) == 4:
        v = f * 1.7 / math.sqrt(n / shape[0])
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = 0.1 * f
    else:  # BN weight
        v = 1 + 0.2 * f
    return torch.from_numpy(v.astype(np.float32)).view(shape)


class NLayerDiscriminator(nn.Module):
    """pix2pix "basic" PatchGAN, spec 5.4 (state_dict keys model.<i>.*)."""

    def __init__(self, in_ch=1, ndf=64):
        super().__init__()
        layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n, stride in ((1, 2), (2, 2), (3, 1)):
            out = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, True)]
            ch = out
        layers += [nn.Conv2d(ch, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def patchgan_tensors():
    d = NLayerDiscriminator()
    sd = {k: patchgan_value(k, tuple(v.shape)) for k, v in d.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    d.load_state_dict(sd, strict=False)
    gen = torch.Generator().manual_seed(54)
    x = (torch.rand(2, 1, 48, 48, generator=gen) * 2 - 1).requires_grad_(True)
    d.train()
    y = d(x)
    r = torch.randn(y.shape, generator=gen)
    (y * r).sum().backward()
    out = [("D.x", x), ("D.R", r), ("D.out_train", y), ("D.grad.x", x.grad)]
    for p in ("model.0.weight", "model.3.weight", "model.11.bias"):
        out.append(("D.grad." + p, dict(d.named_parameters())[p].grad))
    out.append(("D.after.model.9.running_var", d.state_dict()["model.9.running_var"].clone()))
    # eval mode from the original running statistics
    d.load_state_dict(sd, strict=False)
    d.eval()
    with torch.no_grad():
        out.append(("D.out_eval", d(x)))
    return out


GEN_PARAMS = ["coarse_generator.conv1.conv.weight_orig", "coarse_generator.fc_height.weight",
              "fine_generator.pmconv6.conv.weight_orig", "fine_generator.allconv11.conv.bias",
              "fine_generator.allconv17.conv.weight_orig"]


def generator_tensors(path):
    fx = {k: torch.from_numpy(v) for k, v in hvfx.read(path).items()}
    g = mgf.Generator(4)
    sd = {k: v for k, v in fx.items() if not k.startswith(("in.", "out."))}
    g.load_state_dict(sd, strict=True)
    g.eval()
    x, mask, cam, ratio = (fx["in." + k] for k in ("x", "mask", "cam", "ratio"))
    cseg, xs1, p1, fseg, xs2, p2 = g(x, mask, cam, ratio)
    # the forward must be the one the fixture recorded
    for k, v in zip(("coarse_seg", "x_stage1", "p1", "fine_seg", "x_stage2", "p2"),
                    (cseg, xs1, p1, fseg, xs2, p2)):
        ref = fx["out." + k]
        assert (v - ref).norm() <= 1e-5 * ref.norm(), k
    loss = (F.mse_loss(xs2, x) + F.mse_loss(fseg, cam) + F.mse_loss(xs1, x)
            + p1.mean() + p2.mean())
    loss.backward()
    params = dict(g.named_parameters())
    out = [("G.loss", loss.detach().view(1))]
    for p in GEN_PARAMS:
        out.append(("G.grad." + p, params[p].grad))
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/model/fixtures/nn_nets.bin"
    torch.set_num_threads(2)
    tensors = patchgan_tensors() + generator_tensors("tests/model/fixtures/generator_cnum4.bin")
    hvfx.write(out, tensors)
    print("wrote %s: %d tensors, %d floats (torch %s)"
          % (out, len(tensors), sum(t.numel() for _, t in tensors), torch.__version__))
    for name, t in tensors:
        if name.startswith("G.grad.") or name == "G.loss":
            print("  %-50s |.| = %.4g" % (name, t.norm().item()))


if __name__ == "__main__":
    main()
