/*
 * grade_senet3d.c: grader.method = senet3d at gather, rank 0 alone: the 3-D
 * SupCon-SENet of issue 15 (src/model/senet3d*.c) in the SVM's protocol
 * (spec section 10), so the two graders' numbers compare like with like.
 *
 * Rows: the split file's entries in its order with a measured vertebra of
 * finite RHLV (the SVM's rows) and a box in /vertebrae/crop3d (a vertebra
 * without a crop, or of a case finished by an attempt under another
 * grader.method, has none and is left out, counted in the log). The folds,
 * the pool (train+test) and the val rows are hv_svm_cv_begin's on those
 * rows, and hv_svm_cv_finish scores each fold's val predictions: the same
 * folds and metrics code as the SVM.
 *
 * Per fold f: a network initialised from grader.seed (stream f), SupCon
 * pre-training steps then classification steps on the pool rows outside
 * fold f, batches drawn from a shuffled order (seed, stream 1000 + f,
 * reshuffled when used up), class weights balanced over those rows
 * (rows / (classes present x rows of the class), scikit-learn's
 * "balanced", as the SVM's); it predicts the val rows. The final network
 * (stream n_folds) trains on the whole pool, predicts every vertebra with a
 * box (the others keep -1) and is scored on val.
 *
 * Input: the 64^3 box (u8, the windowed CT 0..255) averaged over
 * shrink^3 voxels and divided by 255. Every network runs on the CPU
 * backend on rank 0, so the grades do not depend on the number of ranks
 * (the other ranks are released as for the rule); the CPU kernels are
 * deterministic for a given thread count (run.threads).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* The box u (HV_RUN_BOX^3 bytes) averaged over f^3 voxels into out
 * ((HV_RUN_BOX / f)^3 floats in [0, 1]). */
static void shrink_box(const uint8_t *u, int f, float *out)
{
    const int side = HV_RUN_BOX / f;
    const double norm = 1.0 / (255.0 * f * f * f);
    for (int c = 0; c < side; c++)
        for (int b = 0; b < side; b++)
            for (int a = 0; a < side; a++) {
                double sum = 0;
                for (int dc = 0; dc < f; dc++)
                    for (int db = 0; db < f; db++)
                        for (int da = 0; da < f; da++)
                            sum += u[((size_t)(c * f + dc) * HV_RUN_BOX + (size_t)(b * f + db)) *
                                         HV_RUN_BOX +
                                     (size_t)(a * f + da)];
                out[((size_t)c * side + b) * side + a] = (float)(sum * norm);
            }
}

typedef struct net {
    hv_nn_params *ps;
    hv_model_senet3d_trainer *t;
} net;

static void net_free(net *m)
{
    hv_model_senet3d_trainer_free(m->t);
    hv_nn_params_free(m->ps);
    m->t = NULL;
    m->ps = NULL;
}

/* Train a network on rows idx[0..nt) of X (vox floats each) with grades y. */
static hv_status train_net(const hv_gather_senet3d *se, unsigned seed, int stream, int side,
                           const float *X, const int *y, const size_t *idx, size_t nt,
                           hv_nn_backend *be, net *m)
{
    hv_status st = HV_OK;
    const size_t vox = (size_t)side * side * side;
    const int nb = se->batch;
    float *x = malloc((size_t)nb * vox * sizeof *x), *gb = malloc((size_t)nb * sizeof *gb);
    size_t *order = malloc((nt ? nt : 1) * sizeof *order);
    memset(m, 0, sizeof *m);
    if (!x || !gb || !order) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory for a batch of %d", nb);
        goto done;
    }
    if (nt == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "senet3d: no training rows");
        goto done;
    }
    hv_model_senet3d_config cfg = {se->width, {se->blocks, se->blocks, se->blocks, se->blocks},
                                   128};
    hv_model_senet3d_train_opts to = {se->lr_supcon, se->lr_cls, se->temperature, {0}};
    long count[HV_MODEL_SENET3D_GRADES] = {0};
    int present = 0;
    for (size_t i = 0; i < nt; i++) count[y[idx[i]]]++;
    for (int c = 0; c < HV_MODEL_SENET3D_GRADES; c++) present += count[c] > 0;
    for (int c = 0; c < HV_MODEL_SENET3D_GRADES; c++)
        to.class_weights[c] = count[c] ? (float)((double)nt / ((double)present * count[c])) : 0.0f;
    hv_rng init, draw;
    hv_rng_seed(&init, seed, (uint64_t)stream);
    hv_rng_seed(&draw, seed, 1000u + (uint64_t)stream);
    if ((st = hv_nn_params_create(&m->ps)) != HV_OK ||
        (st = hv_model_senet3d_params(m->ps, &cfg, &init)) != HV_OK ||
        (st = hv_model_senet3d_trainer_create(m->ps, &cfg, be, nb, side, side, side, &to, &m->t)) !=
            HV_OK)
        goto done;
    for (size_t i = 0; i < nt; i++) order[i] = idx[i];
    size_t next = nt; /* shuffle before the first batch */
    const int steps = se->supcon_steps + se->cls_steps;
    for (int step = 0; step < steps; step++) {
        for (int b = 0; b < nb; b++) {
            if (next == nt) {
                for (size_t i = nt - 1; i > 0; i--) {
                    size_t j = (size_t)hv_rng_below(&draw, i + 1);
                    size_t tmp = order[i];
                    order[i] = order[j];
                    order[j] = tmp;
                }
                next = 0;
            }
            size_t r = order[next++];
            memcpy(x + (size_t)b * vox, X + r * vox, vox * sizeof *x);
            gb[b] = (float)y[r];
        }
        double loss = 0;
        st = step < se->supcon_steps ? hv_model_senet3d_supcon_step(m->t, x, gb, &loss)
                                     : hv_model_senet3d_cls_step(m->t, x, gb, &loss);
        if (st != HV_OK) {
            hv_error_wrap(st, "senet3d: model %d, %s step %d", stream,
                          step < se->supcon_steps ? "SupCon" : "classification", step);
            goto done;
        }
    }
