/*
 * cls_train.c: what `healthivert train-classifier` trains on and how it
 * measures itself, without MPI (hv/train.h, "the fracture classifier"):
 * the labelled items of each split, the balanced epoch lists, the slice
 * draws keyed by (seed, epoch, list position), the training step of the
 * SE-ResNet (hv_model_classifier_*), and the validation metrics.
 *
 * Why keyed streams: as in train.c, every draw is a pure function of its
 * coordinates, so the rank count and a resume cannot change a batch and a
 * checkpoint carries no RNG state.
 *
 * The loss is the 2-class cross entropy written as a binary one: with two
 * logits, -log softmax(z)_y = log(1 + exp(-(2y - 1)(z1 - z0))), exactly
 * BCE-with-logits of d = z1 - z0 against y. So the step's loss graph is
 * slice + sub + bce_logits (the engine's ops, their gradients included)
 * instead of a softmax-CE op the engine does not have.
 *
 * Data parallel like the GAN: the batch mean is scaled by batch_local /
 * batch_global, the gradients are packed into one buffer and summed by the
 * caller's reducer before Adam, and batch norm is synchronised through the
 * same reducer (hv_nn_graph_set_reducer), so R ranks compute what one does.
 * A non-finite loss (after the reduction: every rank sees it) stops before
 * backward; the running statistics the forward pass updated are put back
 * from a copy, so nothing of the model changed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/spine.h"
#include "hv/train.h"

/* stream tags (the GAN's use 1 and 2 << 61) */
#define STREAM_CLS_DRAW (4ull << 61)     /* | epoch << 32 | list position */
#define STREAM_CLS_MINORITY (5ull << 61) /* | epoch                       */
#define STREAM_CLS_SHUFFLE (6ull << 61)  /* | epoch                       */

#define SLICE_PX (256 * 256)

/* ------------------------------------------------------------------ plan */

hv_status hv_train_cls_plan_make(const hv_model_trainset *ts, const hv_train_cls_opts *o,
                                 const char *file, hv_train_cls_plan *p)
{
    memset(p, 0, sizeof *p);
    size_t n = hv_model_trainset_size(ts);
    hv_status st = HV_OK;
    p->train = malloc((n ? n : 1) * sizeof *p->train);
    p->train_y = malloc(n ? n : 1);
    p->val = malloc((n ? n : 1) * sizeof *p->val);
    p->val_grade = malloc((n ? n : 1) * sizeof *p->val_grade);
    if (!p->train || !p->train_y || !p->val || !p->val_grade) {
        st = hv_error_set(HV_ERR_NOMEM, "classifier plan: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        hv_model_train_item it;
        if ((st = hv_model_trainset_item(ts, i, &it)) != HV_OK) goto done;
        if (it.split == HV_MODEL_SPLIT_TRAIN) {
            if (it.grade < 0) {
                p->n_unknown_train++;
                continue;
            }
            uint8_t y = it.grade >= o->threshold;
            p->train[p->n_train] = i;
            p->train_y[p->n_train++] = y;
            if (y) p->n_pos++;
            else p->n_neg++;
        } else if (it.split == HV_MODEL_SPLIT_VAL) {
            if (it.grade < 0) {
                p->n_unknown_val++;
                continue;
            }
            p->val[p->n_val] = i;
            p->val_grade[p->n_val++] = it.grade;
        }
    }
    if (p->n_pos == 0 || p->n_neg == 0) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "%s: the train split has %zu fracture(s) (grade >= %d) and %zu "
                          "non-fracture(s) among its graded items (%zu of unknown grade "
                          "skipped): the classifier needs both classes",
                          file, p->n_pos, o->threshold, p->n_neg, p->n_unknown_train);
        goto done;
    }
    if (o->val_every > 0 && p->n_val == 0) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "%s: the val split has no graded item (%zu of unknown grade) to "
                          "validate on (classifier.val_every = %d; 0 turns validation off)",
                          file, p->n_unknown_val, o->val_every);
        goto done;
    }
    p->balance = o->balance;
    size_t big = p->n_pos > p->n_neg ? p->n_pos : p->n_neg;
    p->epoch_len = o->balance == HV_TRAIN_CLS_BALANCE_SAMPLE ? (int64_t)(2 * big) : (int64_t)p->n_train;
    if (p->epoch_len < o->batch) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "%s: an epoch lists %lld item(s) (%zu fractures, %zu non-fractures, "
                          "balance %s), fewer than one global batch (classifier.batch = %d)",
                          file, (long long)p->epoch_len, p->n_pos, p->n_neg,
                          o->balance ? "sample" : "none", o->batch);
        goto done;
    }
    if (p->epoch_len >= (1ll << 32)) {
        st = hv_error_set(HV_ERR_LIMIT, "%s: %lld items per epoch; at most 2^32 - 1", file,
                          (long long)p->epoch_len);
        goto done;
    }
    p->batch_global = o->batch;
    p->steps_per_epoch = p->epoch_len / o->batch;
    p->total_steps = o->steps > 0 ? o->steps : (int64_t)o->epochs * p->steps_per_epoch;
