/*
 * sample.c: one training sample from one vertebra of the training set
 * (spec 3.2-3.4; hv/model.h "a batch"), in the sagittal plane or, for the
 * coronal model of spec 4, the coronal one.
 *
 * Everything geometric is src/spine's (slice range, seeded draw, band,
 * shift, mask, component cleaning): this file only extracts the item's
 * slices, applies them and converts to the network's ranges, so training,
 * validation and inference place the band by one code. What a slot holds:
 *
 *   x         the shifted CT, v/255 then (v - 0.5)/0.5, band rows -1 (the
 *             shift leaves them 0, as it does rows pushed in from beyond
 *             the image: padding, -1 as in the reference)
 *   mask      1 in the band rows, all columns
 *   cam       the shifted CAM / 255, zeros when the item has none
 *   ratio     hv_spine_slice_ratio of the slice
 *   real      the unshifted CT slice in [-1, 1]
 *   real_mask the target's pixels (1) of the cleaned label slice
 *   normal    1 where the shifted cleaned label slice holds a vertebra whose
 *             case grade is known and <= healthy_max_grade; band rows 0.
 *             Unknown grades (-1: absent from the split) count as NOT
 *             healthy: the reference builds the mask from the labels its
 *             split file grades, and an unlisted vertebra is never in it.
 *   x1, x2, band_lo, height   the band of hv_spine_band_find
 *
 * The label slice is cleaned (8-connected target components < 50 px
 * removed) for a fixed slice too, so hv_model_sample_at(z) gives exactly
 * what a draw that picked z gives.
 *
 * Coronal (o->plane = HV_SPINE_CORONAL, spec 4, the reference's deleted
 * 2024 loader): the slice is crop[:, j, :] (64 LR columns) pasted into the
 * centre columns [(cols - 64) / 2, +64) of a 256 x 256 canvas by
 * hv_spine_slice_extract; the slices are drawn along the target's AP extent
 * (hv_spine_slice_range_get on the coronal plane); the band mask is 40 rows
 * x the 64 strip columns only, as spec 4 says ("only inside the pasted
 * strip"); rows are cut and shifted over the whole canvas as in the
 * sagittal plane (outside the strip there is nothing but padding, -1 in
 * x). The CAM is the coronal slice of the item's one CAM volume (the
 * reference read a separate coronal heatmap; ours is 3D).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/spine.h"

void hv_model_sample_opts_default(hv_model_sample_opts *o)
{
    o->healthy_max_grade = 1;
    o->band_rows = 40;
    o->plane = HV_SPINE_SAGITTAL;
}

static const char *plane_name(int plane)
{
    return plane == HV_SPINE_CORONAL ? "coronal" : "sagittal";
}

hv_status hv_model_batch_alloc(hv_model_batch *b, int64_t n, int64_t rows, int64_t cols,
                               int64_t band_rows)
{
    memset(b, 0, sizeof *b);
    if (n < 1 || rows < 1 || cols < 1 || band_rows < 2 || band_rows > rows)
        return hv_error_set(HV_ERR_ARG, "batch of %lld x %lld x %lld with a %lld-row band",
                            (long long)n, (long long)rows, (long long)cols,
                            (long long)band_rows);
    size_t px = (size_t)(n * rows * cols), m = (size_t)n;
    b->n = n;
    b->rows = rows;
    b->cols = cols;
    b->band_rows = band_rows;
    b->x = calloc(px, sizeof *b->x);
    b->mask = calloc(px, sizeof *b->mask);
    b->cam = calloc(px, sizeof *b->cam);
    b->real = calloc(px, sizeof *b->real);
    b->real_mask = calloc(px, sizeof *b->real_mask);
    b->normal = calloc(px, sizeof *b->normal);
    b->ratio = calloc(m, sizeof *b->ratio);
    b->height = calloc(m, sizeof *b->height);
    b->x1 = calloc(m, sizeof *b->x1);
    b->x2 = calloc(m, sizeof *b->x2);
    b->band_lo = calloc(m, sizeof *b->band_lo);
    if (!b->x || !b->mask || !b->cam || !b->real || !b->real_mask || !b->normal || !b->ratio ||
        !b->height || !b->x1 || !b->x2 || !b->band_lo) {
        hv_model_batch_free(b);
        return hv_error_set(HV_ERR_NOMEM, "batch of %lld items: out of memory", (long long)n);
    }
    return HV_OK;
}

void hv_model_batch_free(hv_model_batch *b)
{
    if (!b) return;
    free(b->x);
    free(b->mask);
    free(b->cam);
    free(b->real);
    free(b->real_mask);
    free(b->normal);
    free(b->ratio);
    free(b->height);
    free(b->x1);
    free(b->x2);
    free(b->band_lo);
    memset(b, 0, sizeof *b);
}

/* Arguments every entry point checks alike. */
static hv_status check_args(const hv_model_train_item *it, const hv_model_sample_opts *o,
                            const hv_model_batch *b, int64_t slot)
{
    if (!it || !o || !b || !it->ct || !it->labels)
        return hv_error_set(HV_ERR_ARG, "sample: missing item, options or batch");
    if (slot < 0 || slot >= b->n)
        return hv_error_set(HV_ERR_ARG, "sample: slot %lld outside the batch of %lld",
                            (long long)slot, (long long)b->n);
    if (o->plane != HV_SPINE_SAGITTAL && o->plane != HV_SPINE_CORONAL)
        return hv_error_set(HV_ERR_ARG, "sample: plane %d is neither sagittal (%d) nor coronal (%d)",
                            o->plane, HV_SPINE_SAGITTAL, HV_SPINE_CORONAL);
    if (o->band_rows != b->band_rows)
        return hv_error_set(HV_ERR_ARG, "sample: band of %lld rows, the batch has %lld",
                            (long long)o->band_rows, (long long)b->band_rows);
    int64_t rows, cols;
    hv_spine_slice_dims(it->labels, (hv_spine_plane)o->plane, &rows, &cols);
    if (rows != b->rows || cols != b->cols)
        return hv_error_set(HV_ERR_ARG, "sample: %s label %d: %s slices of %lld x %lld, "
                            "the batch takes %lld x %lld", it->case_id ? it->case_id : "?",
                            it->label, plane_name(o->plane), (long long)rows, (long long)cols, (long long)b->rows,
                            (long long)b->cols);
    const hv_volume *v[2] = {it->ct, it->cam};
    for (int k = 0; k < 2; k++)
        if (v[k] && memcmp(v[k]->dim, it->labels->dim, sizeof v[k]->dim))
            return hv_error_set(HV_ERR_ARG, "sample: %s label %d: %s dims differ from the "
                                "labels'", it->case_id ? it->case_id : "?", it->label,
                                k ? "CAM" : "CT");
    return HV_OK;
}