done:
    if (st != HV_OK) net_free(m);
    free(x);
    free(gb);
    free(order);
    return st;
}

/* The grades of rows idx[0..n) of X into pred, batch by batch (a short last
 * batch padded with its first row; inference uses the running statistics,
 * so padding does not change the others). */
static hv_status predict(const net *m, int nb, size_t vox, const float *X, const size_t *idx,
                         size_t n, int *pred)
{
    float *x = malloc((size_t)nb * vox * sizeof *x);
    float *lg = malloc((size_t)nb * HV_MODEL_SENET3D_GRADES * sizeof *lg);
    hv_status st = HV_OK;
    if (!x || !lg) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    for (size_t at = 0; at < n; at += (size_t)nb) {
        for (int b = 0; b < nb; b++) {
            size_t r = at + (size_t)b < n ? idx[at + (size_t)b] : idx[at];
            memcpy(x + (size_t)b * vox, X + r * vox, vox * sizeof *x);
        }
        if ((st = hv_model_senet3d_predict(m->t, x, lg, NULL)) != HV_OK) goto done;
        for (int b = 0; b < nb && at + (size_t)b < n; b++) {
            const float *l = lg + (size_t)b * HV_MODEL_SENET3D_GRADES;
            int best = 0;
            for (int c = 1; c < HV_MODEL_SENET3D_GRADES; c++)
                if (l[c] > l[best]) best = c;
            pred[at + (size_t)b] = best;
        }
    }
done:
    free(x);
    free(lg);
    return st;
}

