/*
 * src/model/gan.c: the HealthiVert-GAN training step (spec 6): generator G
 * (hv_model_generator_*), three PatchGANs D1-D3 (hv_model_patchgan_*), one
 * Adam each, data parallel through a caller's summing reducer.
 *
 * Graphs, all planned once at create time (no allocation in the step):
 *   gg     G for training plus a seed term S = sum_o sum(o * seed_o) over its
 *          six outputs: the step sets the seeds to d L / d o (from the loss
 *          graph) and runs gg's backward from S, which gives G's gradients
 *          without building the losses into G's graph (the composite needs
 *          G's heads first; see losses.c);
 *   L      the generator-loss graph (losses.c), inputs = G's outputs;
 *   dk.gf  Dk on a "fake" input that carries a gradient, loss
 *          w * BCE(Dk(x), target) with w and target set per use (D update:
 *          target 0, w 0.5; generator side: target 1, w lambda_gan);
 *   dk.gr  Dk on the real input (target 1, w 0.5);
 *   gi     G for inference (hv_model_gan_infer).
 * Separate fake and real graphs also give batch norm the reference's
 * statistics: PyTorch runs D(fake) and D(real) as separate calls, so each
 * normalises with its own batch and updates the running statistics in turn.
 * The six D graphs share one arena (hv_nn_graphs_share): each pass is a
 * forward and its backward whose loss and input gradient are read before
 * the next pass, so nothing of one pass is needed after another ran; at
 * batch 12 and ndf 64 that keeps one D graph's activations, gradients and
 * workspace (815 MiB) instead of six (4.9 GiB). Each joins D1's fake graph
 * as soon as it is planned, so the six are never all allocated at once.
 *
 * One step, in the reference's order (optimize_parameters): G forward;
 * composites; generator-side losses computed (their values are checked
 * before any discriminator runs); D1, D2, D3 each on fake.detach() and real,
 * their losses checked, then their Adam steps (the three are independent,
 * so running the three backward passes before the three updates equals the
 * reference's interleaving); then Dk again on the fake with the updated
 * weights and target 1, whose input gradients become the adversarial seeds
 * of the loss graph (that pass runs with the D's parameters frozen,
 * hv_nn_graph_set_frozen, as the reference's set_requires_grad(D, False):
 * their gradients would be zeroed unused before the next D update); the loss graph's backward gives the seeds of gg; gg's
 * backward; G's Adam step.
 *
 * Data parallel: every batch mean is scaled by batch_local / batch_global
 * (in the graphs: the loss weights), nnz(mask) is summed over ranks, each
 * network's gradients are packed into one buffer and summed by one reducer
 * call before its Adam step, D's batch norms are synchronised
 * (hv_nn_graph_set_reducer), and the reported terms are summed too, so every
 * rank sees the global numbers and stops together on a non-finite one.
 * AOT-GAN as the generator (issue 15, o.generator = HV_MODEL_GEN_AOTGAN):
 * the same discriminators, batches, Adams, reducer and order; gg is then
 * AOT-GAN's graph (input: the masked CT and masked target label, image *
 * (1 - mask) + mask, and the mask; output: CT and label channels, tanh) with
 * one seed term sum(out * seed) over its two channels, and L is aot_loss.c's
 * graph (band L1, fine Dice, adversarial seeds; composite of height h). The
 * step's G parts branch on the kind (g_forward_aot, g_backward_aot); the D
 * parts are shared.
 * NaN safety: the buffers (spectral-norm vectors, running statistics) are
 * copied before the step and put back when a term is non-finite, so a
 * refused step leaves every network as it was. A non-finite generator-side
 * adversarial term can only show after the discriminators stepped (it needs
 * their new weights); then G is left untouched and the error says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan_internal.h"

typedef struct dnet {
    hv_nn_params *ps;
    hv_nn_adam *adam;
    hv_nn_graph *gf, *gr;
    hv_nn_tensor *xf, *tf, *wf, *lf; /* fake graph: input, target, weight, loss */
    hv_nn_tensor *xr, *tr, *wr, *lr; /* real graph */
    int64_t nlogit;
} dnet;

struct hv_model_gan {
    hv_model_gan_opts o;
    double ratio; /* batch_local / batch_global */
    hv_nn_backend *be;
    hv_nn_params *gps;
    hv_nn_adam *gadam;
    hv_nn_graph *gg, *gi;
    hv_model_generator_io io, iio;
    hv_nn_tensor *seed[6], *sloss;
    hv__gan_loss L;
    /* AOT-GAN generator (o.generator == HV_MODEL_GEN_AOTGAN; io, iio, L unused) */
    int aot;
    hv_nn_tensor *ax, *amask, *aout, *aseed; /* gg */
    hv_nn_tensor *aix, *aimask, *aiout;      /* gi */
    hv__aot_loss A;
    float *ain, *aob; /* 2 planes each: the masked input, the output */
    dnet d[3];
    hv_model_reduce_fn reduce;
    void *rctx;
    /* host buffers (plane = n * rows * cols floats) */
    size_t plane;
    float *ratio_plane, *w1, *r1, *w2, *r2, *go[4], *p[2], *inv_h;
    float *fake[3], *real3, *bandcol, *gtmp, *seed_comp, *seed_seg, *zeros_plane;
    float *t0, *t1;  /* logits-sized 0 and 1 targets */
    float *pack;     /* the largest network's trainable count */
    size_t npack;
    float *snap;     /* non-trainable buffers of the four networks */
    size_t nsnap;
};

void hv_model_gan_opts_default(hv_model_gan_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->cnum = 16;
    o->ndf = 64;
    o->batch_local = 1;
    o->batch_global = 1;
    o->rows = 256;
    o->cols = 256;
    o->band_rows = 40;
    o->local_cols = 70;
    o->lambda_l1 = 200;
    o->lambda_dice_fine = 15;
    o->lambda_dice_coarse = 10;
    o->lambda_edge = 800;
    o->lambda_height = 40;
    o->lambda_gan = 1.0 / 6.0;
    o->d2_soft = 1;
    o->lr = 2e-4;
    o->beta1 = 0.5;
    o->beta2 = 0.999;
    o->generator = HV_MODEL_GEN_HEALTHIVERT;
    o->aot_blocks = 8;
}

const int hv_model_aotgan_rates[4] = {1, 2, 4, 8};

const char *hv_model_generator_kind_name(int kind)
{
    return kind == HV_MODEL_GEN_HEALTHIVERT ? "healthivert"
           : kind == HV_MODEL_GEN_AOTGAN    ? "aotgan"
                                            : NULL;
}

double hv_model_lr_linear(int64_t epoch, int64_t n_epochs, int64_t n_epochs_decay)
{
    /* spec 6: 1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1) */
    int64_t over = epoch + 1 - n_epochs;
    if (over < 0) over = 0;
    return 1.0 - (double)over / (double)(n_epochs_decay + 1);
}