/* Fill slot `slot` from slice z, given the cleaned label slice `lab`. */
static hv_status fill(const hv_model_train_item *it, const hv_model_sample_opts *o,
                      const hv_spine_slice_range *rg, int64_t z, const float *lab,
                      hv_model_batch *b, int64_t slot)
{
    hv_status st = HV_OK;
    const int64_t rows = b->rows, cols = b->cols;
    const size_t px = (size_t)(rows * cols);
    float *sl = malloc(px * sizeof *sl), *sh = malloc(px * sizeof *sh);
    float *x = b->x + slot * (int64_t)px, *mask = b->mask + slot * (int64_t)px;
    float *cam = b->cam + slot * (int64_t)px, *real = b->real + slot * (int64_t)px;
    float *rmask = b->real_mask + slot * (int64_t)px, *normal = b->normal + slot * (int64_t)px;
    const hv_spine_plane pl = (hv_spine_plane)o->plane;
    hv_spine_band band;
    if (!sl || !sh) {
        st = hv_error_set(HV_ERR_NOMEM, "sample: out of memory");
        goto done;
    }
    /* band columns: all (sagittal) or the pasted LR strip (coronal, spec 4) */
    int64_t col_lo = 0, col_hi = cols;
    if (pl == HV_SPINE_CORONAL && it->labels->dim[0] < cols) {
        col_lo = (cols - it->labels->dim[0]) / 2;
        col_hi = col_lo + it->labels->dim[0];
    }
    st = hv_spine_band_find(lab, rows, cols, it->label, o->band_rows, col_lo, col_hi, &band);
    if (st != HV_OK) {
        hv_error_wrap(st, "sample: %s label %d, slice %lld", it->case_id ? it->case_id : "?",
                      it->label, (long long)z);
        goto done;
    }
    /* CT: original and shifted, [0, 255] -> [-1, 1] */
    if ((st = hv_spine_slice_extract(it->ct, pl, z, sl)) != HV_OK) goto done;
    hv_spine_band_shift(&band, sl, rows, cols, sh);
    for (size_t q = 0; q < px; q++) {
        real[q] = (sl[q] / 255.0f - 0.5f) / 0.5f;
        x[q] = (sh[q] / 255.0f - 0.5f) / 0.5f;
    }
    hv_spine_band_mask(&band, rows, cols, mask);
    /* CAM, shifted, [0, 1] */
    if (it->cam) {
        if ((st = hv_spine_slice_extract(it->cam, pl, z, sl)) != HV_OK) goto done;
        hv_spine_band_shift(&band, sl, rows, cols, sh);
        for (size_t q = 0; q < px; q++) cam[q] = sh[q] / 255.0f;
    } else {
        memset(cam, 0, px * sizeof *cam);
    }
    /* target (original frame) and healthy vertebrae (shifted frame) */
    for (size_t q = 0; q < px; q++) {
        int l = (int)lrintf(lab[q]);
        rmask[q] = l == it->label ? 1.0f : 0.0f;
        int g = (l > 0 && l < 32 && it->case_grades) ? it->case_grades[l] : -1;
        sl[q] = (g >= 0 && g <= o->healthy_max_grade) ? 1.0f : 0.0f;
    }
    hv_spine_band_shift(&band, sl, rows, cols, normal);
    b->ratio[slot] = (float)hv_spine_slice_ratio(rg, z);
    b->x1[slot] = band.x1;
    b->x2[slot] = band.x2;
    b->band_lo[slot] = band.lo;
    b->height[slot] = (float)band.height;
done:
    free(sl);
    free(sh);
    return st;
}

