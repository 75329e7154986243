/*
 * gan_batch.h: a synthetic training batch filled by hand for the GAN tests
 * (the sampler of src/model/sample.c is tested on its own; these tests need
 * a batch whose geometry they control). A sagittal slice of three
 * vertebrae (bright bodies with a texture, dark discs) around a target of
 * height h at rows [x1, x2), in the frames of spec 3.3.
 */
#ifndef HV_TEST_GAN_BATCH_H
#define HV_TEST_GAN_BATCH_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"

static void gan_batch_free(hv_model_batch *b)
{
    free(b->x), free(b->mask), free(b->cam), free(b->ratio), free(b->real), free(b->real_mask);
    free(b->normal), free(b->x1), free(b->x2), free(b->band_lo), free(b->height);
    memset(b, 0, sizeof *b);
}

static int gan_batch_alloc(hv_model_batch *b, int64_t n, int64_t rows, int64_t cols, int64_t band)
{
    memset(b, 0, sizeof *b);
    const size_t pl = (size_t)(n * rows * cols);
    b->n = n, b->rows = rows, b->cols = cols, b->band_rows = band;
    b->x = calloc(pl, 4), b->mask = calloc(pl, 4), b->cam = calloc(pl, 4);
    b->real = calloc(pl, 4), b->real_mask = calloc(pl, 4), b->normal = calloc(pl, 4);
    b->ratio = calloc((size_t)n, 4), b->height = calloc((size_t)n, 4);
    b->x1 = calloc((size_t)n, 8), b->x2 = calloc((size_t)n, 8), b->band_lo = calloc((size_t)n, 8);
    return b->x && b->mask && b->cam && b->real && b->real_mask && b->normal && b->ratio &&
           b->height && b->x1 && b->x2 && b->band_lo;
}

/* Item `slot`: target rows [x1, x1 + h), neighbours 3-row discs away,
 * bodies over columns [cols/4, 3 cols/4); `phase` varies the texture. */
static void gan_batch_item(hv_model_batch *b, int64_t slot, int64_t x1, int64_t h, double phase)
{
    const int64_t R = b->rows, C = b->cols, x2 = x1 + h, hw = R * C;
    float *A = b->real + slot * hw, *Am = b->real_mask + slot * hw, *X = b->x + slot * hw;
    float *M = b->mask + slot * hw, *N = b->normal + slot * hw;
    float *healthy = calloc((size_t)hw, 4);
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) {
            int in_cols = c >= C / 4 && c < 3 * C / 4;
            int prev = r >= x1 - 3 - h && r < x1 - 3, next = r >= x2 + 3 && r < x2 + 3 + h;
            int tgt = r >= x1 && r < x2;
            double v = -0.8;
            if (in_cols && (prev || next || tgt))
                v = 0.4 + 0.2 * sin(0.7 * c + 0.3 * r + phase);
            A[r * C + c] = (float)v;
            Am[r * C + c] = (float)(in_cols && tgt);
            healthy[r * C + c] = (float)(in_cols && (prev || next));
        }
    int64_t m = (x1 + x2) / 2, lo = m - b->band_rows / 2;
    if (lo < 0) lo = 0;
    if (lo + b->band_rows > R) lo = R - b->band_rows;
    const int64_t hi = lo + b->band_rows;
    for (int64_t r = 0; r < R; r++) {
        int64_t src = r < lo ? r + (x1 - lo) : (r >= hi ? x2 + (r - hi) : -1);
        for (int64_t c = 0; c < C; c++) {
            int ok = src >= 0 && src < R;
            X[r * C + c] = ok ? A[src * C + c] : -1.0f;
            N[r * C + c] = ok ? healthy[src * C + c] : 0.0f;
            M[r * C + c] = (float)(r >= lo && r < hi);
        }
    }
    free(healthy);
    b->x1[slot] = x1, b->x2[slot] = x2, b->band_lo[slot] = lo;
    b->height[slot] = (float)h;
    b->ratio[slot] = 0.1f * (float)slot;
}

#endif
