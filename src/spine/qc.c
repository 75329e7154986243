/*
 * qc.c: a quality-control picture per vertebra crop: the mid-sagittal slice
 * (through the crop's LR centre) and the mid-coronal slice (through the
 * target body's AP centre) side by side, grey CT with every label's contour
 * drawn in a colour of its own and the target's in red. Written with libpng
 * directly (8-bit RGB); the file goes to a temporary name first and is
 * renamed, so a crash never leaves a half-written PNG.
 */
#include "spine_internal.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void label_colour(int label, int target, unsigned char rgb[3])
{
    if (label == target) { rgb[0] = 255; rgb[1] = 40; rgb[2] = 40; return; }
    static const unsigned char pal[6][3] = {
        {40, 200, 255}, {60, 255, 60}, {255, 220, 40}, {255, 80, 255}, {255, 150, 40}, {120, 140, 255},
    };
    memcpy(rgb, pal[label % 6], 3);
}

/* Paint one slice (rows x cols) at column x0 of the RGB canvas. */
static void paint(unsigned char *img, int64_t stride, int64_t x0, const float *ct,
                  const float *lab, int64_t rows, int64_t cols, int target)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            unsigned char *px = img + r * stride + (x0 + c) * 3;
            float v = ct[r * cols + c];
            unsigned char g = (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
            px[0] = px[1] = px[2] = g;
            int l = (int)lrintf(lab[r * cols + c]);
            if (l <= 0) continue;
            int edge = 0;
            for (int d = 0; d < 4 && !edge; d++) {
                int64_t rr = r + (d == 0) - (d == 1), cc = c + (d == 2) - (d == 3);
                if (rr < 0 || cc < 0 || rr >= rows || cc >= cols) { edge = 1; break; }
                edge = (int)lrintf(lab[rr * cols + cc]) != l;
            }
            if (edge) label_colour(l, target, px);
        }
}

/* libpng's error path longjmps here: kept apart so no caller local is live
 * across setjmp. Returns 0 on success. */
static int write_rgb(FILE *f, png_bytep *rowp, int64_t W, int64_t H)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rowp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

hv_status hv_spine_qc_png(const char *path, const hv_spine_crop *cr)
{
    hv_status st = HV_OK;
    float *sct = NULL, *slab = NULL, *cct = NULL, *clab = NULL;
    unsigned char *img = NULL;
    png_bytep *rowp = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    if (!path || !cr || !cr->ct || !cr->labels) return hv_error_set(HV_ERR_ARG, "qc: missing input");
    int64_t rs, cs, rc, cc;
    hv_spine_slice_dims(cr->ct, HV_SPINE_SAGITTAL, &rs, &cs);
    hv_spine_slice_dims(cr->ct, HV_SPINE_CORONAL, &rc, &cc);
    /* the target body's AP centre for the coronal slice */
    int64_t jc = cr->ct->dim[1] / 2;
    {
        double sj = 0, n = 0;
        for (size_t q = 0; q < cr->labels->nvox; q++)
            if (((const uint8_t *)cr->labels->data)[q] == cr->label) {
                sj += (double)((q / (size_t)cr->labels->dim[0]) % (size_t)cr->labels->dim[1]);
                n += 1;
            }
        if (n > 0) jc = (int64_t)lround(sj / n);
    }
    int64_t W = cs + 4 + cc, H = rs > rc ? rs : rc;
    sct = malloc((size_t)(rs * cs) * sizeof *sct);
    slab = malloc((size_t)(rs * cs) * sizeof *slab);
    cct = malloc((size_t)(rc * cc) * sizeof *cct);
    clab = malloc((size_t)(rc * cc) * sizeof *clab);
    img = calloc((size_t)(W * H * 3), 1);
    rowp = malloc((size_t)H * sizeof *rowp);
    tmp = hv_strfmt("%s.tmp", path);
    if (!sct || !slab || !cct || !clab || !img || !rowp || !tmp) {
        st = hv_error_set(HV_ERR_NOMEM, "qc picture");
        goto done;
    }
    int64_t ic = cr->ct->dim[0] / 2;
    st = hv_spine_slice_extract(cr->ct, HV_SPINE_SAGITTAL, ic, sct);
    if (!st) st = hv_spine_slice_extract(cr->labels, HV_SPINE_SAGITTAL, ic, slab);
    if (!st) st = hv_spine_slice_extract(cr->ct, HV_SPINE_CORONAL, jc, cct);
    if (!st) st = hv_spine_slice_extract(cr->labels, HV_SPINE_CORONAL, jc, clab);
    if (st) goto done;
    paint(img, W * 3, 0, sct, slab, rs, cs, cr->label);
    paint(img, W * 3, cs + 4, cct, clab, rc, cc, cr->label);
    for (int64_t r = 0; r < H; r++) rowp[r] = img + r * W * 3;
    f = fopen(tmp, "wb");
    if (!f) { st = hv_error_set(HV_ERR_IO, "cannot write %s: %s", tmp, strerror(errno)); goto done; }
    if (write_rgb(f, rowp, W, H) != 0) st = hv_error_set(HV_ERR_IO, "libpng failed writing %s", tmp);
done:
    if (f && fclose(f) != 0 && !st) st = hv_error_set(HV_ERR_IO, "closing %s: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = hv_error_set(HV_ERR_IO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    if (st && tmp) remove(tmp);
    free(sct);
    free(slab);
    free(cct);
    free(clab);
    free(img);
    free(rowp);
    free(tmp);
    return st;
}
