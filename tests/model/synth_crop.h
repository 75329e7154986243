/*
 * synth_crop.h: what the synthesis tests (test_model_synth.c,
 * test_model_synth_aot.c) share: scratch paths, hand-built crops whose
 * vertebrae are boxes at known rows (every expected slice list and row is
 * hand arithmetic on them), the largest difference of two volumes, and a
 * synthesis opened on model files. Header-only (static functions) so that
 * each test stays one source file; include it after hv_test.h, hv/model.h
 * and hv/nn.h, and set g_dir (the scratch folder) first thing in main.
 */
#ifndef HV_TEST_SYNTH_CROP_H
#define HV_TEST_SYNTH_CROP_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv/spine.h"
#include "hv_test.h"

static char g_dir[1024];

/* name under g_dir, in one of 8 rotating static buffers. */
static const char *tmp_path(const char *name)
{
    static char buf[8][1200];
    static int slot = 0;
    char *p = buf[slot++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

/* Crops of dims (64 LR i, 256 AP j, 256 rows k; k = 0 caudal), vertebrae as
 * boxes [i0, i1) x [j0, j1) x [k0, k1). A sagittal slice i shows row
 * r = 255 - k and column c = 255 - j; a coronal slice j shows row r and
 * canvas column 96 + (63 - i). CT: a texture with a fractional part (0.25)
 * so that the u8 truncation of spec 3.4 is visible. */

typedef struct box {
    int label;
    int i0, i1, j0, j1, k0, k1;
} box;

static float ct_value(int64_t i, int64_t j, int64_t k, int bone)
{
    return bone ? (float)(150 + (3 * i + 5 * j + 7 * k) % 60) + 0.25f
                : (float)(20 + (3 * i + 5 * j + 7 * k) % 40) + 0.25f;
}

static hv_spine_crop *make_crop(int target, const box *b, int nb)
{
    hv_spine_crop *cr = calloc(1, sizeof *cr);
    if (!cr) return NULL;
    const int64_t dim[3] = {64, 256, 256};
    cr->label = target;
    if (hv_vol_create(&cr->ct, dim, HV_DTYPE_F32, NULL) != HV_OK ||
        hv_vol_create(&cr->labels, dim, HV_DTYPE_U8, NULL) != HV_OK) {
        hv_spine_crop_free(cr);
        return NULL;
    }
    float *ct = cr->ct->data;
    uint8_t *lb = cr->labels->data;
    for (int64_t k = 0; k < 256; k++)
        for (int64_t j = 0; j < 256; j++)
            for (int64_t i = 0; i < 64; i++) {
                size_t q = hv_vol_idx(cr->ct, i, j, k);
                ct[q] = ct_value(i, j, k, 0);
                for (int n = 0; n < nb; n++)
                    if (b[n].label && i >= b[n].i0 && i < b[n].i1 && j >= b[n].j0 && j < b[n].j1 &&
                        k >= b[n].k0 && k < b[n].k1) {
                        lb[q] = (uint8_t)b[n].label;
                        ct[q] = ct_value(i, j, k, 1);
                    }
            }
    return cr;
}

/* The standard crop: `extra` at the T12 place, `up` at L1's (with a thin
 * 10 x 20 = 200-pixel part on LR slices 20..30), the target at L2's
 * (30 rows: image rows [116, 146)), `lo` at L3's (LR slices 26..33 only).
 * A label 0 leaves its box out. Hand-computed ranges (hv/spine.h, 0.8 L):
 *   sagittal: target i in [26, 38): L 12, M int(9.6) = 9, first 26 + 1:
 *             slices 27..35;
 *   coronal:  target j in [110, 125): L 15, M 12, first 110 + 1: 111..122.
 * Upper neighbour per sagittal slice: 15 x 30 = 450 px at i >= 31, only
 * the thin 200 px (not > 200) at i 27..30: slices 31..35; per coronal
 * slice 17 x 30 (+ 11 x 20) >= 510 px: all 12. Lower neighbour: sagittal
 * 27..33 (450 px), nothing at 34, 35; coronal 8 x 30 = 240 px: all 12. */
static hv_spine_crop *std_crop(int extra, int up, int t, int lo)
{
    const box b[] = {
        {extra, 26, 38, 110, 125, 180, 210},
        {up, 31, 48, 110, 125, 145, 175},
        {up, 20, 31, 110, 120, 145, 165},
        {t, 26, 38, 110, 125, 110, 140},
        {lo, 26, 34, 110, 125, 75, 105},
    };
    return make_crop(t, b, 5);
}

/* max |a - b| over the voxels (a NaN anywhere wins). */
static double max_abs_diff(const hv_volume *a, const hv_volume *b)
{
    double m = 0;
    for (size_t q = 0; q < a->nvox; q++) {
        double d = fabs(hv_vol_get(a, q) - hv_vol_get(b, q));
        if (!(d <= m)) m = d; /* NaN wins */
    }
    return m;
}

/* Open a synthesis of the given generator kind (HV_MODEL_GEN_*) on
 * sagittal (and coronal) model files. */
static hv_model_synth *open_synth(hv_nn_backend *be, const char *sag, const char *cor,
                                  int64_t batch, int neighbours, int generator)
{
    hv_model_synth_opts o;
    hv_model_synth_opts_default(&o);
    o.generator = generator;
    o.batch = batch;
    o.neighbours = neighbours;
    hv_model_synth *s = NULL;
    hv_status st = hv_model_synth_open(sag, cor, &o, be, &s);
    HV_CHECK(st == HV_OK, "open %s: %s", sag, hv_error_detail());
    return s;
}

/* crop (with cam, which may be NULL) synthesized at batch 8 (partial last
 * batches padded) and at batch 1 (the reference's loop) by the generator
 * kind's model files, both planes, neighbours on: r[0] and r[1] (the
 * caller frees them). When both ran (returns 1): their largest CT,
 * probability and label differences in d[0..2], checked to be 0 (up to
 * float rounding: CT 1e-6 * 255, probability 1e-6). */
static int synth_batch_vs_loop(hv_nn_backend *be, const char *sag, const char *cor,
                               int generator, const hv_spine_crop *crop, const hv_volume *cam,
                               hv_model_synth_result r[2], double d[3])
{
    const int64_t batches[2] = {8, 1};
    memset(r, 0, 2 * sizeof *r);
    for (int b = 0; b < 2; b++) {
        hv_model_synth *s = open_synth(be, sag, cor, batches[b], 1, generator);
        if (s) HV_CHECK_OK(hv_model_synth_vertebra(s, crop, cam, &r[b]));
        hv_model_synth_free(s);
    }
    if (!r[0].ct || !r[1].ct) return 0;
    d[0] = max_abs_diff(r[0].ct, r[1].ct);
    d[1] = max_abs_diff(r[0].prob, r[1].prob);
    d[2] = max_abs_diff(r[0].labels, r[1].labels);
    HV_CHECK(d[0] <= 1e-6 * 255 && d[1] <= 1e-6 && d[2] == 0,
             "batch 8 vs batch 1: CT %.3g, prob %.3g, labels %.3g", d[0], d[1], d[2]);
    return 1;
}

#endif /* HV_TEST_SYNTH_CROP_H */