static const char *const d_prefix[3] = {"D1.", "D2.", "D3."};

static hv_status check_opts(const hv_model_gan_opts *o)
{
    if (o->generator == HV_MODEL_GEN_AOTGAN) {
        if (o->cnum < 1 || o->cnum > 4096)
            return hv_error_set(HV_ERR_ARG, "model gan: AOT-GAN width (cnum) %d outside 1..4096",
                                o->cnum);
        if (o->aot_blocks < 1 || o->aot_blocks > 64)
            return hv_error_set(HV_ERR_ARG, "model gan: aot_blocks %d outside 1..64", o->aot_blocks);
        /* its blocks reflect-pad by the largest rate (8) at a quarter of the size */
        if (o->rows < 64 || o->cols < 64)
            return hv_error_set(HV_ERR_ARG, "model gan: AOT-GAN needs rows and cols >= 64 (got "
                                "%lld x %lld)", (long long)o->rows, (long long)o->cols);
    } else if (o->generator != HV_MODEL_GEN_HEALTHIVERT) {
        return hv_error_set(HV_ERR_ARG, "model gan: generator kind %d (0 healthivert, 1 aotgan)",
                            o->generator);
    } else if (o->cnum < 2 || o->cnum % 2) {
        return hv_error_set(HV_ERR_ARG, "model gan: cnum %d must be even and >= 2", o->cnum);
    }
    if (o->ndf < 1) return hv_error_set(HV_ERR_ARG, "model gan: ndf %d must be >= 1", o->ndf);
    if (o->batch_local < 1 || o->batch_global < o->batch_local)
        return hv_error_set(HV_ERR_ARG, "model gan: batch_local %lld, batch_global %lld (need 1 <= local <= global)",
                            (long long)o->batch_local, (long long)o->batch_global);
    if (o->rows < 32 || o->cols < 32 || o->rows % 32 || o->cols % 32)
        return hv_error_set(HV_ERR_ARG, "model gan: rows %lld, cols %lld must be multiples of 32",
                            (long long)o->rows, (long long)o->cols);
    if (o->band_rows < 1 || o->band_rows > o->rows)
        return hv_error_set(HV_ERR_ARG, "model gan: band_rows %lld outside 1..rows", (long long)o->band_rows);
    if (o->local_cols < 1 || o->local_cols > o->cols)
        return hv_error_set(HV_ERR_ARG, "model gan: local_cols %lld outside 1..cols", (long long)o->local_cols);
    const double w[] = {o->lambda_l1, o->lambda_dice_fine, o->lambda_dice_coarse, o->lambda_edge,
                        o->lambda_height, o->lambda_gan, o->lr, o->beta1, o->beta2};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!isfinite(w[i]) || w[i] < 0)
            return hv_error_set(HV_ERR_ARG, "model gan: loss weights, lr and betas must be finite and >= 0");
    if (o->beta1 >= 1 || o->beta2 >= 1) return hv_error_set(HV_ERR_ARG, "model gan: betas must be < 1");
    return HV_OK;
}

static hv_status build_d(hv_model_gan *m, int k, hv_rng *rng)
{
    dnet *d = &m->d[k];
    hv_status st;
    const hv_model_gan_opts *o = &m->o;
    const int64_t img[4] = {o->batch_local, 1, o->rows, o->cols}, one = 1;
    if ((st = hv_nn_params_create(&d->ps))) return st;
    if ((st = hv_model_patchgan_params_ndf(d->ps, d_prefix[k], 1, o->ndf, rng))) return st;
    /* into the backend's memory (nothing moves on a host-memory backend) */
    if ((st = hv_nn_params_bind(d->ps, m->be))) return st;
    if ((st = hv_nn_adam_create(d->ps, o->lr, o->beta1, o->beta2, 1e-8, &d->adam))) return st;
    for (int real = 0; real < 2; real++) {
        hv_nn_graph *g;
        if ((st = hv_nn_graph_create(&g))) return st;
        if (real) d->gr = g;
        else d->gf = g;
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, img);
        if (!real) hv_nn_set_requires_grad(x);
        hv_nn_tensor *logits = hv_model_patchgan_build(g, d->ps, d_prefix[k], x);
        if (!logits) {
            st = hv_nn_graph_status(g);
            return hv_error_wrap(st ? st : HV_ERR_INTERNAL, "model gan: building %s", d_prefix[k]);
        }
        int64_t ls[HV_NN_MAX_DIMS];
        int nd = hv_nn_tensor_shape(logits, ls);
        hv_nn_tensor *t = hv_nn_input(g, "target", nd, ls);
        hv_nn_tensor *w = hv_nn_input(g, "weight", 1, &one);
        hv_nn_tensor *loss = hv_nn_mul(g, hv_nn_bce_logits(g, logits, t), w);
        hv_nn_set_output(loss);
        d->nlogit = hv_nn_tensor_numel(logits);
        if ((st = hv_nn_graph_plan(g, m->be, HV_NN_PLAN_TRAIN)))
            return hv_error_wrap(st, "model gan: planning %s", d_prefix[k]);
        /* the six D graphs run one forward + backward at a time (d_pass), each
         * read out before the next: all in D1's fake graph's memory (the
         * largest: its input has a gradient; the three D's have the same
         * shapes), each joining as soon as it is planned */
        if (k || real) {
            hv_nn_graph *two[2] = {m->d[0].gf, g};
            if ((st = hv_nn_graphs_share(two, 2)))
                return hv_error_wrap(st, "model gan: %s's memory", d_prefix[k]);
        }
        if (real) d->xr = x, d->tr = t, d->wr = w, d->lr = loss;
        else d->xf = x, d->tf = t, d->wf = w, d->lf = loss;
    }
    return HV_OK;
}

