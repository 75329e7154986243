/*
 * train.c: what `healthivert train` trains on and how it measures itself,
 * without MPI (hv/train.h): the healthy items of each split, the rank's
 * share of a global batch, the epoch's shuffle and the slice draws keyed by
 * (seed, epoch, item), the validation set at fixed slices and its metrics.
 *
 * Why keyed streams instead of one generator advanced step by step: a
 * generator that is advanced carries state that a checkpoint would have to
 * save, and its sequence would depend on how the items were dealt to ranks.
 * A stream per (seed, epoch, item) makes every draw a pure function of its
 * coordinates: rank counts and resumes cannot change it.
 *
 * The metrics follow spec 6's in-training evaluation, with the band read in
 * the original frame (the composite of spec 5.5 is in that frame): PSNR and
 * SSIM on the band rows x the band mask's columns (all in the sagittal
 * plane, the 64-column strip in the coronal one) (instead of the reference's whole image multiplied by
 * the band mask, whose zeros outside the band inflate both), Dice of the
 * binarised fine segmentation against the target mask, and the height error
 * |H2 - h| / h in %.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv/spine.h"
#include "hv/train.h"

/* stream tags: the high bits keep the three kinds of stream apart */
#define STREAM_SHUFFLE (1ull << 61)
#define STREAM_DRAW (2ull << 61)

void hv_train_gan_opts(const hv_train_opts *o, int64_t batch_local, hv_model_gan_opts *g)
{
    hv_model_gan_opts_default(g);
    g->cnum = o->cnum;
    g->ndf = o->ndf;
    g->batch_local = batch_local;
    g->batch_global = o->batch;
    g->band_rows = o->band_rows;
    g->local_cols = o->local_cols;
    g->lambda_l1 = o->lambda_l1;
    g->lambda_dice_fine = o->lambda_dice_fine;
    g->lambda_dice_coarse = o->lambda_dice_coarse;
    g->lambda_edge = o->lambda_edge;
    g->lambda_height = o->lambda_height;
    g->lambda_gan = o->lambda_gan;
    g->d2_soft = o->d2_soft;
    g->lr = o->lr;
    g->beta1 = o->beta1;
    g->beta2 = o->beta2;
    g->generator = o->generator;
    g->aot_blocks = o->aot_blocks;
}

void hv_train_sample_opts(const hv_train_opts *o, hv_model_sample_opts *s)
{
    hv_model_sample_opts_default(s);
    s->healthy_max_grade = o->healthy_max_grade;
    s->band_rows = o->band_rows;
    s->plane = o->plane;
}

/* ------------------------------------------------------------------ plan */

static int healthy(const hv_model_train_item *it, int max_grade)
{
    return it->grade >= 0 && it->grade <= max_grade;
}

hv_status hv_train_plan_make(const hv_model_trainset *ts, const hv_train_opts *o,
                             const char *file, hv_train_plan *p)
{
    memset(p, 0, sizeof *p);
    size_t n = hv_model_trainset_size(ts);
    hv_status st = HV_OK;
    size_t n_all_train = 0, n_all_val = 0;
    p->train = malloc((n ? n : 1) * sizeof *p->train);
    p->val = malloc((n ? n : 1) * sizeof *p->val);
    if (!p->train || !p->val) {
        st = hv_error_set(HV_ERR_NOMEM, "training plan: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        hv_model_train_item it;
        if ((st = hv_model_trainset_item(ts, i, &it)) != HV_OK) goto done;
        if (it.split == HV_MODEL_SPLIT_TRAIN) {
            n_all_train++;
            if (healthy(&it, o->healthy_max_grade)) p->train[p->n_train++] = i;
        } else if (it.split == HV_MODEL_SPLIT_VAL) {
            n_all_val++;
            if (healthy(&it, o->healthy_max_grade)) p->val[p->n_val++] = i;
        }
    }
    if (p->n_train < (size_t)o->batch) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "%s: the train split has %zu healthy item(s) (grade <= %d, of %zu), "
                          "fewer than one global batch (train.batch = %d)",
                          file, p->n_train, o->healthy_max_grade, n_all_train, o->batch);
        goto done;
    }
    if (o->val_every > 0 && p->n_val == 0) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "%s: the val split has no healthy item (grade <= %d, of %zu) to "
                          "validate on (train.val_every = %d; 0 turns validation off)",
                          file, o->healthy_max_grade, n_all_val, o->val_every);
        goto done;
    }
    if (p->n_train >= (1u << 24)) {
        st = hv_error_set(HV_ERR_LIMIT, "%s: %zu train items; at most 16777215", file, p->n_train);
        goto done;
    }
    p->batch_global = o->batch;
    p->steps_per_epoch = (int64_t)p->n_train / o->batch;
    p->n_epochs_total = (int64_t)o->n_epochs + o->n_epochs_decay;
    p->total_steps = p->n_epochs_total * p->steps_per_epoch;
    if (o->max_steps > 0 && o->max_steps < p->total_steps) p->total_steps = o->max_steps;
