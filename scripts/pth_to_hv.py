#!/usr/bin/python3
"""Convert a PyTorch generator checkpoint (.pth) to a healthivert NN checkpoint.

    /usr/bin/python3 scripts/pth_to_hv.py latest_net_G.pth generator.h5

The reference saves the generator's plain state_dict (spec 6); DataParallel
"module." prefixes and a wrapping {"state_dict": ...} are accepted too. Our
parameter names are the reference's state_dict keys (docs/nn.md), so the
conversion copies every float tensor to /params/<key> as float32 and records
the source in /meta. Integer entries (BatchNorm num_batches_tracked) are
skipped. Optional tool: needs python3-torch and either h5py or PyTables
(Debian python3-h5py or python3-tables); the build and tests do not use it.
"""
import os
import sys

import torch


def load_state(path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v) or not v.is_floating_point():
            continue
        if k.startswith("module."):
            k = k[len("module."):]
        if "/" in k:
            raise SystemExit("tensor name with '/' cannot be stored: %s" % k)
        out[k] = v.detach().float().contiguous().numpy()
    return out


def write_h5py(path, tensors, meta):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "healthivert-nn-checkpoint"
        f.attrs["version"] = 1.0
        g = f.create_group("params")
        for k, a in tensors.items():
            g.create_dataset(k, data=a, dtype="<f4")
        m = f.create_group("meta")
        for k, v in meta.items():
            # str(): torch.__version__ is a str subclass that h5py cannot store
            m.attrs[k] = str(v)


def write_tables(path, tensors, meta):
    import warnings

    import numpy as np
    import tables
    warnings.simplefilter("ignore", tables.NaturalNameWarning)
    with tables.open_file(path, "w") as f:
        f.root._v_attrs["format"] = np.bytes_("healthivert-nn-checkpoint")
        f.root._v_attrs["version"] = 1.0
        g = f.create_group("/", "params")
        for k, a in tensors.items():
            f.create_array(g, k, obj=a.astype("<f4"))
        m = f.create_group("/", "meta")
        for k, v in meta.items():
            m._v_attrs[k] = np.bytes_(str(v))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    tensors = load_state(src)
    meta = {"source": src, "converted_by": "scripts/pth_to_hv.py",
            "torch_version": torch.__version__}
    # written next to dst and renamed: a failed conversion leaves no file
    tmp = dst + ".tmp"
    try:
        try:
            write_h5py(tmp, tensors, meta)
        except ImportError:
            write_tables(tmp, tensors, meta)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print("wrote %s: %d tensors, %d values" % (dst, len(tensors),
                                               sum(a.size for a in tensors.values())))


if __name__ == "__main__":
    main()