static hv_status build_g(hv_model_gan *m, hv_rng *rng)
{
    const hv_model_gan_opts *o = &m->o;
    hv_status st;
    if ((st = hv_nn_params_create(&m->gps))) return st;
    if ((st = hv_model_generator_params(m->gps, o->cnum, rng))) return st;
    if ((st = hv_nn_params_bind(m->gps, m->be))) return st;
    if ((st = hv_nn_adam_create(m->gps, o->lr, o->beta1, o->beta2, 1e-8, &m->gadam))) return st;
    if ((st = hv_nn_graph_create(&m->gg))) return st;
    hv_nn_graph *g = m->gg;
    if ((st = hv_model_generator_build(g, m->gps, o->cnum, o->batch_local, o->rows, o->cols, &m->io)))
        return st;
    hv_nn_tensor *outs[6] = {m->io.x_stage1, m->io.x_stage2, m->io.coarse_seg, m->io.fine_seg,
                             m->io.p1, m->io.p2};
    static const char *const names[6] = {"seed_xs1", "seed_xs2", "seed_cseg", "seed_fseg",
                                          "seed_p1", "seed_p2"};
    hv_nn_tensor *s = NULL;
    for (int i = 0; i < 6; i++) {
        int64_t sh[HV_NN_MAX_DIMS];
        int nd = hv_nn_tensor_shape(outs[i], sh);
        m->seed[i] = hv_nn_input(g, names[i], nd, sh);
        hv_nn_tensor *t = hv_nn_sum(g, hv_nn_mul(g, outs[i], m->seed[i]));
        s = s ? hv_nn_add(g, s, t) : t;
    }
    m->sloss = s;
    if ((st = hv_nn_graph_plan(g, m->be, HV_NN_PLAN_TRAIN)))
        return hv_error_wrap(st, "model gan: planning the generator");
    if ((st = hv_nn_graph_create(&m->gi))) return st;
    if ((st = hv_model_generator_build(m->gi, m->gps, o->cnum, o->batch_local, o->rows, o->cols,
                                       &m->iio)))
        return st;
    if ((st = hv_nn_graph_plan(m->gi, m->be, 0)))
        return hv_error_wrap(st, "model gan: planning the inference generator");
    return HV_OK;
}

/* AOT-GAN's generator: parameters, the training graph gg (output and one
 * seed term over both channels) and the inference graph gi. */
static hv_status build_aot(hv_model_gan *m, hv_rng *rng)
{
    const hv_model_gan_opts *o = &m->o;
    hv_status st;
    if ((st = hv_nn_params_create(&m->gps))) return st;
    if ((st = hv_model_aotgan_params(m->gps, 2, o->cnum, o->aot_blocks, rng))) return st;
    if ((st = hv_nn_params_bind(m->gps, m->be))) return st;
    if ((st = hv_nn_adam_create(m->gps, o->lr, o->beta1, o->beta2, 1e-8, &m->gadam))) return st;
    const int64_t in2[4] = {o->batch_local, 2, o->rows, o->cols},
                  in1[4] = {o->batch_local, 1, o->rows, o->cols};
    for (int inf = 0; inf < 2; inf++) {
        hv_nn_graph *g;
        if ((st = hv_nn_graph_create(&g))) return st;
        if (inf) m->gi = g;
        else m->gg = g;
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, in2), *mk = hv_nn_input(g, "mask", 4, in1);
        hv_nn_tensor *y = hv_model_aotgan_build(g, m->gps, hv_model_aotgan_rates, x, mk);
        if (!y) {
            st = hv_nn_graph_status(g);
            return hv_error_wrap(st ? st : HV_ERR_INTERNAL, "model gan: building AOT-GAN's generator");
        }
        hv_nn_set_output(y);
        if (inf) {
            m->aix = x, m->aimask = mk, m->aiout = y;
        } else {
            m->ax = x, m->amask = mk, m->aout = y;
            m->aseed = hv_nn_input(g, "seed_aot", 4, in2);
            m->sloss = hv_nn_sum(g, hv_nn_mul(g, y, m->aseed));
        }
        if ((st = hv_nn_graph_plan(g, m->be, inf ? 0 : HV_NN_PLAN_TRAIN)))
            return hv_error_wrap(st, "model gan: planning AOT-GAN's %s generator",
                                 inf ? "inference" : "training");
    }
    return HV_OK;
}

static size_t buffers_numel(const hv_nn_params *ps)
{
    size_t n = 0;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        if (!hv_nn_param_trainable(p)) n += (size_t)hv_nn_param_numel(p);
    }
    return n;
}

/* Copy (save = 1) or restore (0) the non-trainable buffers of the four nets,
 * through the parameter copies (the nets may live on a device backend). */
static hv_status snapshot(hv_model_gan *m, int save)
{
    size_t off = 0;
    hv_status st;
    for (int k = 0; k < 4; k++) {
        hv_nn_params *ps = k ? m->d[k - 1].ps : m->gps;
        for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            if (hv_nn_param_trainable(p)) continue;
            size_t n = (size_t)hv_nn_param_numel(p);
            st = save ? hv_nn_param_get(p, m->snap + off, n) : hv_nn_param_set(p, m->snap + off, n);
            if (st != HV_OK)
                return hv_error_wrap(st, "model gan: %s the running statistics",
                                     save ? "saving" : "restoring");
            off += n;
        }
        if (!save) hv_nn_params_touch(ps);
    }
    return HV_OK;
}

hv_status hv_model_gan_create(const hv_model_gan_opts *o, hv_nn_backend *be, hv_rng *rng,
                              hv_model_gan **out)
{
    if (!o || !be || !rng || !out) return hv_error_set(HV_ERR_ARG, "model gan: NULL argument");
    *out = NULL;
    hv_status st = check_opts(o);
    if (st != HV_OK) return st;
    hv_model_gan *m = calloc(1, sizeof *m);
    if (!m) return hv_error_set(HV_ERR_NOMEM, "model gan: out of memory");
    m->o = *o;
    m->be = be;
    m->ratio = (double)o->batch_local / (double)o->batch_global;
    m->aot = o->generator == HV_MODEL_GEN_AOTGAN;
    /* G first, then D1-D3, from the one rng: the same seed gives the same nets */
    if ((st = m->aot ? build_aot(m, rng) : build_g(m, rng))) goto done;
    for (int k = 0; k < 3; k++)
        if ((st = build_d(m, k, rng))) goto done;
    if ((st = m->aot ? hv__aot_loss_build(&m->A, o, o->batch_local, m->ratio, be)
                     : hv__gan_loss_build(&m->L, o, o->batch_local, m->ratio, be)))
        goto done;

    const size_t n = (size_t)o->batch_local, pl = n * (size_t)o->rows * (size_t)o->cols;
    m->plane = pl;
    float **planes[] = {&m->ratio_plane, &m->w1, &m->r1, &m->w2, &m->r2, &m->go[0], &m->go[1],
                        &m->go[2], &m->go[3], &m->fake[0], &m->fake[1], &m->fake[2], &m->real3,
                        &m->bandcol, &m->gtmp, &m->seed_comp, &m->seed_seg, &m->zeros_plane};
    for (size_t i = 0; i < sizeof planes / sizeof planes[0]; i++)
        if (!(*planes[i] = calloc(pl, sizeof(float)))) goto nomem;
    m->p[0] = calloc(n, sizeof(float));
    m->p[1] = calloc(n, sizeof(float));
    m->inv_h = calloc(n, sizeof(float));
    m->t0 = calloc((size_t)m->d[0].nlogit, sizeof(float));
    m->t1 = calloc((size_t)m->d[0].nlogit, sizeof(float));
    if (m->aot && (!(m->ain = calloc(2 * pl, sizeof(float))) ||
                   !(m->aob = calloc(2 * pl, sizeof(float)))))
        goto nomem;
    if (!m->p[0] || !m->p[1] || !m->inv_h || !m->t0 || !m->t1) goto nomem;
    for (int64_t i = 0; i < m->d[0].nlogit; i++) m->t1[i] = 1.0f;
    m->npack = (size_t)hv_nn_params_numel(m->gps, 1);
    for (int k = 0; k < 3; k++) {
        size_t nd = (size_t)hv_nn_params_numel(m->d[k].ps, 1);
        if (nd > m->npack) m->npack = nd;
    }
    m->nsnap = buffers_numel(m->gps);
    for (int k = 0; k < 3; k++) m->nsnap += buffers_numel(m->d[k].ps);
    m->pack = malloc(m->npack * sizeof(float));
    m->snap = malloc((m->nsnap ? m->nsnap : 1) * sizeof(float));
    if (!m->pack || !m->snap) goto nomem;
    *out = m;
    return HV_OK;
nomem:
    st = hv_error_set(HV_ERR_NOMEM, "model gan: out of memory for the step's buffers");
done:
    hv_model_gan_free(m);
    return st;
}

