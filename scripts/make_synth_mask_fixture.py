#!/usr/bin/env python3
"""Make tests/measure/fixtures/synth_mask/{label,label_fake}/fx_20.nii.gz.

A reference-style crop pair for `healthivert measure --synth-mask FAKE
--synth-orig ORIG` (the reference's RHLV, spec section 9, on a label_fake
crop made elsewhere): float64 label crops of 256 rows x 256 AP columns
(anterior first) x 64 LR slices, as the reference's eval script writes
label_fake/<name> and its straightening writes the label crops.

Vertebra 20 (L1) in both, over LR slices 20..43 and AP columns 100..129:
  original: column heights 15 rows (columns 100..108), 20 (109..118) and
            25 (119..129), centred on row 128;
  fake:     30 rows in every column (the pseudo-healthy body).
Both also hold the neighbour 21 (a 20-row box below, identical), which the
count must ignore.

Expected RHLV by hand (spec 9, T = 0.7):
  thirds from the FAKE's AP extent [100, 129]: t1 = int(100 + 29/3) = 109,
  t2 = int(100 + 58/3) = 119, so anterior = columns 100..108 (original 15),
  middle = 109..118 (20), posterior = 119..129 (25);
  original centre column int(70840 / 610) = 116 has 20 rows: columns taller
  than 14 are kept (all); fake centre 30: taller than 21 kept (all); the
  original is never taller than the fake, so no scaling;
  H_syn = 30 everywhere; H_ori all = (9*15 + 10*20 + 11*25) / 30 = 20.3333;
  RHLV = (H_syn - H_ori) / (H_syn + 1e-6):
  all 0.32222, anterior 0.50000, middle 0.33333, posterior 0.16667.

Written with numpy only (a plain NIfTI-1 header), deterministic:
    /usr/bin/python3 scripts/make_synth_mask_fixture.py tests/measure/fixtures/synth_mask
"""
import gzip
import os
import struct
import sys

import numpy as np

R, C, S = 256, 256, 64


def nifti1_gz(path, data):
    """float64 NIfTI-1 (.nii.gz), 1 mm, identity affine (sform and qform)."""
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, *data.shape, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 64, 64)            # datatype FLOAT64, bitpix
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, 352.0)             # vox_offset
    struct.pack_into("<f", hdr, 112, 1.0)               # scl_slope
    struct.pack_into("<hh", hdr, 252, 1, 1)             # qform_code, sform_code
    struct.pack_into("<4f", hdr, 280, 1, 0, 0, 0)       # srow_x
    struct.pack_into("<4f", hdr, 296, 0, 1, 0, 0)
    struct.pack_into("<4f", hdr, 312, 0, 0, 1, 0)
    hdr[344:348] = b"n+1\0"
    body = bytes(hdr) + b"\0" * 4 + np.asfortranarray(data, dtype="<f8").tobytes(order="F")
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(body)


def crop(fake):
    v = np.zeros((R, C, S))
    for c in range(100, 130):
        h = 30 if fake else (15 if c <= 108 else 20 if c <= 118 else 25)
        r0 = 128 - h // 2
        v[r0:r0 + h, c, 20:44] = 20
    v[150:170, 100:130, 20:44] = 21
    return v


out = sys.argv[1] if len(sys.argv) > 1 else "tests/measure/fixtures/synth_mask"
for sub, fake in (("label", False), ("label_fake", True)):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    nifti1_gz(os.path.join(out, sub, "fx_20.nii.gz"), crop(fake))
