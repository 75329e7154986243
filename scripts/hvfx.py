"""The HVFX fixture file that the test fixtures are written in, read and written
here once for every scripts/make_*_fixture.py (tests/nn/nn_fixture.h reads it in C).

File format (little endian): b"HVFX", uint32 version 1, uint32 count, then per
tensor: uint32 name length, the name (UTF-8), uint32 ndim, int64 shape[ndim],
float32 data (C order).
"""
import struct

import numpy as np


def _array(t):
    """float32 C-ordered numpy array of a torch tensor or anything array-like."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(t, dtype=np.float32))


def write(path, tensors):
    """Write [(name, tensor or array), ...] to path."""
    with open(path, "wb") as fh:
        fh.write(b"HVFX")
        fh.write(struct.pack("<II", 1, len(tensors)))
        for name, t in tensors:
            a = _array(t)
            nb = name.encode()
            fh.write(struct.pack("<I", len(nb)))
            fh.write(nb)
            fh.write(struct.pack("<I", a.ndim))
            fh.write(struct.pack("<%dq" % a.ndim, *a.shape))
            fh.write(a.astype("<f4").tobytes())


def read(path):
    """{name: float32 numpy array} of an HVFX file, in file order."""
    with open(path, "rb") as fh:
        b = fh.read()
    if b[:4] != b"HVFX":
        raise ValueError("%s: not an HVFX fixture" % path)
    ver, cnt = struct.unpack("<II", b[4:12])
    if ver != 1:
        raise ValueError("%s: HVFX version %d, not 1" % (path, ver))
    o, t = 12, {}
    for _ in range(cnt):
        (nl,) = struct.unpack("<I", b[o:o + 4])
        name = b[o + 4:o + 4 + nl].decode()
        o += 4 + nl
        (nd,) = struct.unpack("<I", b[o:o + 4])
        shape = struct.unpack("<%dq" % nd, b[o + 4:o + 4 + 8 * nd])
        o += 4 + 8 * nd
        n = int(np.prod(shape))
        t[name] = np.frombuffer(b[o:o + 4 * n], "<f4").copy().reshape(shape)
        o += 4 * n
    return t