void hv_model_gan_free(hv_model_gan *m)
{
    if (!m) return;
    hv__gan_loss_free(&m->L);
    hv__aot_loss_free(&m->A);
    free(m->ain);
    free(m->aob);
    for (int k = 0; k < 3; k++) {
        hv_nn_graph_free(m->d[k].gf);
        hv_nn_graph_free(m->d[k].gr);
        hv_nn_adam_free(m->d[k].adam);
        hv_nn_params_free(m->d[k].ps);
    }
    hv_nn_graph_free(m->gg);
    hv_nn_graph_free(m->gi);
    hv_nn_adam_free(m->gadam);
    hv_nn_params_free(m->gps);
    float *bufs[] = {m->ratio_plane, m->w1, m->r1, m->w2, m->r2, m->go[0], m->go[1], m->go[2],
                     m->go[3], m->fake[0], m->fake[1], m->fake[2], m->real3, m->bandcol,
                     m->gtmp, m->seed_comp, m->seed_seg, m->zeros_plane, m->p[0], m->p[1],
                     m->inv_h, m->t0, m->t1, m->pack, m->snap};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(m);
}

void hv_model_gan_set_reducer(hv_model_gan *m, hv_model_reduce_fn fn, void *ctx)
{
    if (!m) return;
    m->reduce = fn;
    m->rctx = fn ? ctx : NULL;
    for (int k = 0; k < 3; k++) {
        hv_nn_graph_set_reducer(m->d[k].gf, fn, ctx);
        hv_nn_graph_set_reducer(m->d[k].gr, fn, ctx);
    }
}

void hv_model_gan_set_lr(hv_model_gan *m, double lr)
{
    if (!m) return;
    m->o.lr = lr;
    hv_nn_adam_set_lr(m->gadam, lr);
    for (int k = 0; k < 3; k++) hv_nn_adam_set_lr(m->d[k].adam, lr);
}

hv_nn_params *hv_model_gan_params(hv_model_gan *m, int which)
{
    if (!m || which < 0 || which > 3) return NULL;
    return which ? m->d[which - 1].ps : m->gps;
}

int hv__gan_graphs(hv_model_gan *m, hv_nn_graph **graphs, const char **names, int max)
{
    static const char *const nm[8] = {"G", "losses", "D1 fake", "D1 real", "D2 fake", "D2 real",
                                      "D3 fake", "D3 real"};
    if (!m || !graphs || !names || max < 8) return 0;
    graphs[0] = m->gg;
    graphs[1] = m->aot ? m->A.g : m->L.g;
    for (int k = 0; k < 3; k++) graphs[2 + 2 * k] = m->d[k].gf, graphs[3 + 2 * k] = m->d[k].gr;
    for (int i = 0; i < 8; i++) names[i] = nm[i];
    return 8;
}

/* ------------------------------------------------------------- the step */

static hv_status reduce(hv_model_gan *m, float *buf, size_t n, const char *what)
{
    if (!m->reduce) return HV_OK;
    if (m->reduce(m->rctx, buf, n) != 0)
        return hv_error_set(HV_ERR_IO, "model gan: the reducer failed on %s", what);
    return HV_OK;
}

/* Sum a network's gradients over the participants (one call) and step Adam. */
static hv_status update(hv_model_gan *m, hv_nn_params *ps, hv_nn_adam *adam, const char *name)
{
    hv_status st;
    if (m->reduce) {
        size_t off = 0;
        for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            if (!hv_nn_param_trainable(p)) continue;
            size_t n = (size_t)hv_nn_param_numel(p);
            if ((st = hv_nn_param_get_grad(p, m->pack + off, n)))
                return hv_error_wrap(st, "model gan: gradients of %s", name);
            off += n;
        }
        if ((st = reduce(m, m->pack, off, name))) return st;
        off = 0;
        for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            if (!hv_nn_param_trainable(p)) continue;
            size_t n = (size_t)hv_nn_param_numel(p);
            if ((st = hv_nn_param_set_grad(p, m->pack + off, n)))
                return hv_error_wrap(st, "model gan: summed gradients of %s", name);
            off += n;
        }
    }
    if ((st = hv_nn_adam_step(adam))) return hv_error_wrap(st, "model gan: Adam step of %s", name);
    return HV_OK;
}

static hv_status check_batch(const hv_model_gan *m, const hv_model_batch *b)
{
    const hv_model_gan_opts *o = &m->o;
    if (!b || !b->x || !b->mask || !b->cam || !b->ratio || !b->real || !b->real_mask ||
        !b->normal || !b->x1 || !b->x2 || !b->height)
        return hv_error_set(HV_ERR_ARG, "model gan: batch has a NULL array");
    if (b->n != o->batch_local || b->rows != o->rows || b->cols != o->cols ||
        b->band_rows != o->band_rows)
        return hv_error_set(HV_ERR_ARG,
                            "model gan: batch is %lld x %lld x %lld (band %lld), the model takes "
                            "%lld x %lld x %lld (band %lld)",
                            (long long)b->n, (long long)b->rows, (long long)b->cols,
                            (long long)b->band_rows, (long long)o->batch_local,
                            (long long)o->rows, (long long)o->cols, (long long)o->band_rows);
    for (int64_t i = 0; i < b->n; i++)
        if (b->x1[i] < 0 || b->x2[i] <= b->x1[i] || b->x2[i] > b->rows || !(b->height[i] > 0))
            return hv_error_set(HV_ERR_ARG,
                                "model gan: batch item %lld: target rows [%lld, %lld) or height %g invalid",
                                (long long)i, (long long)b->x1[i], (long long)b->x2[i],
                                (double)b->height[i]);
    return HV_OK;
}