hv_status hv_gather_senet3d_run(hv_store *s, hv_run_vrow *v, size_t n, const hv_run_crow *cases,
                                const hv_gather_opts *o, hv_grader_result *g)
{
    hv_status st = HV_OK;
    const hv_gather_senet3d *se = &o->se;
    const int f = se->shrink, side = HV_RUN_BOX / (f > 0 ? f : 1);
    const size_t vox = (size_t)side * side * side;
    hv__vkey *keys = NULL;
    long *slot = NULL;
    hv_svm_row *rows = NULL;
    size_t *tr = NULL, *all = NULL, *wait = NULL;
    float *X = NULL, *Xv = NULL;
    uint8_t *u = NULL;
    int *yall = NULL, *pred = NULL, *yt = NULL, *qp = NULL;
    hv_svm_cv *cv = NULL;
    hv_nn_backend *be = NULL;
    net m = {0};
    if (f != 1 && f != 2 && f != 4)
        return hv_error_set(HV_ERR_ARG, "grader.senet3d_shrink = %d: 1, 2 or 4", f);
    if (!hv_store_has_vol(s, HV_STORE_VOL_CROP3D))
        return hv_error_set(HV_ERR_ARG, "grader.method = senet3d: the store has no "
                            "/vertebrae/crop3d (written by a run with grader.method = senet3d; "
                            "run.fresh = 1 makes every case again)");
    if (!o->split || o->split->n == 0)
        return hv_error_set(HV_ERR_ARG, "grader.method = senet3d needs a split with grades");
    const size_t ns = o->split->n;
    keys = malloc((n ? n : 1) * sizeof *keys);
    slot = malloc((n ? n : 1) * sizeof *slot);
    rows = malloc(ns * sizeof *rows);
    X = malloc(ns * vox * sizeof *X);
    yall = malloc(ns * sizeof *yall);
    u = malloc(HV_RUN_BOX_BYTES);
    if (!keys || !slot || !rows || !X || !yall || !u) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory for %zu boxes", ns);
        goto done;
    }
    /* vertebra i's slot: its case's slots in the store's row order */
    for (size_t i = 0, k = 0; i < n; i++) {
        k = i > 0 && v[i].case_index == v[i - 1].case_index ? k + 1 : 0;
        slot[i] = (long)v[i].case_index * HV_RUN_MAX_VERT + (long)k;
    }
    hv__vkey_sort(keys, v, n, cases);
    size_t nr = 0, no_rhlv = 0, no_box = 0;
    for (size_t q = 0; q < ns; q++) {
        const hv_split_entry *e = &o->split->items[q];
        long vi = hv__vkey_split_row(keys, n, v, e);
        if (vi < 0) {
            no_rhlv++;
            continue;
        }
        int have = 0;
        if ((st = hv_store_read_vol(s, HV_STORE_VOL_CROP3D, slot[vi], u, &have)) != HV_OK)
            goto done;
        if (!have) {
            no_box++;
            continue;
        }
        hv__svm_row_of(&rows[nr], e, &v[vi]);
        yall[nr] = e->grade;
        shrink_box(u, f, X + nr * vox);
        nr++;
    }
    if (no_rhlv || no_box)
        hv_log_info("gather: senet3d uses %zu rows; %zu split entries have no measured vertebra "
                    "with finite RHLV, %zu no crop box (no crop, or a case finished under "
                    "another grader.method)", nr, no_rhlv, no_box);
    /* the SVM's plan: rows, folds, pool and val (no SVM is trained) */
    if ((st = hv_svm_cv_begin(rows, nr, o->folds, o->seed, HV_SVM_LIBSVM, &cv)) != HV_OK) goto done;
    tr = malloc(cv->n_pool * sizeof *tr);
    if (!tr) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    if ((st = hv_nn_backend_create_cpu(&be)) != HV_OK) goto done;
    double t0 = hv_time_now();
    for (int fo = 0; fo < cv->n_folds; fo++) {
        size_t nt = 0;
        for (size_t i = 0; i < cv->n_pool; i++)
            if (cv->fold[i] != fo) tr[nt++] = cv->pool[i];
        double t1 = hv_time_now();
        if ((st = train_net(se, o->seed, fo, side, X, yall, tr, nt, be, &m)) != HV_OK) goto done;
        int *fp = malloc(cv->n_val * sizeof *fp);
        if (!fp) {
            st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
            goto done;
        }
        st = predict(&m, se->batch, vox, X, cv->val, cv->n_val, fp);
        net_free(&m);
        free(cv->folds[fo].pred);
        cv->folds[fo].pred = fp;
        if (st != HV_OK) goto done;
        hv_log_info("gather: senet3d fold %d (%zu training rows) trained in %.2f s", fo, nt,
                    hv_time_now() - t1);
    }
    if ((st = hv_svm_cv_finish(cv)) != HV_OK) goto done;
    /* the final network on train+test */
    if ((st = train_net(se, o->seed, cv->n_folds, side, X, yall, cv->pool, cv->n_pool, be, &m)) !=
        HV_OK)
        goto done;
    hv_log_info("gather: senet3d protocol (%zu train+test rows, %d folds, %d^3 input, width %d) "
                "in %.2f s", cv->n_pool, cv->n_folds, side, se->width, hv_time_now() - t0);
    pred = malloc((cv->n_val ? cv->n_val : 1) * sizeof *pred);
    yt = malloc((cv->n_val ? cv->n_val : 1) * sizeof *yt);
    Xv = malloc((size_t)se->batch * vox * sizeof *Xv);
    all = malloc((size_t)se->batch * sizeof *all);
    wait = malloc((size_t)se->batch * sizeof *wait);
    qp = malloc((size_t)se->batch * sizeof *qp);
    if (!pred || !yt || !Xv || !all || !wait || !qp) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    if ((st = predict(&m, se->batch, vox, X, cv->val, cv->n_val, pred)) != HV_OK) goto done;
    for (size_t i = 0; i < cv->n_val; i++) yt[i] = yall[cv->val[i]];
    if ((st = hv_metrics_classify(yt, pred, cv->n_val, &g->m)) != HV_OK) goto done;
    g->have_metrics = 1;
    snprintf(g->evaluated_on, sizeof g->evaluated_on, "val");
    snprintf(g->method, sizeof g->method, "senet3d");
    hv__grader_cv_result(g, cv);
    /* every vertebra with a box gets the final network's grade, nb boxes
     * a call */
    size_t nq = 0;
    for (size_t i = 0; i < n; i++) v[i].grade_pred = -1;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            int have = 0;
            if ((st = hv_store_read_vol(s, HV_STORE_VOL_CROP3D, slot[i], u, &have)) != HV_OK)
                goto done;
            if (have) {
                shrink_box(u, f, Xv + nq * vox);
                all[nq] = nq;
                wait[nq++] = i;
            }
        }
        if (nq == (size_t)se->batch || (i == n && nq > 0)) {
            if ((st = predict(&m, se->batch, vox, Xv, all, nq, qp)) != HV_OK) goto done;
            for (size_t q = 0; q < nq; q++) v[wait[q]].grade_pred = qp[q];
            nq = 0;
        }
    }
done:
    net_free(&m);
    hv_nn_backend_free(be);
    hv_svm_cv_free(cv);
    free(keys);
    free(slot);
    free(rows);
    free(tr);
    free(all);
    free(wait);
    free(qp);
    free(X);
    free(Xv);
    free(u);
    free(yall);
    free(pred);
    free(yt);
    return st;
}