done:
    if (st != HV_OK) hv_train_cls_plan_free(p);
    return st;
}

void hv_train_cls_plan_free(hv_train_cls_plan *p)
{
    free(p->train);
    free(p->train_y);
    free(p->val);
    free(p->val_grade);
    memset(p, 0, sizeof *p);
}

void hv_train_cls_epoch_list(const hv_train_cls_plan *p, uint64_t seed, int64_t epoch,
                             size_t *list)
{
    size_t m = 0;
    if (p->balance == HV_TRAIN_CLS_BALANCE_SAMPLE) {
        /* the larger class once each (fractures when the classes are even),
         * then as many uniform draws with replacement from the other */
        uint8_t big = p->n_pos >= p->n_neg;
        size_t n_big = big ? p->n_pos : p->n_neg, n_small = big ? p->n_neg : p->n_pos;
        for (size_t i = 0; i < p->n_train; i++)
            if (p->train_y[i] == big) list[m++] = i;
        hv_rng rng;
        hv_rng_seed(&rng, seed, STREAM_CLS_MINORITY | (uint64_t)epoch);
        for (size_t d = 0; n_small > 0 && d < n_big; d++) { /* plan_make refuses n_small 0 */
            /* the r-th train item of the smaller class */
            size_t r = (size_t)hv_rng_below(&rng, (uint64_t)n_small), i = 0;
            for (;; i++)
                if (p->train_y[i] != big && r-- == 0) break;
            list[m++] = i;
        }
    } else {
        for (size_t i = 0; i < p->n_train; i++) list[m++] = i;
    }
    hv_rng rng;
    hv_rng_seed(&rng, seed, STREAM_CLS_SHUFFLE | (uint64_t)epoch);
    for (size_t i = m; i > 1; i--) {
        size_t j = (size_t)hv_rng_below(&rng, (uint64_t)i);
        size_t t = list[i - 1];
        list[i - 1] = list[j];
        list[j] = t;
    }
}

hv_status hv_train_cls_slice(const hv_model_train_item *it, int64_t i, int flip, float *out)
{
    if (!it->ct || it->ct->dtype != HV_DTYPE_U8 || it->ct->dim[1] != 256 || it->ct->dim[2] != 256)
        return hv_error_set(HV_ERR_FORMAT, "case %s, label %d: the CT crop is not u8 (*, 256, 256)",
                            it->case_id, it->label);
    hv_status st = hv_spine_slice_extract(it->ct, HV_SPINE_SAGITTAL, i, out);
    if (st != HV_OK) return st;
    for (size_t q = 0; q < SLICE_PX; q++) out[q] /= 255.0f;
    if (flip)
        for (int r = 0; r < 256; r++) {
            float *row = out + (size_t)r * 256;
            for (int c = 0; c < 128; c++) {
                float t = row[c];
                row[c] = row[255 - c];
                row[255 - c] = t;
            }
        }
    return HV_OK;
}