/* Inputs of a generator graph from a batch. */
static hv_status set_g_inputs(hv_model_gan *m, const hv_model_generator_io *io, const hv_model_batch *b)
{
    const size_t hw = (size_t)(b->rows * b->cols);
    for (int64_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < hw; k++) m->ratio_plane[(size_t)i * hw + k] = b->ratio[i];
    hv_status st;
    if ((st = hv_nn_tensor_set(io->x, b->x, m->plane)) || (st = hv_nn_tensor_set(io->mask, b->mask, m->plane)) ||
        (st = hv_nn_tensor_set(io->cam, b->cam, m->plane)) ||
        (st = hv_nn_tensor_set(io->ratio, m->ratio_plane, m->plane)))
        return st;
    return HV_OK;
}

static void composites(const hv_model_batch *b, const float *p, float *w,
                       float *rest)
{
    const size_t hw = (size_t)(b->rows * b->cols);
    for (int64_t i = 0; i < b->n; i++)
        hv__gan_composite(p[i], b->x1[i], b->x2[i], b->band_rows, b->rows, b->cols,
                          b->real + (size_t)i * hw, w + (size_t)i * hw, rest + (size_t)i * hw);
}

static hv_status nonfinite(const char *term, double v)
{
    return hv_error_set(HV_ERR_NUMERIC, "model gan: loss term %s is %g; no weight changed", term, v);
}

/* One forward + backward of Dk's fake or real graph: target 0/1, weight w.
 * *loss receives the weighted local loss. */
static hv_status d_pass(hv_model_gan *m, dnet *d, int real, const float *x, int target, double w,
                        double *loss)
{
    hv_nn_graph *g = real ? d->gr : d->gf;
    hv_nn_tensor *xi = real ? d->xr : d->xf, *ti = real ? d->tr : d->tf;
    hv_nn_tensor *wi = real ? d->wr : d->wf, *li = real ? d->lr : d->lf;
    const float wf = (float)w;
    float l;
    hv_status st;
    if ((st = hv_nn_tensor_set(xi, x, m->plane)) ||
        (st = hv_nn_tensor_set(ti, target ? m->t1 : m->t0, (size_t)d->nlogit)) ||
        (st = hv_nn_tensor_set(wi, &wf, 1)) || (st = hv_nn_graph_forward(g)) ||
        (st = hv_nn_tensor_get(li, &l, 1)))
        return st;
    /* generator side (target 1): only the input gradient is wanted, as the
     * reference's set_requires_grad(D, False); the D's gradients would be
     * zeroed unused before their next update */
    hv_nn_graph_set_frozen(g, !real && target);
    st = hv_nn_graph_backward(g, li);
    hv_nn_graph_set_frozen(g, 0);
    if (st != HV_OK) return st;
    *loss = l;
    return HV_OK;
}

/* Steps 1-3 of our generator: G forward, composites, the generator-side
 * losses (checked); leaves comp2 in fake[0] and the fine segmentation in go[3]. */
static hv_status g_forward_ours(hv_model_gan *m, const hv_model_batch *b, hv_model_gan_losses *res)
{
    const hv_model_gan_opts *o = &m->o;
    const size_t n = (size_t)b->n, pl = m->plane;
    hv__gan_loss *L = &m->L;
    hv_status st;
    /* 1. G forward */
    if ((st = set_g_inputs(m, &m->io, b)) || (st = hv_nn_graph_forward(m->gg))) return st;
    hv_nn_tensor *gout[6] = {m->io.x_stage1, m->io.x_stage2, m->io.coarse_seg, m->io.fine_seg,
                             m->io.p1, m->io.p2};
    for (int i = 0; i < 4; i++)
        if ((st = hv_nn_tensor_get(gout[i], m->go[i], pl))) return st;
    if ((st = hv_nn_tensor_get(gout[4], m->p[0], n)) || (st = hv_nn_tensor_get(gout[5], m->p[1], n)))
        return st;

    /* 2. composites, heights, nnz(mask) over the global batch */
    composites(b, m->p[0], m->w1, m->r1);
    composites(b, m->p[1], m->w2, m->r2);
    for (size_t i = 0; i < n; i++) m->inv_h[i] = (float)((double)o->band_rows / b->height[i]);
    float nnz = 0;
    for (size_t k = 0; k < pl; k++) nnz += b->mask[k] != 0.0f;
    if ((st = reduce(m, &nnz, 1, "nnz(mask)"))) return st;
    if (!(nnz > 0)) {
        return hv_error_set(HV_ERR_EMPTY, "model gan step: the band mask is empty over the batch");
    }
    const float inv_nnz = 1.0f / nnz;

    /* 3. generator-side losses (no adversarial part yet) */
    hv_nn_tensor *lin[6] = {L->xs1, L->xs2, L->cseg, L->fseg, L->p1, L->p2};
    for (int i = 0; i < 4; i++)
        if ((st = hv_nn_tensor_set(lin[i], m->go[i], pl))) return st;
    if ((st = hv_nn_tensor_set(L->p1, m->p[0], n)) || (st = hv_nn_tensor_set(L->p2, m->p[1], n)) ||
        (st = hv_nn_tensor_set(L->w1, m->w1, pl)) || (st = hv_nn_tensor_set(L->rest1, m->r1, pl)) ||
        (st = hv_nn_tensor_set(L->w2, m->w2, pl)) || (st = hv_nn_tensor_set(L->rest2, m->r2, pl)) ||
        (st = hv_nn_tensor_set(L->real, b->real, pl)) ||
        (st = hv_nn_tensor_set(L->real_mask, b->real_mask, pl)) ||
        (st = hv_nn_tensor_set(L->normal, b->normal, pl)) ||
        (st = hv_nn_tensor_set(L->inv_h, m->inv_h, n)) ||
        (st = hv_nn_tensor_set(L->inv_nnz, &inv_nnz, 1)) ||
        (st = hv_nn_tensor_set(L->seed_comp, m->zeros_plane, pl)) ||
        (st = hv_nn_tensor_set(L->seed_seg, m->zeros_plane, pl)))
        return st;
    if (L->fseg_bin) { /* d2_soft = 0: the edge term on the binarised segmentation */
        for (size_t k = 0; k < pl; k++) m->gtmp[k] = m->go[3][k] > 0.5f ? 1.0f : 0.0f;
        if ((st = hv_nn_tensor_set(L->fseg_bin, m->gtmp, pl))) return st;
    }
    if ((st = hv_nn_graph_forward(L->g))) return st;
    float terms[5];
    hv_nn_tensor *tt[5] = {L->l1, L->dice_f, L->dice_c, L->edge, L->height};
    static const char *const tname[5] = {"L1", "Dice (fine)", "Dice (coarse)", "edge (EEM)", "height (SHRM)"};
    for (int i = 0; i < 5; i++)
        if ((st = hv_nn_tensor_get(tt[i], &terms[i], 1))) return st;
    if ((st = reduce(m, terms, 5, "the generator's loss terms"))) return st;
    for (int i = 0; i < 5; i++)
        if (!isfinite(terms[i])) {
            return nonfinite(tname[i], terms[i]);
        }
    res->g_l1 = terms[0];
    res->g_dice_fine = terms[1];
    res->g_dice_coarse = terms[2];
    res->g_edge = terms[3];
    res->g_height = terms[4];

    return hv_nn_tensor_get(L->comp2, m->fake[0], pl);
}

