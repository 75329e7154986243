/*
 * slices.c: 2.5D slices of a vertebra crop, the slice ranges and the seeded
 * training draw, and the fixed-height band with the shifted input (spec §3.2,
 * §3.3, §4, §8).
 *
 * Differences from the reference, on purpose:
 *  - target rows are half-open [x1, x2) everywhere, so the rows cut out are
 *    exactly the vertebra's rows (the reference keeps its last row x2 below
 *    the band) and the band is one height (40 rows) in training and
 *    inference (the reference uses 41 rows at inference);
 *  - the training draw returns HV_ERR_NOT_FOUND after 100 rejected draws
 *    instead of crashing the data loader;
 *  - randomness only from the caller's hv_rng stream.
 */
#include "spine_internal.h"

#include <stdlib.h>
#include <string.h>

void hv_spine_slice_dims(const hv_volume *crop, hv_spine_plane plane, int64_t *rows,
                         int64_t *cols)
{
    *rows = crop->dim[2];
    if (plane == HV_SPINE_SAGITTAL) *cols = crop->dim[1];
    else *cols = crop->dim[0] > crop->dim[1] ? crop->dim[0] : crop->dim[1];
}

hv_status hv_spine_slice_extract(const hv_volume *crop, hv_spine_plane plane, int64_t index,
                                 float *out)
{
    int64_t rows, cols;
    if (!crop || !out) return hv_error_set(HV_ERR_ARG, "slice: missing input");
    hv_spine_slice_dims(crop, plane, &rows, &cols);
    const int64_t I = crop->dim[0], J = crop->dim[1], K = crop->dim[2];
    int64_t lim = plane == HV_SPINE_SAGITTAL ? I : J;
    if (index < 0 || index >= lim)
        return hv_error_set(HV_ERR_ARG, "%s slice %lld outside [0, %lld)",
                            plane == HV_SPINE_SAGITTAL ? "sagittal" : "coronal",
                            (long long)index, (long long)lim);
    memset(out, 0, (size_t)(rows * cols) * sizeof *out);
    /* the crops' own dtypes (F32 CT, U8 labels) without a per-voxel call */
    if (crop->dtype == HV_DTYPE_F32 || crop->dtype == HV_DTYPE_U8) {
        const float *f = crop->data;
        const uint8_t *u = crop->data;
        const int is_f = crop->dtype == HV_DTYPE_F32;
        for (int64_t r = 0; r < rows; r++) {
            int64_t k = K - 1 - r;
            float *o = out + r * cols;
            if (plane == HV_SPINE_SAGITTAL) {
                for (int64_t c = 0; c < cols; c++) {
                    size_t q = hv_vol_idx(crop, index, J - 1 - c, k);
                    o[c] = is_f ? f[q] : (float)u[q];
                }
            } else {
                int64_t off = (cols - I) / 2;
                size_t q0 = hv_vol_idx(crop, 0, index, k);
                for (int64_t x = 0; x < I; x++) {
                    size_t q = q0 + (size_t)(I - 1 - x);
                    o[off + x] = is_f ? f[q] : (float)u[q];
                }
            }
        }
        return HV_OK;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = K - 1 - r;                       /* cranial at the top */
        float *o = out + r * cols;
        if (plane == HV_SPINE_SAGITTAL) {
            for (int64_t c = 0; c < cols; c++)       /* anterior at column 0 */
                o[c] = (float)hv_vol_get(crop, hv_vol_idx(crop, index, J - 1 - c, k));
        } else {
            int64_t off = (cols - I) / 2;            /* patient right on the left */
            for (int64_t x = 0; x < I; x++)
                o[off + x] = (float)hv_vol_get(crop, hv_vol_idx(crop, I - 1 - x, index, k));
        }
    }
    return HV_OK;
}