hv_status hv_train_cls_batch_fill(hv_model_trainset *ts, const hv_train_cls_plan *p,
                                  const hv_train_cls_opts *o, int64_t step, int64_t first,
                                  int64_t count, size_t *list, float *x, float *y, int *slices)
{
    if (p->steps_per_epoch <= 0 || first < 0 || count < 0 || first + count > p->batch_global)
        return hv_error_set(HV_ERR_ARG, "classifier batch: bad share [%lld, +%lld) of %lld",
                            (long long)first, (long long)count, (long long)p->batch_global);
    int64_t epoch = step / p->steps_per_epoch;
    int64_t pos0 = (step % p->steps_per_epoch) * p->batch_global + first;
    hv_train_cls_epoch_list(p, (uint64_t)o->seed, epoch, list);
    /* this share's items, read (or kept) by the cache before any draw */
    hv_status hs = hv_model_trainset_hold_order(ts, p->train, list + pos0, (size_t)count);
    if (hs != HV_OK)
        return hv_error_wrap(hs, "step %lld (epoch %lld)", (long long)step, (long long)epoch);
    for (int64_t k = 0; k < count; k++) {
        uint64_t pos = (uint64_t)(pos0 + k);
        size_t ti = list[pos], idx = p->train[ti];
        hv_model_train_item it;
        hv_status st = hv_model_trainset_item(ts, idx, &it);
        if (st != HV_OK) return st;
        hv_rng rng;
        hv_rng_seed(&rng, (uint64_t)o->seed, STREAM_CLS_DRAW | ((uint64_t)epoch << 32) | pos);
        int64_t i = HV_MODEL_CAM_FIRST + (int64_t)hv_rng_below(&rng, HV_MODEL_CAM_COUNT);
        int flip = (int)hv_rng_below(&rng, 2) && o->flip; /* drawn either way */
        st = hv_train_cls_slice(&it, i, flip, x + (size_t)k * SLICE_PX);
        if (st != HV_OK)
            return hv_error_wrap(st, "step %lld (epoch %lld): item %zu (case %s, label %d)",
                                 (long long)step, (long long)epoch, idx, it.case_id, it.label);
        y[k] = (float)p->train_y[ti];
        if (slices) slices[k] = flip ? (int)(-i - 1) : (int)i;
    }
    return HV_OK;
}

/* ------------------------------------------------------------- the model */

struct hv_train_cls {
    int width;
    int64_t batch_local, val_batch;
    double ratio;               /* batch_local / batch_global                   */
    hv_nn_params *ps;
    hv_nn_adam *adam;
    hv_nn_graph *gt, *ge;       /* training, inference                          */
    hv_model_classifier_io tio, eio;
    hv_nn_tensor *ty, *td, *loss;
    float *pack;                /* the trainable gradients, packed              */
    float *snap;                /* the buffers (running statistics), saved      */
    size_t n_train_par, n_buf;
    float *xe;                  /* val_batch slices for predict's padding       */
    hv_model_reduce_fn reduce;
    void *rctx;
};