/* Step 7 of our generator: the loss graph's backward (seeds set from the
 * discriminators), its gradients as G's seeds, G's backward and Adam step. */
static hv_status g_backward_ours(hv_model_gan *m, const hv_model_batch *b)
{
    const size_t n = (size_t)b->n, pl = m->plane;
    hv__gan_loss *L = &m->L;
    hv_nn_tensor *lin[6] = {L->xs1, L->xs2, L->cseg, L->fseg, L->p1, L->p2};
    hv_status st;
    /* 7. loss graph backward -> seeds of G -> G backward -> Adam */
    if ((st = hv_nn_tensor_set(L->seed_comp, m->seed_comp, pl)) ||
        (st = hv_nn_tensor_set(L->seed_seg, m->seed_seg, pl)) ||
        (st = hv_nn_graph_backward(L->g, L->total)))
        return st;
    for (int i = 0; i < 6; i++) {
        size_t cnt = i < 4 ? pl : n;
        float *buf = i < 4 ? m->gtmp : m->p[i - 4];
        if ((st = hv_nn_tensor_get_grad(lin[i], buf, cnt)) || (st = hv_nn_tensor_set(m->seed[i], buf, cnt)))
            return st;
    }
    hv_nn_params_zero_grad(m->gps);
    if ((st = hv_nn_graph_backward(m->gg, m->sloss))) return st;
    if ((st = update(m, m->gps, m->gadam, "G"))) return st;

    return HV_OK;
}

/* AOT-GAN's input from a batch: channel 0 the shifted CT, channel 1 the
 * target's label in [-1, 1] in the shifted frame (empty outside the band:
 * -1), each prepared as its trainer does, image * (1 - mask) + mask; and
 * the mask. CAM and ratio are not AOT-GAN's inputs. */
static hv_status set_aot_inputs(hv_model_gan *m, hv_nn_tensor *x, hv_nn_tensor *mk,
                                const hv_model_batch *b)
{
    const size_t hw = (size_t)(b->rows * b->cols);
    for (int64_t i = 0; i < b->n; i++) {
        const float *xi = b->x + (size_t)i * hw, *mi = b->mask + (size_t)i * hw;
        float *c0 = m->ain + (size_t)(2 * i) * hw, *c1 = c0 + hw;
        for (size_t k = 0; k < hw; k++) {
            c0[k] = xi[k] * (1.0f - mi[k]) + mi[k];
            c1[k] = -1.0f * (1.0f - mi[k]) + mi[k];
        }
    }
    hv_status st = hv_nn_tensor_set(x, m->ain, 2 * m->plane);
    return st ? st : hv_nn_tensor_set(mk, b->mask, m->plane);
}

/* The CT (go[0]) and label (go[1]) planes of AOT-GAN's output in aob. */
static void split_aot(hv_model_gan *m, const hv_model_batch *b)
{
    const size_t hw = (size_t)(b->rows * b->cols);
    for (int64_t i = 0; i < b->n; i++) {
        memcpy(m->go[0] + (size_t)i * hw, m->aob + (size_t)(2 * i) * hw, hw * sizeof(float));
        memcpy(m->go[1] + (size_t)i * hw, m->aob + (size_t)(2 * i + 1) * hw, hw * sizeof(float));
    }
}

/* Steps 1-3 with AOT-GAN's generator: forward, the composite of height h
 * (p = 0: hv__gan_composite floors the height at h, d = 0), the L1 and Dice
 * terms (checked); leaves the composite in fake[0] and the label
 * probability in go[3]. */
static hv_status g_forward_aot(hv_model_gan *m, const hv_model_batch *b, hv_model_gan_losses *res)
{
    const size_t n = (size_t)b->n, pl = m->plane;
    hv__aot_loss *A = &m->A;
    hv_status st;
    if ((st = set_aot_inputs(m, m->ax, m->amask, b))) return st;
    /* a NaN in the input can vanish in the forward (ReLU(NaN) = 0) and show
     * only in the first convolution's weight gradient, after the D's have
     * stepped: refused here, before anything changes */
    for (size_t k = 0; k < 2 * pl; k++)
        if (!isfinite(m->ain[k]))
            return hv_error_set(HV_ERR_NUMERIC, "model gan: AOT-GAN's input (the masked CT of "
                                "batch item %zu) is %g; no weight changed", k / (2 * pl / n),
                                (double)m->ain[k]);
    if ((st = hv_nn_graph_forward(m->gg)) || (st = hv_nn_tensor_get(m->aout, m->aob, 2 * pl)))
        return st;
    split_aot(m, b);
    memset(m->p[0], 0, n * sizeof(float));
    composites(b, m->p[0], m->w1, m->r1);
    float nnz = 0;
    for (size_t k = 0; k < pl; k++) nnz += b->mask[k] != 0.0f;
    if ((st = reduce(m, &nnz, 1, "nnz(mask)"))) return st;
    if (!(nnz > 0))
        return hv_error_set(HV_ERR_EMPTY, "model gan step: the band mask is empty over the batch");
    const float inv_nnz = 1.0f / nnz;
    if ((st = hv_nn_tensor_set(A->ct, m->go[0], pl)) || (st = hv_nn_tensor_set(A->lab, m->go[1], pl)) ||
        (st = hv_nn_tensor_set(A->w, m->w1, pl)) || (st = hv_nn_tensor_set(A->rest, m->r1, pl)) ||
        (st = hv_nn_tensor_set(A->real, b->real, pl)) ||
        (st = hv_nn_tensor_set(A->real_mask, b->real_mask, pl)) ||
        (st = hv_nn_tensor_set(A->inv_nnz, &inv_nnz, 1)) ||
        (st = hv_nn_tensor_set(A->seed_comp, m->zeros_plane, pl)) ||
        (st = hv_nn_tensor_set(A->seed_seg, m->zeros_plane, pl)) ||
        (st = hv_nn_graph_forward(A->g)))
        return st;
    float terms[2];
    if ((st = hv_nn_tensor_get(A->l1, &terms[0], 1)) || (st = hv_nn_tensor_get(A->dice, &terms[1], 1)) ||
        (st = reduce(m, terms, 2, "the generator's loss terms")))
        return st;
    if (!isfinite(terms[0])) return nonfinite("L1", terms[0]);
    if (!isfinite(terms[1])) return nonfinite("Dice (fine)", terms[1]);
    res->g_l1 = terms[0];
    res->g_dice_fine = terms[1];
    if ((st = hv_nn_tensor_get(A->comp, m->fake[0], pl))) return st;
    return hv_nn_tensor_get(A->prob, m->go[3], pl);
}