done:
    if (st != HV_OK) hv_train_plan_free(p);
    return st;
}

void hv_train_plan_free(hv_train_plan *p)
{
    free(p->train);
    free(p->val);
    memset(p, 0, sizeof *p);
}

void hv_train_share(int64_t batch_global, int nranks, int rank, int64_t *first, int64_t *count)
{
    int64_t q = batch_global / nranks, r = batch_global % nranks;
    *count = q + (rank < r ? 1 : 0);
    *first = rank * q + (rank < r ? rank : r);
}

void hv_train_epoch_order(uint64_t seed, int64_t epoch, size_t n, size_t *perm)
{
    hv_rng rng;
    hv_rng_seed(&rng, seed, STREAM_SHUFFLE | (uint64_t)epoch);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)hv_rng_below(&rng, (uint64_t)i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

hv_status hv_train_batch_fill(hv_model_trainset *ts, const hv_train_plan *p,
                              const hv_model_sample_opts *so, uint64_t seed, int64_t step,
                              int64_t first, int64_t count, size_t *perm, hv_model_batch *b)
{
    if (p->steps_per_epoch <= 0 || count < 0 || count > b->n || first < 0 ||
        first + count > p->batch_global)
        return hv_error_set(HV_ERR_ARG, "training batch: bad share [%lld, +%lld) of %lld",
                            (long long)first, (long long)count, (long long)p->batch_global);
    int64_t epoch = step / p->steps_per_epoch;
    int64_t pos0 = (step % p->steps_per_epoch) * p->batch_global + first;
    hv_train_epoch_order(seed, epoch, p->n_train, perm);
    /* this share's items, read (or kept) by the cache before any draw */
    hv_status hs = hv_model_trainset_hold_order(ts, p->train, perm + pos0, (size_t)count);
    if (hs != HV_OK)
        return hv_error_wrap(hs, "step %lld (epoch %lld)", (long long)step, (long long)epoch);
    for (int64_t k = 0; k < count; k++) {
        size_t idx = p->train[perm[pos0 + k]];
        hv_model_train_item it;
        hv_status st = hv_model_trainset_item(ts, idx, &it);
        if (st != HV_OK) return st;
        hv_rng rng;
        hv_rng_seed(&rng, seed, STREAM_DRAW | ((uint64_t)epoch << 24) | (uint64_t)idx);
        st = hv_model_sample_draw(&it, so, &rng, b, k);
        if (st != HV_OK)
            return hv_error_wrap(st, "step %lld (epoch %lld): item %zu (case %s, label %d)",
                                 (long long)step, (long long)epoch, idx, it.case_id, it.label);
    }
    return HV_OK;
}

/* ------------------------------------------------------------ validation */

hv_status hv_train_valset_make(hv_model_trainset *ts, const hv_train_plan *p,
                               const hv_model_sample_opts *so, hv_train_valset *v)
{
    memset(v, 0, sizeof *v);
    if (p->n_val == 0) return hv_error_set(HV_ERR_EMPTY, "validation: no val item");
    hv_status st = hv_model_batch_alloc(&v->all, (int64_t)p->n_val, 256, 256, so->band_rows);
    if (st != HV_OK) return st;
    v->item = malloc(p->n_val * sizeof *v->item);
    if (!v->item) {
        hv_train_valset_free(v);
        return hv_error_set(HV_ERR_NOMEM, "validation set: out of memory");
    }
    for (size_t k = 0; k < p->n_val; k++) {
        hv_model_train_item it;
        v->item[k] = p->val[k];
        if ((st = hv_model_trainset_hold(ts, &p->val[k], 1)) != HV_OK) break;
        if ((st = hv_model_trainset_item(ts, p->val[k], &it)) != HV_OK) break;
        hv_spine_slice_range rg;
        st = hv_spine_slice_range_get(it.labels, it.label, (hv_spine_plane)so->plane, &rg);
        if (st == HV_OK) {
            int64_t z = (int64_t)floor(rg.centre);
            st = hv_model_sample_at(&it, so, z, &v->all, (int64_t)k);
        }
        if (st != HV_OK) {
            hv_error_wrap(st, "validation item %zu (case %s, label %d)", p->val[k], it.case_id,
                          it.label);
            break;
        }
    }
    if (st != HV_OK) hv_train_valset_free(v);
    return st;
}

void hv_train_valset_free(hv_train_valset *v)
{
    hv_model_batch_free(&v->all);
    free(v->item);
    memset(v, 0, sizeof *v);
}

hv_status hv_train_valout_alloc(hv_train_valout *o, int64_t n, int64_t rows, int64_t cols)
{
    memset(o, 0, sizeof *o);
    size_t px = (size_t)(n * rows * cols);
    o->n = n;
    o->rows = rows;
    o->cols = cols;
    o->composite = malloc((px ? px : 1) * sizeof(float));
    o->seg = malloc((px ? px : 1) * sizeof(float));
    o->height = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!o->composite || !o->seg || !o->height) {
        hv_train_valout_free(o);
        return hv_error_set(HV_ERR_NOMEM, "validation outputs: out of memory");
    }
    return HV_OK;
}