hv_status hv_spine_slice_range_get(const hv_volume *crop_labels, int label, hv_spine_plane plane,
                                   hv_spine_slice_range *out)
{
    memset(out, 0, sizeof *out);
    if (!crop_labels) return hv_error_set(HV_ERR_ARG, "slice range: no labels");
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t k = 0; k < crop_labels->dim[2]; k++)
        for (int64_t j = 0; j < crop_labels->dim[1]; j++)
            for (int64_t i = 0; i < crop_labels->dim[0]; i++) {
                if (hv_spine_label_at(crop_labels, hv_vol_idx(crop_labels, i, j, k)) != label)
                    continue;
                int64_t z = plane == HV_SPINE_SAGITTAL ? i : j;
                if (z < lo) lo = z;
                if (z > hi) hi = z;
            }
    if (hi < 0) return hv_error_set(HV_ERR_EMPTY, "vertebra %d is absent from the crop", label);
    int64_t L = hi - lo + 1, M = (int64_t)(0.8 * (double)L);
    if (M < 1) M = 1;
    out->extent_lo = lo;
    out->extent_len = L;
    out->first = lo + (L - M) / 2;
    out->count = M;
    out->centre = (double)out->first + (double)(M - 1) / 2.0;
    return HV_OK;
}

double hv_spine_slice_ratio(const hv_spine_slice_range *r, int64_t z)
{
    double d = (double)z - r->centre;
    if (d < 0) d = -d;
    return r->extent_len > 0 ? d / (double)r->extent_len * 2.0 : 0.0;
}

hv_status hv_spine_band_find(const float *labels, int64_t rows, int64_t cols, int label,
                             int64_t band_rows, int64_t col_lo, int64_t col_hi,
                             hv_spine_band *out)
{
    memset(out, 0, sizeof *out);
    if (band_rows < 2 || band_rows > rows)
        return hv_error_set(HV_ERR_ARG, "band of %lld rows does not fit %lld rows",
                            (long long)band_rows, (long long)rows);
    if (col_lo < 0 || col_hi > cols || col_hi <= col_lo)
        return hv_error_set(HV_ERR_ARG, "band columns [%lld, %lld) outside [0, %lld)",
                            (long long)col_lo, (long long)col_hi, (long long)cols);
    int64_t x1 = -1, x2 = -1;
    double sum = 0, cnt = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if ((int)lrintf(labels[r * cols + c]) == label) {
                if (x1 < 0) x1 = r;
                x2 = r + 1;
                sum += (double)r;
                cnt += 1;
            }
    if (x1 < 0) return hv_error_set(HV_ERR_EMPTY, "vertebra %d is absent from the slice", label);
    out->height = x2 - x1;
    if (out->height > band_rows) {
        /* as the reference's inference: keep a band-high window around the centre */
        out->too_tall = 1;
        x1 = (int64_t)floor(sum / cnt - (double)band_rows / 2.0 + 0.5);
        if (x1 < 0) x1 = 0;
        if (x1 + band_rows > rows) x1 = rows - band_rows;
        x2 = x1 + band_rows;
    }
    out->x1 = x1;
    out->x2 = x2;
    int64_t mid = (x1 + x2) / 2;
    int64_t lo = mid - band_rows / 2;
    if (lo < 0) lo = 0;
    if (lo + band_rows > rows) lo = rows - band_rows;
    if (lo > x1) lo = x1;                        /* keep the target inside */
    if (lo + band_rows < x2) lo = x2 - band_rows;
    out->lo = lo;
    out->hi = lo + band_rows;
    out->col_lo = col_lo;
    out->col_hi = col_hi;
    return HV_OK;
}

void hv_spine_band_shift(const hv_spine_band *b, const float *in, int64_t rows, int64_t cols,
                         float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
        int64_t src = -1;
        if (r < b->lo) src = r + (b->x1 - b->lo);
        else if (r >= b->hi) src = b->x2 + (r - b->hi);
        if (src < 0 || src >= rows) {
            memset(o, 0, (size_t)cols * sizeof *o);
            continue;
        }
        memcpy(o, in + src * cols, (size_t)cols * sizeof *o);
    }
}

void hv_spine_band_mask(const hv_spine_band *b, int64_t rows, int64_t cols, float *out)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            out[r * cols + c] = (r >= b->lo && r < b->hi && c >= b->col_lo && c < b->col_hi)
                                ? 1.0f : 0.0f;
}