hv_status hv_train_cls_create(int width, int64_t batch_local, int64_t batch_global,
                              int64_t val_batch, double lr, double beta1, double beta2,
                              hv_rng *rng, hv_nn_backend *be, hv_train_cls **out)
{
    *out = NULL;
    if (width < 1 || batch_local < 1 || batch_global < batch_local || val_batch < 1)
        return hv_error_set(HV_ERR_ARG, "classifier training: width %d, batch %lld of %lld, "
                            "val batch %lld", width, (long long)batch_local,
                            (long long)batch_global, (long long)val_batch);
    hv_train_cls *m = calloc(1, sizeof *m);
    if (!m) return hv_error_set(HV_ERR_NOMEM, "classifier training: out of memory");
    m->width = width;
    m->batch_local = batch_local;
    m->val_batch = val_batch;
    m->ratio = (double)batch_local / (double)batch_global;
    hv_status st;
    if ((st = hv_nn_params_create(&m->ps)) != HV_OK) goto fail;
    if ((st = hv_model_classifier_params(m->ps, width, rng)) != HV_OK) goto fail;
    /* into the backend's memory (nothing moves on a host-memory backend) */
    if ((st = hv_nn_params_bind(m->ps, be)) != HV_OK) goto fail;
    if ((st = hv_nn_adam_create(m->ps, lr, beta1, beta2, 1e-8, &m->adam)) != HV_OK) goto fail;
    /* the training graph: logits -> d = z1 - z0 -> BCE with logits, scaled */
    if ((st = hv_nn_graph_create(&m->gt)) != HV_OK) goto fail;
    if ((st = hv_model_classifier_build(m->gt, m->ps, width, batch_local, 256, 256, &m->tio)) != HV_OK)
        goto fail;
    {
        int64_t ys[2] = {batch_local, 1};
        m->ty = hv_nn_input(m->gt, "y", 2, ys);
        hv_nn_tensor *z1 = hv_nn_slice(m->gt, m->tio.logits, 1, 1, 1);
        hv_nn_tensor *z0 = hv_nn_slice(m->gt, m->tio.logits, 1, 0, 1);
        m->td = hv_nn_sub(m->gt, z1, z0);
        hv_nn_set_output(m->td);
        hv_nn_tensor *l = hv_nn_bce_logits(m->gt, m->td, m->ty);
        m->loss = hv_nn_scale(m->gt, l, (float)m->ratio, 0.0f);
        hv_nn_set_output(m->loss);
    }
    if ((st = hv_nn_graph_status(m->gt)) != HV_OK) goto fail;
    if ((st = hv_nn_graph_plan(m->gt, be, HV_NN_PLAN_TRAIN)) != HV_OK) goto fail;
    if ((st = hv_nn_graph_create(&m->ge)) != HV_OK) goto fail;
    if ((st = hv_model_classifier_build(m->ge, m->ps, width, val_batch, 256, 256, &m->eio)) != HV_OK)
        goto fail;
    if ((st = hv_nn_graph_plan(m->ge, be, 0)) != HV_OK) goto fail;
    for (size_t i = 0; i < hv_nn_params_size(m->ps); i++) {
        hv_nn_param *p = hv_nn_params_at(m->ps, i);
        if (hv_nn_param_trainable(p)) m->n_train_par += (size_t)hv_nn_param_numel(p);
        else m->n_buf += (size_t)hv_nn_param_numel(p);
    }
    m->pack = malloc((m->n_train_par ? m->n_train_par : 1) * sizeof(float));
    m->snap = malloc((m->n_buf ? m->n_buf : 1) * sizeof(float));
    m->xe = malloc((size_t)val_batch * SLICE_PX * sizeof(float));
    if (!m->pack || !m->snap || !m->xe) {
        st = hv_error_set(HV_ERR_NOMEM, "classifier training: out of memory");
        goto fail;
    }
    *out = m;
    return HV_OK;
fail:
    hv_train_cls_free(m);
    return hv_error_wrap(st, "classifier training (width %d)", width);
}

void hv_train_cls_free(hv_train_cls *m)
{
    if (!m) return;
    hv_nn_graph_free(m->gt);
    hv_nn_graph_free(m->ge);
    hv_nn_adam_free(m->adam);
    hv_nn_params_free(m->ps);
    free(m->pack);
    free(m->snap);
    free(m->xe);
    free(m);
}

void hv_train_cls_set_reducer(hv_train_cls *m, hv_model_reduce_fn fn, void *ctx)
{
    m->reduce = fn;
    m->rctx = ctx;
    hv_nn_graph_set_reducer(m->gt, fn, ctx);
}

hv_nn_params *hv_train_cls_params(hv_train_cls *m) { return m->ps; }
int hv_train_cls_width(const hv_train_cls *m) { return m->width; }

/* Copy the buffers out (save) or back (restore), through the parameter
 * copies (the set may live on a device backend). */
