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
 * box (the others keep -1) and is scored on val; with an output folder it
 * is saved there as senet3d_model.h5 (hv_model_senet3d_save,
 * src/model/senet3d_io.c), which `measure --grader senet3d:MODEL` grades a
 * single case with.
 *
 * Input: the 64^3 box (u8, the windowed CT 0..255) averaged over
 * shrink^3 voxels and divided by 255. Every network runs on the CPU
 * backend, whose kernels are deterministic for a given thread count
 * (run.threads, the same on every rank).
 *
 * Folds over the ranks (the SVM's team, gather.c): rank 0 alone reads the
 * store; it broadcasts the rows, the settings and the shrunk boxes (in
 * chunks: a cohort's boxes may pass MPI's int count), fold f is trained by
 * rank (f + 1) % size while rank 0 trains its own folds and the final
 * network, and the others send their folds' val predictions back. A
 * network depends only on the rows, the boxes, the seed and its stream
 * (its fold), never on the rank that trained it, so the grades are the
 * same for any number of ranks; with k ranks the gather takes about
 * (folds + 1) / k networks' time instead of folds + 1.
 *
 * Re-grading (docs/model.md "Re-grading a finished run"): the model file
 * also keeps the folds' val predictions and, on /meta, everything the
 * results depend on: the settings (grader.senet3d_*, grader.seed,
 * grader.folds, the projection and box sides), the OpenMP thread count the
 * kernels ran with, and a digest of the rows (FNV-1a, 64 bits, over each
 * row's case id, label, grade and set in split order and its box's bytes).
 * When a later gather of the same output folder finds all of them equal to
 * its own (and the file's format is this build's), it takes the final
 * network and the fold predictions from the file instead of training: the
 * fold metrics come from the same predictions through hv_svm_cv_finish, and
 * the loaded network (the same float32 parameters) predicts the val rows
 * and every box with the same code as a freshly trained one, so the grades
 * and the tables are the same bytes. Anything else (a missing, older,
 * unreadable or mismatched file, or grader.retrain = 1) trains again, with
 * one log line saying why (a warning when the file is damaged), and the
 * file is then rewritten.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_internal.h"

/* The box u (HV_RUN_BOX^3 bytes) averaged over f^3 voxels into out
 * ((HV_RUN_BOX / f)^3 floats in [0, 1]): hv_model_senet3d_shrink_box, which
 * `measure --grader senet3d:MODEL` feeds its boxes through too. */
static void shrink_box(const uint8_t *u, int f, float *out)
{
    hv_model_senet3d_shrink_box(u, HV_RUN_BOX, f, out);
}

/* The network of the grader.senet3d_* settings (projection width 128). */
static hv_model_senet3d_config net_cfg(const hv_gather_senet3d *se)
{
    return (hv_model_senet3d_config){se->width, {se->blocks, se->blocks, se->blocks, se->blocks},
                                     128};
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
    hv_model_senet3d_config cfg = net_cfg(se);
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

/* The boxes of a job, rank 0 to the team, in chunks of BOX_CHUNK floats;
 * X NULL on a rank that could not allocate them: it still joins every
 * broadcast (into sink), and fails afterwards. */
#define BOX_CHUNK ((size_t)1 << 16)
static void bcast_boxes(MPI_Comm comm, float *X, size_t count)
{
    static float sink[BOX_CHUNK];
    for (size_t at = 0; at < count; at += BOX_CHUNK) {
        size_t k = count - at < BOX_CHUNK ? count - at : BOX_CHUNK;
        MPI_Bcast(X ? X + at : sink, (int)k, MPI_FLOAT, 0, comm);
    }
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

/* Fold fo of cv: a network on the pool rows outside it, its grades of the
 * val rows into a new array *pred (n_val ints, caller frees). */
static hv_status run_fold(const hv_gather_senet3d *se, unsigned seed, int side, const float *X,
                          const int *y, const hv_svm_cv *cv, int fo, hv_nn_backend *be, int **pred)
{
    hv_status st = HV_OK;
    net m = {0};
    size_t *tr = malloc((cv->n_pool ? cv->n_pool : 1) * sizeof *tr), nt = 0;
    *pred = malloc((cv->n_val ? cv->n_val : 1) * sizeof **pred);
    if (!tr || !*pred) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    for (size_t i = 0; i < cv->n_pool; i++)
        if (cv->fold[i] != fo) tr[nt++] = cv->pool[i];
    double t1 = hv_time_now();
    if ((st = train_net(se, seed, fo, side, X, y, tr, nt, be, &m)) != HV_OK) goto done;
    st = predict(&m, se->batch, (size_t)side * side * side, X, cv->val, cv->n_val, *pred);
    if (st == HV_OK)
        hv_log_info("gather: senet3d fold %d (%zu training rows) trained in %.2f s", fo, nt,
                    hv_time_now() - t1);
done:
    net_free(&m);
    free(tr);
    if (st != HV_OK) {
        free(*pred);
        *pred = NULL;
    }
    return st;
}

hv_status hv__senet3d_team_serve(hv_gather_team *t, const long hdr[5], const hv_svm_row *rows,
                                 hv_status st)
{
    const size_t n = (size_t)hdr[1];
    const int folds = (int)hdr[2];
    const unsigned seed = (unsigned)hdr[3];
    hv_gather_senet3d se;
    MPI_Bcast(&se, (int)sizeof se, MPI_BYTE, 0, t->comm);
    const int side = HV_RUN_BOX / se.shrink;
    const size_t vox = (size_t)side * side * side;
    float *X = st == HV_OK && n ? malloc(n * vox * sizeof *X) : NULL;
    int *y = malloc((n ? n : 1) * sizeof *y), *buf = NULL, *pred = NULL;
    bcast_boxes(t->comm, X, n * vox);
    hv_svm_cv *cv = NULL;
    hv_nn_backend *be = NULL;
    if (st == HV_OK && ((n && !X) || !y))
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory for %zu boxes", n);
    for (size_t i = 0; st == HV_OK && i < n; i++) y[i] = rows[i].grade;
    if (st == HV_OK) st = hv_svm_cv_begin(rows, n, folds, seed, HV_SVM_LIBSVM, &cv);
    if (st == HV_OK) st = hv_nn_backend_create_cpu(&be);
    if (st == HV_OK && !(buf = malloc((cv->n_val + 1) * sizeof *buf)))
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
    for (int f = 0; f < folds; f++) {
        if (hv__gather_fold_owner(f, t->size) != t->rank) continue;
        hv_status fs = st;
        if (fs == HV_OK && (fs = run_fold(&se, seed, side, X, y, cv, f, be, &pred)) != HV_OK) {
            hv_log_error("gather: senet3d fold %d: %s", f, hv_error_detail());
            st = fs;
        }
        hv__gather_team_send(t, f, fs, pred, cv ? cv->n_val : 0, buf);
        free(pred);
        pred = NULL;
    }
    hv_nn_backend_free(be);
    hv_svm_cv_free(cv);
    free(buf);
    free(y);
    free(X);
    return st;
}

/* A row's identity, grade and set into the rows' digest h (its box is added
 * by the caller). */
static uint64_t digest_row(uint64_t h, const hv_split_entry *e)
{
    char t[64];
    int k = snprintf(t, sizeof t, "%d %d %d\n", e->label, e->grade, (int)e->set);
    h = hv_model_senet3d_fnv1a(h, e->case_id, strlen(e->case_id) + 1); /* with its NUL */
    return hv_model_senet3d_fnv1a(h, t, k > 0 ? (size_t)k : 0);
}

/* What the results depend on, as /meta strings of the model file: the
 * file's own keys (written from hv_model_senet3d_info) and the gather's
 * (cv's kv), each with the name a user knows it by. */
enum { KEY_LEN = 48, N_KEYS = 16, N_OWN = 7 };
typedef struct want_key {
    const char *key, *name;
    char val[KEY_LEN];
} want_key;

static void want_keys(const hv_gather_senet3d *se, const hv_gather_opts *o, uint64_t digest,
                      want_key *w)
{
    const hv_model_senet3d_config c = net_cfg(se);
    static const char *const names[N_KEYS][2] = {
        /* the file's own (hv_model_senet3d_save), compared too */
        {"width", "grader.senet3d_width"},
        {"blocks", "grader.senet3d_blocks"},
        {"proj_dim", "the projection width"},
        {"box", "the box side"},
        {"shrink", "grader.senet3d_shrink"},
        {"batch", "grader.senet3d_batch"},
        {"seed", "grader.seed"},
        /* the gather's */
        {"folds", "grader.folds"},
        {"supcon_steps", "grader.senet3d_supcon_steps"},
        {"cls_steps", "grader.senet3d_cls_steps"},
        {"lr_supcon", "grader.senet3d_lr_supcon"},
        {"lr_cls", "grader.senet3d_lr_cls"},
        {"temperature", "grader.senet3d_temperature"},
        {"threads", "the OpenMP thread count (run.threads)"},
        {"rows_digest", "the rows"},
        {"written_by", NULL}, /* provenance only, not compared */
    };
    for (int i = 0; i < N_KEYS; i++) w[i] = (want_key){names[i][0], names[i][1], ""};
    snprintf(w[0].val, KEY_LEN, "%d", c.width);
    snprintf(w[1].val, KEY_LEN, "%d,%d,%d,%d", c.blocks[0], c.blocks[1], c.blocks[2],
             c.blocks[3]);
    snprintf(w[2].val, KEY_LEN, "%d", c.proj_dim);
    snprintf(w[3].val, KEY_LEN, "%d", HV_RUN_BOX);
    snprintf(w[4].val, KEY_LEN, "%d", se->shrink);
    snprintf(w[5].val, KEY_LEN, "%d", se->batch);
    snprintf(w[6].val, KEY_LEN, "%u", o->seed);
    snprintf(w[7].val, KEY_LEN, "%d", o->folds);
    snprintf(w[8].val, KEY_LEN, "%d", se->supcon_steps);
    snprintf(w[9].val, KEY_LEN, "%d", se->cls_steps);
    snprintf(w[10].val, KEY_LEN, "%.17g", se->lr_supcon);
    snprintf(w[11].val, KEY_LEN, "%.17g", se->lr_cls);
    snprintf(w[12].val, KEY_LEN, "%.17g", se->temperature);
    snprintf(w[13].val, KEY_LEN, "%d", omp_get_max_threads());
    snprintf(w[14].val, KEY_LEN, "%016llx", (unsigned long long)digest);
    snprintf(w[15].val, KEY_LEN, "healthivert %s (%s)", hv_version(), hv_git_revision());
}

/* The final network of the file at path into *m, on be, ready to predict
 * batches of se->batch, and its fold predictions into fp (checked against
 * the file's content digest). */
static hv_status load_net(const char *path, const hv_gather_senet3d *se, int side, int n_folds,
                          size_t n_val, int *fp, hv_nn_backend *be, net *m)
{
    hv_status st = HV_OK;
    const hv_model_senet3d_config cfg = net_cfg(se);
    const hv_model_senet3d_train_opts to = {se->lr_supcon, se->lr_cls, se->temperature,
                                            {1, 1, 1, 1}}; /* unused: no steps */
    hv_rng init;
    hv_rng_seed(&init, 0, 0); /* overwritten by the file's values */
    memset(m, 0, sizeof *m);
    if ((st = hv_nn_params_create(&m->ps)) != HV_OK ||
        (st = hv_model_senet3d_params(m->ps, &cfg, &init)) != HV_OK ||
        (st = hv_model_senet3d_load_cv(path, m->ps, n_folds, n_val, fp)) != HV_OK ||
        (st = hv_model_senet3d_trainer_create(m->ps, &cfg, be, se->batch, side, side, side, &to,
                                              &m->t)) != HV_OK)
        net_free(m);
    return st;
}

/* 1 when the model file at path holds a training of exactly these settings
 * and rows (w): its final network into *m and its fold predictions into
 * cv; 0 otherwise, with one log line saying why (a warning when the file
 * cannot be read). */
static int reuse(const char *path, const hv_gather_senet3d *se, const want_key *w, int side,
                 hv_svm_cv *cv, hv_nn_backend *be, net *m)
{
    char got[KEY_LEN];
    int *fp = NULL, ok = 0;
    hv_model_senet3d_grader *gr = NULL;
    if (se->retrain) {
        hv_log_info("gather: senet3d: retraining: grader.retrain = 1");
        return 0;
    }
    if (access(path, F_OK) != 0) {
        hv_log_info("gather: senet3d: training (no senet3d_model.h5 in the output folder to "
                    "reuse)");
        return 0;
    }
    /* the file as measure would read it: HDF5, kind senet3d, a format this
     * build reads, settings and parameters that fit */
    if (hv_model_senet3d_grader_open(path, &gr) != HV_OK) {
        hv_log_warn("gather: senet3d: retraining: senet3d_model.h5 cannot be reused (%s); it is "
                    "written again", hv_error_detail());
        return 0;
    }
    hv_model_senet3d_grader_free(gr);
    if (hv_nn_checkpoint_meta(path, "senet3d_format", got, sizeof got) != HV_OK ||
        strtol(got, NULL, 10) != HV_MODEL_SENET3D_FORMAT) {
        hv_log_info("gather: senet3d: retraining: senet3d_model.h5 has format %s, this build "
                    "re-grades from format %d (which keeps the fold results)", got,
                    HV_MODEL_SENET3D_FORMAT);
        return 0;
    }
    for (int i = 0; i < N_KEYS; i++) {
        if (!w[i].name) continue;
        if (hv_nn_checkpoint_meta(path, w[i].key, got, sizeof got) != HV_OK) {
            hv_log_warn("gather: senet3d: retraining: senet3d_model.h5 has no /meta %s (%s)",
                        w[i].key, hv_error_detail());
            return 0;
        }
        if (strcmp(got, w[i].val) != 0) {
            if (!strcmp(w[i].key, "rows_digest"))
                hv_log_info("gather: senet3d: retraining: the rows changed since "
                            "senet3d_model.h5 was written (split entries, grades, sets or boxes; "
                            "digest %s, the file's %s)", w[i].val, got);
            else
                hv_log_info("gather: senet3d: retraining: %s is %s, senet3d_model.h5 was "
                            "trained with %s", w[i].name, w[i].val, got);
            return 0;
        }
    }
    const size_t nv = cv->n_val, np = (size_t)cv->n_folds * nv;
    fp = malloc((np ? np : 1) * sizeof *fp);
    if (!fp) hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
    else ok = load_net(path, se, side, cv->n_folds, nv, fp, be, m) == HV_OK;
    for (int f = 0; ok && f < cv->n_folds; f++) {
        int *p = malloc((nv ? nv : 1) * sizeof *p);
        if (!p) {
            hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
            ok = 0;
            break;
        }
        memcpy(p, fp + (size_t)f * nv, nv * sizeof *p);
        free(cv->folds[f].pred);
        cv->folds[f].pred = p;
    }
    if (!ok) {
        net_free(m);
        hv_log_warn("gather: senet3d: retraining: senet3d_model.h5 cannot be reused (%s); it is "
                    "written again", hv_error_detail());
    } else {
        hv_log_info("gather: senet3d: reusing senet3d_model.h5 (same settings, rows and format): "
                    "its final network and %d folds' val predictions, no network trained",
                    cv->n_folds);
    }
    free(fp);
    return ok;
}

/* Every network of the protocol: the folds (shared out over the team) into
 * cv, the final one on train+test into *m. */
static hv_status train_all(const hv_gather_senet3d *se, const hv_gather_opts *o,
                           hv_gather_team *team, const hv_svm_row *rows, size_t nr, int side,
                           float *X, const int *yall, hv_svm_cv *cv, hv_nn_backend *be, net *m)
{
    hv_status st = HV_OK;
    const size_t vox = (size_t)side * side * side;
    if (team) { /* from here on the team's ranks wait for their folds' sends */
        long hdr[5] = {HV_TEAM_SENET3D, (long)nr, o->folds, (long)o->seed, 0};
        if ((st = hv__gather_team_start(team, hdr, rows, nr)) != HV_OK) return st;
        hv_gather_senet3d sb = *se;
        MPI_Bcast(&sb, (int)sizeof sb, MPI_BYTE, 0, team->comm);
        bcast_boxes(team->comm, X, nr * vox);
    }
    for (int fo = 0; fo < cv->n_folds; fo++) {
        if (hv__gather_fold_owner(fo, team ? team->size : 1) != 0) continue;
        int *fp = NULL;
        if ((st = run_fold(se, o->seed, side, X, yall, cv, fo, be, &fp)) != HV_OK) goto collect;
        free(cv->folds[fo].pred);
        cv->folds[fo].pred = fp;
    }
    /* the final network on train+test, while the team trains its folds */
    st = train_net(se, o->seed, cv->n_folds, side, X, yall, cv->pool, cv->n_pool, be, m);
collect:
    if (team) {
        hv_status cst = hv__gather_team_collect(team, cv, "senet3d");
        if (st == HV_OK) st = cst;
    }
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
    size_t *all = NULL, *wait = NULL;
    float *X = NULL, *Xv = NULL;
    uint8_t *u = NULL;
    int *yall = NULL, *pred = NULL, *yt = NULL, *qp = NULL, *fold_pred = NULL, *rp = NULL;
    long *rvi = NULL; /* row r's vertebra in v */
    char *mpath = NULL;
    want_key keys_want[N_KEYS];
    hv_svm_cv *cv = NULL;
    hv_nn_backend *be = NULL;
    hv_gather_team *team = o->team && o->team->size > 1 ? o->team : NULL;
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
    rvi = malloc(ns * sizeof *rvi);
    u = malloc(HV_RUN_BOX_BYTES);
    if (!keys || !slot || !rows || !X || !yall || !rvi || !u) {
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
    uint64_t digest = HV_MODEL_SENET3D_FNV_OFFSET;
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
        digest = hv_model_senet3d_fnv1a(digest_row(digest, e), u, HV_RUN_BOX_BYTES);
        yall[nr] = e->grade;
        rvi[nr] = vi;
        shrink_box(u, f, X + nr * vox);
        nr++;
    }
    if (no_rhlv || no_box)
        hv_log_info("gather: senet3d uses %zu rows; %zu split entries have no measured vertebra "
                    "with finite RHLV, %zu no crop box (no crop, or a case finished under "
                    "another grader.method)", nr, no_rhlv, no_box);
    /* the SVM's plan: rows, folds, pool and val (no SVM is trained) */
    if ((st = hv_svm_cv_begin(rows, nr, o->folds, o->seed, HV_SVM_LIBSVM, &cv)) != HV_OK) {
        hv_error_wrap(st, "senet3d");
        goto done;
    }
    if ((st = hv_nn_backend_create_cpu(&be)) != HV_OK) goto done;
    want_keys(se, o, digest, keys_want);
    if (o->out_dir && !(mpath = hv_strfmt("%s/senet3d_model.h5", o->out_dir))) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    double t0 = hv_time_now();
    const int reused = mpath && reuse(mpath, se, keys_want, side, cv, be, &m);
    if (!reused) st = train_all(se, o, team, rows, nr, side, X, yall, cv, be, &m);
    if (st == HV_OK) st = hv_svm_cv_finish(cv);
    if (st != HV_OK) goto done;
    if (!reused)
        hv_log_info("gather: senet3d protocol (%zu train+test rows, %d folds on %d rank(s), %d^3 "
                    "input, width %d) in %.2f s", cv->n_pool, cv->n_folds, team ? team->size : 1,
                    side, se->width, hv_time_now() - t0);
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
    if (o->out_dir) {
        /* the rows as used, with their folds and the final network's grades
         * (grading_rows.c), as the SVM's */
        if (!(rp = malloc((nr ? nr : 1) * sizeof *rp))) {
            st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
            goto done;
        }
        for (size_t r = 0; r < nr; r++) rp[r] = v[rvi[r]].grade_pred;
        if ((st = hv__gather_rows_csv(o->out_dir, rows, nr, cv, rp)) != HV_OK) goto done;
    }
    if (mpath && !reused) {
        /* the final network, for `measure --grader senet3d:MODEL`, with the
         * fold predictions and the keys a re-grade compares (the file's own
         * ones are written from info) */
        hv_model_senet3d_info info = {net_cfg(se), HV_RUN_BOX, f, se->batch, (long)cv->n_pool,
                                      o->seed};
        const char *kv[2 * (N_KEYS - N_OWN)];
        for (int i = N_OWN; i < N_KEYS; i++) {
            kv[2 * (i - N_OWN)] = keys_want[i].key;
            kv[2 * (i - N_OWN) + 1] = keys_want[i].val;
        }
        const size_t np = (size_t)cv->n_folds * cv->n_val;
        fold_pred = malloc((np ? np : 1) * sizeof *fold_pred);
        if (!fold_pred) {
            st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
            goto done;
        }
        for (int fo = 0; fo < cv->n_folds; fo++)
            memcpy(fold_pred + (size_t)fo * cv->n_val, cv->folds[fo].pred,
                   cv->n_val * sizeof *fold_pred);
        hv_model_senet3d_cv rec = {cv->n_folds, cv->n_val, fold_pred, kv, N_KEYS - N_OWN};
        st = hv_model_senet3d_save_cv(mpath, m.ps, &info, &rec);
    }
done:
    net_free(&m);
    hv_nn_backend_free(be);
    hv_svm_cv_free(cv);
    free(keys);
    free(slot);
    free(rows);
    free(all);
    free(wait);
    free(qp);
    free(X);
    free(Xv);
    free(u);
    free(yall);
    free(pred);
    free(yt);
    free(fold_pred);
    free(rp);
    free(rvi);
    free(mpath);
    return st;
}