int64_t hv_spine_slice_clean(float *labels, int64_t rows, int64_t cols, int label, int64_t min_px)
{
    size_t n = (size_t)(rows * cols);
    unsigned char *seen = calloc(n, 1);
    int64_t *stack = malloc(n * sizeof *stack), *comp = malloc(n * sizeof *comp);
    int64_t remain = 0;
    if (!seen || !stack || !comp) {
        /* no memory: leave the slice as it is and count it */
        for (size_t q = 0; q < n; q++) remain += (int)lrintf(labels[q]) == label;
        goto done;
    }
    for (size_t s0 = 0; s0 < n; s0++) {
        if (seen[s0] || (int)lrintf(labels[s0]) != label) continue;
        int64_t ns = 0, nc = 0;
        stack[ns++] = (int64_t)s0;
        seen[s0] = 1;
        while (ns > 0) {
            int64_t p = stack[--ns];
            comp[nc++] = p;
            int64_t r = p / cols, c = p % cols;
            for (int dr = -1; dr <= 1; dr++)
                for (int dc = -1; dc <= 1; dc++) {
                    int64_t rr = r + dr, cc = c + dc;
                    if (rr < 0 || cc < 0 || rr >= rows || cc >= cols) continue;
                    int64_t q = rr * cols + cc;
                    if (seen[q] || (int)lrintf(labels[q]) != label) continue;
                    seen[q] = 1;
                    stack[ns++] = q;
                }
        }
        if (nc < min_px) {
            for (int64_t q = 0; q < nc; q++) labels[comp[q]] = 0.0f;
        } else {
            remain += nc;
        }
    }
done:
    free(seen);
    free(stack);
    free(comp);
    return remain;
}

hv_status hv_spine_slice_draw(const hv_volume *crop_labels, int label, hv_spine_plane plane,
                              const hv_spine_slice_range *rgp, int64_t band_rows, hv_rng *rng,
                              int64_t *z, double *ratio, float *label_slice)
{
    hv_status st;
    float *buf = NULL;
    int64_t rows, cols;
    if (!crop_labels || !rgp || !rng || !z || !ratio)
        return hv_error_set(HV_ERR_ARG, "draw: missing input");
    const hv_spine_slice_range rg = *rgp;
    if (rg.count < 1) return hv_error_set(HV_ERR_ARG, "draw: empty slice range");
    hv_spine_slice_dims(crop_labels, plane, &rows, &cols);
    buf = label_slice ? label_slice : malloc((size_t)(rows * cols) * sizeof *buf);
    if (!buf) return hv_error_set(HV_ERR_NOMEM, "draw");
    /* Triangular weights w(z) = 1 - |z - c| / (M - 1): their total. */
    double total = 0;
    for (int64_t q = 0; q < rg.count; q++)
        total += rg.count > 1 ? 1.0 - fabs((double)(rg.first + q) - rg.centre) / (double)(rg.count - 1)
                              : 1.0;
    st = HV_ERR_NOT_FOUND;
    for (int attempt = 0; attempt < 100; attempt++) {
        double u = hv_rng_uniform(rng) * total, acc = 0;
        int64_t pick = rg.first + rg.count - 1;
        for (int64_t q = 0; q < rg.count; q++) {
            acc += rg.count > 1 ? 1.0 - fabs((double)(rg.first + q) - rg.centre) / (double)(rg.count - 1)
                                : 1.0;
            if (u < acc) { pick = rg.first + q; break; }
        }
        if (hv_spine_slice_extract(crop_labels, plane, pick, buf) != HV_OK) { st = HV_ERR_INTERNAL; break; }
        if (hv_spine_slice_clean(buf, rows, cols, label, 50) <= 50) continue;
        int64_t c0 = plane == HV_SPINE_SAGITTAL ? 0 : (cols - crop_labels->dim[0]) / 2;
        int64_t c1 = plane == HV_SPINE_SAGITTAL ? cols : c0 + crop_labels->dim[0];
        hv_spine_band b;
        if (hv_spine_band_find(buf, rows, cols, label, band_rows, c0, c1, &b) != HV_OK) continue;
        if (b.too_tall) continue;
        *z = pick;
        *ratio = hv_spine_slice_ratio(&rg, pick);
        st = HV_OK;
        break;
    }
    if (buf != label_slice) free(buf);
    if (st == HV_ERR_INTERNAL) return hv_error_wrap(st, "draw: slice extraction");
    if (st) return hv_error_set(st, "vertebra %d: no acceptable slice in 100 draws (needs > 50 px "
                                "after cleaning and a height <= %lld rows)", label,
                                (long long)band_rows);
    return HV_OK;
}