void hv_train_valout_free(hv_train_valout *o)
{
    free(o->composite);
    free(o->seg);
    free(o->height);
    memset(o, 0, sizeof *o);
}

/* Copy item i of src into slot k of dst (same rows, cols, band_rows). */
static void batch_copy_item(hv_model_batch *dst, int64_t k, const hv_model_batch *src, int64_t i)
{
    size_t px = (size_t)(src->rows * src->cols);
#define CP(f) memcpy(dst->f + (size_t)k * px, src->f + (size_t)i * px, px * sizeof(float))
    CP(x);
    CP(mask);
    CP(cam);
    CP(real);
    CP(real_mask);
    CP(normal);
#undef CP
    dst->ratio[k] = src->ratio[i];
    dst->x1[k] = src->x1[i];
    dst->x2[k] = src->x2[i];
    dst->band_lo[k] = src->band_lo[i];
    dst->height[k] = src->height[i];
}

hv_status hv_train_val_infer(hv_model_gan *m, int64_t batch_local, const hv_train_valset *v,
                             hv_train_valout *out)
{
    const hv_model_batch *a = &v->all;
    hv_model_batch c;
    hv_status st = hv_model_batch_alloc(&c, batch_local, a->rows, a->cols, a->band_rows);
    if (st != HV_OK) return st;
    size_t px = (size_t)(a->rows * a->cols);
    float *comp = malloc((size_t)batch_local * px * sizeof(float));
    float *seg = malloc((size_t)batch_local * px * sizeof(float));
    float *h = malloc((size_t)batch_local * sizeof(float));
    if (!comp || !seg || !h) {
        st = hv_error_set(HV_ERR_NOMEM, "validation: out of memory");
        goto done;
    }
    for (int64_t i0 = 0; i0 < a->n; i0 += batch_local) {
        int64_t cnt = a->n - i0 < batch_local ? a->n - i0 : batch_local;
        for (int64_t k = 0; k < batch_local; k++)
            batch_copy_item(&c, k, a, i0 + (k < cnt ? k : cnt - 1));
        if ((st = hv_model_gan_infer(m, &c, comp, seg, h)) != HV_OK) goto done;
        memcpy(out->composite + (size_t)i0 * px, comp, (size_t)cnt * px * sizeof(float));
        memcpy(out->seg + (size_t)i0 * px, seg, (size_t)cnt * px * sizeof(float));
        memcpy(out->height + i0, h, (size_t)cnt * sizeof(float));
    }
done:
    free(comp);
    free(seg);
    free(h);
    hv_model_batch_free(&c);
    return st;
}

hv_status hv_train_val_copy_input(const hv_train_valset *v, hv_train_valout *out)
{
    const hv_model_batch *a = &v->all;
    size_t px = (size_t)(a->rows * a->cols) * (size_t)a->n;
    memcpy(out->composite, a->x, px * sizeof(float));
    memcpy(out->seg, a->mask, px * sizeof(float));
    for (int64_t i = 0; i < a->n; i++) out->height[i] = (float)a->band_rows;
    return HV_OK;
}