/* Step 7 with AOT-GAN's generator: the loss graph's gradients with respect
 * to its CT and label channels, interleaved as the seed of its output. */
static hv_status g_backward_aot(hv_model_gan *m, const hv_model_batch *b)
{
    const size_t hw = (size_t)(b->rows * b->cols), pl = m->plane;
    hv__aot_loss *A = &m->A;
    hv_status st;
    if ((st = hv_nn_tensor_set(A->seed_comp, m->seed_comp, pl)) ||
        (st = hv_nn_tensor_set(A->seed_seg, m->seed_seg, pl)) ||
        (st = hv_nn_graph_backward(A->g, A->total)) ||
        (st = hv_nn_tensor_get_grad(A->ct, m->go[0], pl)) ||
        (st = hv_nn_tensor_get_grad(A->lab, m->go[1], pl)))
        return st;
    for (int64_t i = 0; i < b->n; i++) {
        memcpy(m->aob + (size_t)(2 * i) * hw, m->go[0] + (size_t)i * hw, hw * sizeof(float));
        memcpy(m->aob + (size_t)(2 * i + 1) * hw, m->go[1] + (size_t)i * hw, hw * sizeof(float));
    }
    if ((st = hv_nn_tensor_set(m->aseed, m->aob, 2 * pl))) return st;
    hv_nn_params_zero_grad(m->gps);
    if ((st = hv_nn_graph_backward(m->gg, m->sloss))) return st;
    return update(m, m->gps, m->gadam, "G");
}

hv_status hv_model_gan_step(hv_model_gan *m, const hv_model_batch *b, hv_model_gan_losses *out)
{
    if (!m) return hv_error_set(HV_ERR_ARG, "model gan step: NULL model");
    hv_status st = check_batch(m, b);
    if (st != HV_OK) return st;
    const hv_model_gan_opts *o = &m->o;
    const size_t n = (size_t)b->n, hw = (size_t)(b->rows * b->cols), pl = m->plane;
    const double r = m->ratio;
    hv_model_gan_losses res;
    memset(&res, 0, sizeof res);
    if ((st = snapshot(m, 1))) return st;

    /* 1-3. G forward, composites, generator-side losses */
    if ((st = m->aot ? g_forward_aot(m, b, &res) : g_forward_ours(m, b, &res))) goto fail;

    /* 4. the discriminators' inputs */
    const float *comp2 = m->fake[0];
    const int64_t c0 = o->cols / 2 - o->local_cols / 2;
    for (size_t i = 0; i < n; i++)
        for (int64_t y = 0; y < b->rows; y++)
            for (int64_t x = 0; x < b->cols; x++) {
                size_t k = i * hw + (size_t)(y * b->cols + x);
                float col = (x >= c0 && x < c0 + o->local_cols) ? 1.0f : 0.0f;
                m->bandcol[k] = b->mask[k] * col;
            }
    for (size_t k = 0; k < pl; k++) {
        m->fake[1][k] = o->d2_soft ? m->go[3][k] : (m->go[3][k] > 0.5f ? 1.0f : 0.0f);
        m->fake[2][k] = comp2[k] * m->bandcol[k];
        m->real3[k] = b->real[k] * m->bandcol[k];
    }
    const float *reals[3] = {b->real, b->real_mask, m->real3};

    /* 5. D1-D3 on fake.detach() and real: 0.5 (BCE(D(fake), 0) + BCE(D(real), 1)) */
    float dl[3];
    for (int k = 0; k < 3; k++) {
        double lf, lr;
        hv_nn_params_zero_grad(m->d[k].ps);
        if ((st = d_pass(m, &m->d[k], 0, m->fake[k], 0, 0.5 * r, &lf)) ||
            (st = d_pass(m, &m->d[k], 1, reals[k], 1, 0.5 * r, &lr)))
            goto fail;
        dl[k] = (float)(lf + lr);
    }
    if ((st = reduce(m, dl, 3, "the discriminators' losses"))) goto fail;
    static const char *const dname[3] = {"D1 (global)", "D2 (segmentation)", "D3 (local)"};
    for (int k = 0; k < 3; k++)
        if (!isfinite(dl[k])) {
            st = nonfinite(dname[k], dl[k]);
            goto fail;
        }
    res.d1 = dl[0];
    res.d2 = dl[1];
    res.d3 = dl[2];
    for (int k = 0; k < 3; k++)
        if ((st = update(m, m->d[k].ps, m->d[k].adam, dname[k]))) return st;

    /* 6. generator side of the adversarial loss with the updated D's */
    float gl[3];
    memset(m->seed_comp, 0, pl * sizeof(float));
    memset(m->seed_seg, 0, pl * sizeof(float));
    for (int k = 0; k < 3; k++) {
        double l;
        if ((st = d_pass(m, &m->d[k], 0, m->fake[k], 1, o->lambda_gan * r, &l))) return st;
        gl[k] = (float)l;
        if (k == 1 && !o->d2_soft) continue; /* binarised: no gradient, as the reference */
        if ((st = hv_nn_tensor_get_grad(m->d[k].xf, m->gtmp, pl))) return st;
        for (size_t q = 0; q < pl; q++) {
            if (k == 0) m->seed_comp[q] += m->gtmp[q];
            else if (k == 1) m->seed_seg[q] += m->gtmp[q];
            else m->seed_comp[q] += m->gtmp[q] * m->bandcol[q];
        }
    }
    if ((st = reduce(m, gl, 3, "the generator's adversarial terms"))) return st;
    res.g_gan = (double)gl[0] + gl[1] + gl[2];
    if (!isfinite(res.g_gan))
        return hv_error_set(HV_ERR_NUMERIC,
                            "model gan: loss term GAN (generator side: %g %g %g) is non-finite "
                            "after the discriminators' step; the generator was not updated",
                            gl[0], gl[1], gl[2]);

    /* 7. loss graph backward -> seeds of G -> G backward -> Adam */
    if ((st = m->aot ? g_backward_aot(m, b) : g_backward_ours(m, b))) return st;

    res.g_total = res.g_gan + res.g_l1 + res.g_dice_fine + res.g_dice_coarse + res.g_edge + res.g_height;
    if (out) *out = res;
    return HV_OK;
fail:
    if (snapshot(m, 0) != HV_OK) /* st says what went wrong first */
        hv_log_error("model gan: %s", hv_error_detail());
    return st;
}