hv_status hv_model_sample_draw(const hv_model_train_item *it, const hv_model_sample_opts *o,
                               hv_rng *rng, hv_model_batch *b, int64_t slot)
{
    hv_status st = check_args(it, o, b, slot);
    if (st != HV_OK) return st;
    if (!rng) return hv_error_set(HV_ERR_ARG, "sample: no random stream");
    hv_spine_slice_range rg;
    float *lab = malloc((size_t)(b->rows * b->cols) * sizeof *lab);
    if (!lab) return hv_error_set(HV_ERR_NOMEM, "sample: out of memory");
    int64_t z = 0;
    double ratio = 0;
    const hv_spine_plane pl = (hv_spine_plane)o->plane;
    st = hv_spine_slice_range_get(it->labels, it->label, pl, &rg);
    if (st == HV_OK)
        st = hv_spine_slice_draw(it->labels, it->label, pl, &rg, o->band_rows, rng, &z, &ratio,
                                 lab);
    if (st != HV_OK) hv_error_wrap(st, "sample: %s", it->case_id ? it->case_id : "?");
    else st = fill(it, o, &rg, z, lab, b, slot);
    free(lab);
    return st;
}

hv_status hv_model_sample_at(const hv_model_train_item *it, const hv_model_sample_opts *o,
                             int64_t z, hv_model_batch *b, int64_t slot)
{
    hv_status st = check_args(it, o, b, slot);
    if (st != HV_OK) return st;
    hv_spine_slice_range rg;
    float *lab = malloc((size_t)(b->rows * b->cols) * sizeof *lab);
    if (!lab) return hv_error_set(HV_ERR_NOMEM, "sample: out of memory");
    const hv_spine_plane pl = (hv_spine_plane)o->plane;
    st = hv_spine_slice_range_get(it->labels, it->label, pl, &rg);
    if (st == HV_OK) st = hv_spine_slice_extract(it->labels, pl, z, lab);
    if (st == HV_OK) {
        hv_spine_slice_clean(lab, b->rows, b->cols, it->label, 50);
        st = fill(it, o, &rg, z, lab, b, slot);
    } else {
        hv_error_wrap(st, "sample: %s label %d", it->case_id ? it->case_id : "?", it->label);
    }
    free(lab);
    return st;
}