hv_status hv_train_val_metrics(const hv_train_valset *v, const hv_train_valout *o,
                               hv_train_metrics *m)
{
    const hv_model_batch *a = &v->all;
    memset(m, 0, sizeof *m);
    int64_t rows = a->rows, cols = a->cols, br = a->band_rows;
    size_t px = (size_t)(rows * cols);
    double *ref = malloc((size_t)(br * cols) * sizeof(double));
    double *img = malloc((size_t)(br * cols) * sizeof(double));
    uint8_t *sa = malloc(px), *sb = malloc(px);
    /* the threshold grid, nearest 0.5 first: of equal Dice means the
     * first found (strictly greater replaces) is the one nearest 0.5 */
    double thr[HV_TRAIN_SEG_THRESHOLDS], dsum[HV_TRAIN_SEG_THRESHOLDS];
    for (int k = 0; k < HV_TRAIN_SEG_THRESHOLDS; k++) {
        const int d = (k + 1) / 2, sign = (k % 2) ? -1 : 1; /* 0.5, 0.45, 0.55, 0.4, ... */
        thr[k] = 0.5 + sign * 0.05 * d;
        dsum[k] = 0;
    }
    hv_status st = HV_OK;
    if (!ref || !img || !sa || !sb) {
        st = hv_error_set(HV_ERR_NOMEM, "validation metrics: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < a->n; i++) {
        const float *real = a->real + (size_t)i * px, *comp = o->composite + (size_t)i * px;
        int64_t lo = a->band_lo[i];
        if (lo < 0 || lo + br > rows) {
            st = hv_error_set(HV_ERR_INTERNAL, "validation item %lld: band [%lld, +%lld) outside %lld rows",
                              (long long)i, (long long)lo, (long long)br, (long long)rows);
            goto done;
        }
        /* the band's columns: those of the mask's first band row (all of
         * them in the sagittal plane, the pasted strip in the coronal one) */
        const float *mrow = a->mask + (size_t)i * px + (size_t)(lo * cols);
        int64_t c0 = 0, c1 = cols;
        while (c0 < cols && !(mrow[c0] > 0.5f)) c0++;
        while (c1 > c0 && !(mrow[c1 - 1] > 0.5f)) c1--;
        if (c1 - c0 < 7) c0 = 0, c1 = cols; /* no usable mask row: the whole width */
        const int64_t bc = c1 - c0;
        double l1 = 0;
        for (int64_t r = 0; r < br; r++)
            for (int64_t cc = 0; cc < bc; cc++) {
                size_t q = (size_t)((lo + r) * cols + c0 + cc), t = (size_t)(r * bc + cc);
                ref[t] = real[q];
                img[t] = comp[q];
                l1 += fabs(ref[t] - img[t]);
            }
        size_t nb = (size_t)(br * bc);
        m->band_l1 += l1 / (double)nb;
        double psnr = hv_metrics_psnr(ref, img, nb, 2.0);
        m->psnr += isfinite(psnr) ? psnr : 100.0; /* identical band: capped at 100 dB */
        double ssim = 0;
        if ((st = hv_metrics_ssim(ref, img, (int)br, (int)bc, 2.0, &ssim)) != HV_OK) goto done;
        m->ssim += ssim;
        const float *seg = o->seg + (size_t)i * px, *tm = a->real_mask + (size_t)i * px;
        for (size_t q = 0; q < px; q++) {
            sa[q] = tm[q] > 0.5f;
            sb[q] = seg[q] > 0.5f;
        }
        hv_overlap ov;
        hv_metrics_overlap(sa, sb, px, &ov);
        m->dice += ov.dice;
        for (int k = 0; k < HV_TRAIN_SEG_THRESHOLDS; k++) {
            const float t = (float)thr[k];
            for (size_t q = 0; q < px; q++) sb[q] = seg[q] > t;
            hv_metrics_overlap(sa, sb, px, &ov);
            dsum[k] += ov.dice;
        }
        double h = a->height[i];
        m->height_err_pct += fabs((double)o->height[i] - h) / h * 100.0;
    }
    m->n = (size_t)a->n;
    if (a->n > 0) {
        m->band_l1 /= (double)a->n;
        m->psnr /= (double)a->n;
        m->ssim /= (double)a->n;
        m->dice /= (double)a->n;
        m->height_err_pct /= (double)a->n;
        int best = 0;
        for (int k = 1; k < HV_TRAIN_SEG_THRESHOLDS; k++)
            if (dsum[k] > dsum[best]) best = k;
        m->dice_best = dsum[best] / (double)a->n;
        m->seg_threshold = thr[best];
    } else {
        m->dice_best = m->seg_threshold = NAN;
    }
done:
    free(ref);
    free(img);
    free(sa);
    free(sb);
    return st;
}