static hv_status buffers(hv_train_cls *m, int save)
{
    size_t off = 0;
    for (size_t i = 0; i < hv_nn_params_size(m->ps); i++) {
        hv_nn_param *p = hv_nn_params_at(m->ps, i);
        if (hv_nn_param_trainable(p)) continue;
        size_t n = (size_t)hv_nn_param_numel(p);
        hv_status st = save ? hv_nn_param_get(p, m->snap + off, n)
                            : hv_nn_param_set(p, m->snap + off, n);
        if (st != HV_OK)
            return hv_error_wrap(st, "classifier step: %s the running statistics",
                                 save ? "saving" : "restoring");
        off += n;
    }
    if (!save) hv_nn_params_touch(m->ps);
    return HV_OK;
}

/* Restore the buffers after a failed step; st (returned) says what failed
 * first, a failing restore is logged. */
static hv_status restore(hv_train_cls *m, hv_status st)
{
    if (buffers(m, 0) != HV_OK) hv_log_error("%s", hv_error_detail());
    return st;
}

/* Gradients packed (pack = 1) into m->pack, the host buffer allocated once,
 * or written back from it (0): one round trip per step. */
static hv_status grads(hv_train_cls *m, int pack)
{
    size_t off = 0;
    for (size_t i = 0; i < hv_nn_params_size(m->ps); i++) {
        hv_nn_param *p = hv_nn_params_at(m->ps, i);
        if (!hv_nn_param_trainable(p)) continue;
        size_t n = (size_t)hv_nn_param_numel(p);
        hv_status st = pack ? hv_nn_param_get_grad(p, m->pack + off, n)
                            : hv_nn_param_set_grad(p, m->pack + off, n);
        if (st != HV_OK) return hv_error_wrap(st, "classifier step: gradients");
        off += n;
    }
    return HV_OK;
}

hv_status hv_train_cls_step(hv_train_cls *m, const float *x, const float *y, double *loss,
                            float *d)
{
    size_t n = (size_t)m->batch_local;
    hv_status st;
    if ((st = hv_nn_tensor_set(m->tio.x, x, n * SLICE_PX)) != HV_OK) return st;
    if ((st = hv_nn_tensor_set(m->ty, y, n)) != HV_OK) return st;
    if ((st = buffers(m, 1)) != HV_OK) return st;
    if ((st = hv_nn_graph_forward(m->gt)) != HV_OK)
        return restore(m, hv_error_wrap(st, "classifier step: forward"));
    float l = 0;
    if ((st = hv_nn_tensor_get(m->loss, &l, 1)) != HV_OK) return st;
    if (d && (st = hv_nn_tensor_get(m->td, d, n)) != HV_OK) return st;
    if (m->reduce && m->reduce(m->rctx, &l, 1) != 0)
        return restore(m, hv_error_set(HV_ERR_IO, "classifier step: the reducer failed on the loss"));
    if (loss) *loss = l;
    if (!isfinite(l))
        return restore(m, hv_error_set(HV_ERR_NUMERIC, "classifier step: the cross entropy is %g; "
                                       "the model is left as it was", (double)l));
    hv_nn_params_zero_grad(m->ps);
    if ((st = hv_nn_graph_backward(m->gt, m->loss)) != HV_OK)
        return restore(m, hv_error_wrap(st, "classifier step: backward"));
    if ((st = grads(m, 1)) != HV_OK) return restore(m, st);
    if (m->reduce && m->reduce(m->rctx, m->pack, m->n_train_par) != 0)
        return restore(m, hv_error_set(HV_ERR_IO, "classifier step: the reducer failed on the "
                                       "gradients"));
    /* Adam stops at the first non-finite gradient having updated the
     * parameters before it: look first (the summed gradients, so every rank
     * decides alike; a NaN input can give a finite loss, e.g. through a
     * max-pool that ignores it, and NaN gradients) */
    for (size_t k = 0; k < m->n_train_par; k++)
        if (!isfinite(m->pack[k]))
            return restore(m, hv_error_set(HV_ERR_NUMERIC, "classifier step: a non-finite gradient "
                                           "(the loss was %g); the model is left as it was",
                                           (double)l));
    if (m->reduce && (st = grads(m, 0)) != HV_OK) return restore(m, st);
    if ((st = hv_nn_adam_step(m->adam)) != HV_OK)
        return hv_error_wrap(st, "classifier step: Adam");
    return HV_OK;
}