hv_status hv_model_gan_infer(hv_model_gan *m, const hv_model_batch *b, float *composite,
                             float *fine_seg, float *heights)
{
    if (!m) return hv_error_set(HV_ERR_ARG, "model gan infer: NULL model");
    hv_status st = check_batch(m, b);
    if (st != HV_OK) return st;
    const size_t n = (size_t)b->n, pl = m->plane;
    if (m->aot) {
        if ((st = set_aot_inputs(m, m->aix, m->aimask, b)) || (st = hv_nn_graph_forward(m->gi)) ||
            (st = hv_nn_tensor_get(m->aiout, m->aob, 2 * pl)))
            return st;
        split_aot(m, b);
        if (composite) {
            memset(m->p[1], 0, n * sizeof(float));
            composites(b, m->p[1], m->w2, m->r2);
            for (size_t k = 0; k < pl; k++) composite[k] = m->go[0][k] * m->w2[k] + m->r2[k];
        }
        if (fine_seg)
            for (size_t k = 0; k < pl; k++) fine_seg[k] = 0.5f * m->go[1][k] + 0.5f;
        if (heights)
            for (size_t i = 0; i < n; i++) heights[i] = (float)(b->x2[i] - b->x1[i]);
        return HV_OK;
    }
    if ((st = set_g_inputs(m, &m->iio, b)) || (st = hv_nn_graph_forward(m->gi)) ||
        (st = hv_nn_tensor_get(m->iio.p2, m->p[1], n)))
        return st;
    if (composite) {
        if ((st = hv_nn_tensor_get(m->iio.x_stage2, m->go[1], pl))) return st;
        composites(b, m->p[1], m->w2, m->r2);
        for (size_t k = 0; k < pl; k++) composite[k] = m->go[1][k] * m->w2[k] + m->r2[k];
    }
    if (fine_seg && (st = hv_nn_tensor_get(m->iio.fine_seg, fine_seg, pl))) return st;
    if (heights)
        for (size_t i = 0; i < n; i++) heights[i] = m->p[1][i] * (float)b->band_rows;
    return HV_OK;
}

/* ------------------------------------------------------------ checkpoints */

#define GAN_ARCH "healthivert-gan-1" /* G of spec 5.1-5.3 + three PatchGANs (5.4) */
#define AOT_ARCH "healthivert-aotgan-1" /* AOT-GAN's generator (img_ch 2) + the same D's */

static const char *arch_of(const hv_model_gan *m)
{
    return m->aot ? AOT_ARCH : GAN_ARCH;
}
static const char *const group_names[4] = {"G", "D1", "D2", "D3"};

hv_status hv_model_gan_save(const hv_model_gan *m, const char *path, const char *const *meta_kv,
                            size_t n_meta)
{
    if (!m || !path || (n_meta && !meta_kv))
        return hv_error_set(HV_ERR_ARG, "model gan save: bad arguments");
    for (size_t i = 0; i < n_meta; i++)
        if (!meta_kv[2 * i] || !strncmp(meta_kv[2 * i], "gan_", 4))
            return hv_error_set(HV_ERR_ARG, "model gan save: metadata key %zu is NULL or uses the "
                                "reserved prefix gan_", i);
    char cnum[32], ndf[32], blocks[32];
    snprintf(cnum, sizeof cnum, "%d", m->o.cnum);
    snprintf(ndf, sizeof ndf, "%d", m->o.ndf);
    snprintf(blocks, sizeof blocks, "%d", m->o.aot_blocks);
    const size_t n_own = m->aot ? 4 : 3, nk = n_meta + n_own;
    const char **kv = malloc(2 * nk * sizeof *kv);
    if (!kv) return hv_error_set(HV_ERR_NOMEM, "model gan save: out of memory");
    const char *own[8] = {"gan_arch", arch_of(m), "gan_cnum", cnum, "gan_ndf", ndf,
                          "gan_aot_blocks", blocks};
    memcpy(kv, own, 2 * n_own * sizeof *kv);
    if (n_meta) memcpy(kv + 2 * n_own, meta_kv, 2 * n_meta * sizeof *kv);
    const hv_nn_params *ps[4] = {m->gps, m->d[0].ps, m->d[1].ps, m->d[2].ps};
    const hv_nn_adam *ad[4] = {m->gadam, m->d[0].adam, m->d[1].adam, m->d[2].adam};
    hv_status st = hv_nn_checkpoint_save_groups(path, 4, group_names, ps, ad, kv, nk);
    free(kv);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "model gan save: %s", path);
}

hv_status hv_model_gan_load(hv_model_gan *m, const char *path)
{
    if (!m || !path) return hv_error_set(HV_ERR_ARG, "model gan load: bad arguments");
    char buf[128];
    hv_status st = hv_nn_checkpoint_meta(path, "gan_arch", buf, sizeof buf);
    if (st == HV_ERR_NOT_FOUND)
        return hv_error_set(HV_ERR_FORMAT, "model gan load: %s is not a HealthiVert-GAN checkpoint "
                            "(no gan_arch)", path);
    if (st != HV_OK) return hv_error_wrap(st, "model gan load");
    if (strcmp(buf, arch_of(m)))
        return hv_error_set(HV_ERR_FORMAT, "model gan load: %s holds architecture '%s', the model is "
                            "'%s' (generator %s)", path, buf, arch_of(m),
                            hv_model_generator_kind_name(m->o.generator));
    const char *keys[3] = {"gan_cnum", "gan_ndf", "gan_aot_blocks"};
    const int want[3] = {m->o.cnum, m->o.ndf, m->o.aot_blocks};
    for (int i = 0; i < (m->aot ? 3 : 2); i++) {
        if ((st = hv_nn_checkpoint_meta(path, keys[i], buf, sizeof buf)))
            return hv_error_wrap(st == HV_ERR_NOT_FOUND ? HV_ERR_FORMAT : st, "model gan load: %s", path);
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || v != want[i])
            return hv_error_set(HV_ERR_FORMAT, "model gan load: %s has %s = %s, the model has %d",
                                path, keys[i] + 4, buf, want[i]);
    }
    hv_nn_params *ps[4] = {m->gps, m->d[0].ps, m->d[1].ps, m->d[2].ps};
    hv_nn_adam *ad[4] = {m->gadam, m->d[0].adam, m->d[1].adam, m->d[2].adam};
    st = hv_nn_checkpoint_load_groups(path, 4, group_names, ps, ad);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "model gan load");
}