hv_status hv_train_cls_predict(hv_train_cls *m, const float *x, int64_t n, float *d)
{
    hv_nn_params_touch(m->ps); /* weights changed since the last inference */
    const int64_t b = m->val_batch;
    float lg[2 * 4096];
    float *logits = b <= 4096 ? lg : malloc((size_t)(2 * b) * sizeof(float));
    if (!logits) return hv_error_set(HV_ERR_NOMEM, "classifier predict: out of memory");
    hv_status st = HV_OK;
    for (int64_t i0 = 0; i0 < n && st == HV_OK; i0 += b) {
        int64_t cnt = n - i0 < b ? n - i0 : b;
        const float *src = x + (size_t)i0 * SLICE_PX;
        if (cnt < b) { /* pad with copies of the last slice, dropped below */
            memcpy(m->xe, src, (size_t)cnt * SLICE_PX * sizeof(float));
            for (int64_t k = cnt; k < b; k++)
                memcpy(m->xe + (size_t)k * SLICE_PX, src + (size_t)(cnt - 1) * SLICE_PX,
                       SLICE_PX * sizeof(float));
            src = m->xe;
        }
        if ((st = hv_nn_tensor_set(m->eio.x, src, (size_t)b * SLICE_PX)) != HV_OK) break;
        if ((st = hv_nn_graph_forward(m->ge)) != HV_OK) break;
        if ((st = hv_nn_tensor_get(m->eio.logits, logits, (size_t)(2 * b))) != HV_OK) break;
        for (int64_t k = 0; k < cnt; k++) d[i0 + k] = logits[2 * k + 1] - logits[2 * k];
    }
    if (logits != lg) free(logits);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "classifier predict");
}

/* ------------------------------------------------------------ checkpoints */

static const char *const cls_group[1] = {"C"};

hv_status hv_train_cls_save(const hv_train_cls *m, const char *path, const char *const *meta_kv,
                            size_t n_meta)
{
    for (size_t i = 0; i < n_meta; i++)
        if (!meta_kv[2 * i] || !strcmp(meta_kv[2 * i], "kind") || !strcmp(meta_kv[2 * i], "width"))
            return hv_error_set(HV_ERR_ARG, "classifier save: metadata key %zu is NULL or "
                                "reserved (kind, width)", i);
    char w[32];
    snprintf(w, sizeof w, "%d", m->width);
    const char **kv = malloc(2 * (n_meta + 2) * sizeof *kv);
    if (!kv) return hv_error_set(HV_ERR_NOMEM, "classifier save: out of memory");
    kv[0] = "kind";
    kv[1] = "classifier";
    kv[2] = "width";
    kv[3] = w;
    if (n_meta) memcpy(kv + 4, meta_kv, 2 * n_meta * sizeof *kv);
    const hv_nn_params *ps[1] = {m->ps};
    const hv_nn_adam *ad[1] = {m->adam};
    hv_status st = hv_nn_checkpoint_save_groups(path, 1, cls_group, ps, ad, kv, n_meta + 2);
    free(kv);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "classifier save: %s", path);
}

hv_status hv_train_cls_load(hv_train_cls *m, const char *path)
{
    char buf[64];
    hv_status st = hv_nn_checkpoint_meta(path, "kind", buf, sizeof buf);
    if (st == HV_OK && strcmp(buf, "classifier"))
        st = hv_error_set(HV_ERR_FORMAT, "%s holds a '%s', not a classifier", path, buf);
    if (st == HV_OK && (st = hv_nn_checkpoint_meta(path, "width", buf, sizeof buf)) == HV_OK &&
        atoi(buf) != m->width)
        st = hv_error_set(HV_ERR_FORMAT, "%s holds a classifier of width %s, the model has %d",
                          path, buf, m->width);
    if (st == HV_OK) {
        hv_nn_params *ps[1] = {m->ps};
        hv_nn_adam *ad[1] = {m->adam};
        st = hv_nn_checkpoint_load_groups(path, 1, cls_group, ps, ad);
    }
    if (st == HV_OK) hv_nn_params_touch(m->ps);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "classifier load");
}

/* ------------------------------------------------------------ validation */

void hv_train_cls_metrics_of(const double *p, const int *grade, size_t n, int threshold,
                             hv_train_cls_metrics *m)
{
    memset(m, 0, sizeof *m);
    size_t tp = 0, tn = 0, called[4] = {0, 0, 0, 0};
    double pairs = 0, wins = 0, ce = 0;
    for (size_t i = 0; i < n; i++) {
        if (grade[i] < 0) continue;
        int y = grade[i] >= threshold, hit = p[i] >= 0.5;
        m->n++;
        if (y) m->n_pos++, tp += (size_t)hit;
        else m->n_neg++, tn += (size_t)!hit;
        if (grade[i] <= 3) m->n_grade[grade[i]]++, called[grade[i]] += (size_t)hit;
        double py = y ? p[i] : 1.0 - p[i];
        ce -= log(py > 1e-7 ? py : 1e-7);
        if (!y) continue;
        for (size_t j = 0; j < n; j++) { /* Mann-Whitney: this positive vs every negative */
            if (grade[j] < 0 || grade[j] >= threshold) continue;
            pairs += 1;
            wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
        }
    }
    m->auc = pairs > 0 ? wins / pairs : NAN;
    m->sensitivity = m->n_pos ? (double)tp / (double)m->n_pos : NAN;
    m->specificity = m->n_neg ? (double)tn / (double)m->n_neg : NAN;
    for (int g = 0; g < 4; g++)
        m->recall[g] = m->n_grade[g] ? (double)called[g] / (double)m->n_grade[g] : NAN;
    m->loss = m->n ? ce / (double)m->n : NAN;
}

hv_status hv_train_cls_validate(hv_train_cls *m, hv_model_trainset *ts,
                                const hv_train_cls_plan *p, int threshold, double *prob,
                                hv_train_cls_metrics *out)
{
    const int64_t ns = HV_MODEL_CAM_COUNT;
    float *x = malloc((size_t)ns * SLICE_PX * sizeof(float));
    float *d = malloc((size_t)ns * sizeof(float));
    double *pr = prob ? prob : malloc((p->n_val ? p->n_val : 1) * sizeof(double));
    hv_status st = HV_OK;
    if (!x || !d || !pr) {
        st = hv_error_set(HV_ERR_NOMEM, "classifier validation: out of memory");
        goto done;
    }
    for (size_t k = 0; k < p->n_val && st == HV_OK; k++) {
        hv_model_train_item it;
        if ((st = hv_model_trainset_hold(ts, &p->val[k], 1)) != HV_OK) break;
        if ((st = hv_model_trainset_item(ts, p->val[k], &it)) != HV_OK) break;
        for (int64_t s = 0; s < ns && st == HV_OK; s++)
            st = hv_train_cls_slice(&it, HV_MODEL_CAM_FIRST + s, 0, x + (size_t)s * SLICE_PX);
        if (st == HV_OK) st = hv_train_cls_predict(m, x, ns, d);
        if (st != HV_OK) {
            hv_error_wrap(st, "validation item %zu (case %s, label %d)", p->val[k], it.case_id,
                          it.label);
            break;
        }
        double acc = 0;
        for (int64_t s = 0; s < ns; s++) acc += 1.0 / (1.0 + exp(-(double)d[s]));
        pr[k] = acc / (double)ns;
    }
    if (st == HV_OK) hv_train_cls_metrics_of(pr, p->val_grade, p->n_val, threshold, out);
done:
    free(x);
    free(d);
    if (pr != prob) free(pr);
    return st;
}
