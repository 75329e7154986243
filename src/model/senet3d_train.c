/*
 * src/model/senet3d_train.c: the training steps of the 3-D SupCon-SENet
 * (issue 15; include/hv/model.h, docs/model.md): supervised contrastive
 * pre-training through the projection head, then classification of the 4
 * grades through the classifier head.
 *
 * Three graphs over one parameter set, planned once: SupCon training
 * (loss = supcon(proj, grades)), classification training (loss = weighted
 * cross_entropy(logits, grades)) and inference (running statistics). Each
 * training graph records the whole network with both heads; the head a
 * loss does not reach costs a few linear layers and gets zero gradients.
 * Chosen over one graph with a switchable loss because the engine's graphs
 * are frozen once planned, and over two parameter sets because the heads
 * share the encoder's names and checkpoints.
 *
 * Each phase has its own Adam over the whole set: a parameter with a zero
 * gradient keeps zero moments and so is not moved, which is what a phase
 * that does not reach a head must do; separate moments keep the
 * pre-training's statistics out of the classification's first steps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"

struct hv_model_senet3d_trainer {
    hv_nn_params *ps; /* borrowed */
    hv_model_senet3d_config cfg;
    int64_t n, vox;
    hv_nn_graph *gs, *gc, *gi;
    hv_model_senet3d_io ios, ioc, ioi;
    hv_nn_tensor *lab_s, *lab_c, *cw, *loss_s, *loss_c;
    hv_nn_adam *adam_s, *adam_c;
    float class_w[HV_MODEL_SENET3D_GRADES];
    float *saved; /* the buffers (BN running statistics) before a step's forward */
    int64_t n_saved;
};

void hv_model_senet3d_trainer_free(hv_model_senet3d_trainer *t)
{
    if (!t) return;
    hv_nn_adam_free(t->adam_s);
    hv_nn_adam_free(t->adam_c);
    hv_nn_graph_free(t->gs);
    hv_nn_graph_free(t->gc);
    hv_nn_graph_free(t->gi);
    free(t->saved);
    free(t);
}

hv_status hv_model_senet3d_trainer_create(hv_nn_params *ps, const hv_model_senet3d_config *cfg,
                                          hv_nn_backend *be, int64_t n, int64_t d, int64_t h,
                                          int64_t w, const hv_model_senet3d_train_opts *o,
                                          hv_model_senet3d_trainer **out)
{
    hv_status st = HV_OK;
    hv_model_senet3d_trainer *t = NULL;
    if (!ps || !cfg || !be || !o || !out)
        return hv_error_set(HV_ERR_ARG, "senet3d trainer: NULL argument");
    *out = NULL;
    if (n < 2)
        return hv_error_set(HV_ERR_ARG, "senet3d trainer: batch %lld (SupCon needs >= 2 items)",
                            (long long)n);
    if (!(o->lr_supcon > 0) || !isfinite(o->lr_supcon) || !(o->lr_cls > 0) ||
        !isfinite(o->lr_cls) || !(o->temperature > 0) || !isfinite(o->temperature))
        return hv_error_set(HV_ERR_ARG, "senet3d trainer: learning rates %g, %g and temperature "
                            "%g must be finite and > 0", o->lr_supcon, o->lr_cls, o->temperature);
    for (int k = 0; k < HV_MODEL_SENET3D_GRADES; k++)
        if (!(o->class_weights[k] >= 0) || !isfinite(o->class_weights[k]))
            return hv_error_set(HV_ERR_ARG, "senet3d trainer: class weight %d is %g (need finite "
                                "and >= 0)", k, (double)o->class_weights[k]);
    t = calloc(1, sizeof *t);
    if (!t) return hv_error_set(HV_ERR_NOMEM, "senet3d trainer: out of memory");
    t->ps = ps;
    t->cfg = *cfg;
    t->n = n;
    t->vox = d * h * w;
    memcpy(t->class_w, o->class_weights, sizeof t->class_w);
    const int64_t nn[1] = {n}, nc[1] = {HV_MODEL_SENET3D_GRADES};

    if ((st = hv_nn_graph_create(&t->gs)) || (st = hv_nn_graph_create(&t->gc)) ||
        (st = hv_nn_graph_create(&t->gi)))
        goto done;
    if ((st = hv_model_senet3d_build(t->gs, ps, cfg, n, d, h, w, &t->ios))) goto done;
    t->lab_s = hv_nn_input(t->gs, "grades", 1, nn);
    t->loss_s = hv_nn_supcon(t->gs, t->ios.proj, t->lab_s, (float)o->temperature);
    if ((st = hv_nn_graph_plan(t->gs, be, HV_NN_PLAN_TRAIN))) goto done;

    if ((st = hv_model_senet3d_build(t->gc, ps, cfg, n, d, h, w, &t->ioc))) goto done;
    t->lab_c = hv_nn_input(t->gc, "grades", 1, nn);
    t->cw = hv_nn_input(t->gc, "class_weights", 1, nc);
    t->loss_c = hv_nn_cross_entropy(t->gc, t->ioc.logits, t->lab_c, t->cw);
    if ((st = hv_nn_graph_plan(t->gc, be, HV_NN_PLAN_TRAIN))) goto done;
    if ((st = hv_nn_tensor_set(t->cw, t->class_w, HV_MODEL_SENET3D_GRADES))) goto done;

    if ((st = hv_model_senet3d_build(t->gi, ps, cfg, n, d, h, w, &t->ioi))) goto done;
    if ((st = hv_nn_graph_plan(t->gi, be, 0))) goto done;

    if ((st = hv_nn_adam_create(ps, o->lr_supcon, 0.9, 0.999, 1e-8, &t->adam_s)) ||
        (st = hv_nn_adam_create(ps, o->lr_cls, 0.9, 0.999, 1e-8, &t->adam_c)))
        goto done;
    t->n_saved = hv_nn_params_numel(ps, 0) - hv_nn_params_numel(ps, 1);
    t->saved = malloc((size_t)(t->n_saved > 0 ? t->n_saved : 1) * sizeof *t->saved);
    if (!t->saved) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d trainer: out of memory");
        goto done;
    }
    *out = t;
    t = NULL;
done:
    if (st != HV_OK) st = hv_error_wrap(st, "senet3d trainer: planning %lld x 1 x %lld x %lld x "
                                        "%lld", (long long)n, (long long)d, (long long)h,
                                        (long long)w);
    hv_model_senet3d_trainer_free(t);
    return st;
}

/* Copy the buffers (running statistics) out (save = 1) or back. */
static hv_status buffers(hv_model_senet3d_trainer *t, int save)
{
    float *p = t->saved;
    for (size_t i = 0; i < hv_nn_params_size(t->ps); i++) {
        hv_nn_param *q = hv_nn_params_at(t->ps, i);
        if (hv_nn_param_trainable(q)) continue;
        const int64_t k = hv_nn_param_numel(q);
        hv_status st = save ? hv_nn_param_get(q, p, (size_t)k) : hv_nn_param_set(q, p, (size_t)k);
        if (st) return st;
        p += k;
    }
    return HV_OK;
}

/* input check, forward, loss check, backward, Adam */
static hv_status step(hv_model_senet3d_trainer *t, hv_nn_graph *g, hv_nn_tensor *x,
                      hv_nn_tensor *lab, hv_nn_tensor *loss, hv_nn_adam *adam, const float *xv,
                      const float *grades, double *loss_out, const char *what)
{
    if (!xv || !grades) return hv_error_set(HV_ERR_ARG, "senet3d %s step: NULL input", what);
    for (int64_t i = 0; i < t->n * t->vox; i++)
        if (!isfinite(xv[i]))
            return hv_error_set(HV_ERR_ARG, "senet3d %s step: voxel %lld of crop %lld is %g",
                                what, (long long)(i % t->vox), (long long)(i / t->vox),
                                (double)xv[i]);
    hv_status st;
    if ((st = buffers(t, 1))) return st;
    if ((st = hv_nn_tensor_set(x, xv, (size_t)(t->n * t->vox))) ||
        (st = hv_nn_tensor_set(lab, grades, (size_t)t->n)))
        return st;
    float l = NAN;
    if ((st = hv_nn_graph_forward(g)) == HV_OK) st = hv_nn_tensor_get(loss, &l, 1);
    if (loss_out) *loss_out = l;
    if (st == HV_OK && !isfinite(l))
        st = hv_error_set(HV_ERR_NUMERIC, "senet3d %s step: the loss is %g; no update", what,
                          (double)l);
    if (st != HV_OK) { /* the forward may have moved the running statistics */
        hv_status rs = buffers(t, 0);
        return hv_error_wrap(rs ? rs : st, "senet3d %s step: forward", what);
    }
    hv_nn_params_zero_grad(t->ps);
    if ((st = hv_nn_graph_backward(g, loss)))
        return hv_error_wrap(st, "senet3d %s step: backward", what);
    if ((st = hv_nn_adam_step(adam))) return hv_error_wrap(st, "senet3d %s step: Adam", what);
    hv_nn_params_touch(t->ps);
    return HV_OK;
}

hv_status hv_model_senet3d_supcon_step(hv_model_senet3d_trainer *t, const float *x,
                                       const float *grades, double *loss)
{
    if (!t) return hv_error_set(HV_ERR_ARG, "senet3d supcon step: NULL trainer");
    return step(t, t->gs, t->ios.x, t->lab_s, t->loss_s, t->adam_s, x, grades, loss, "supcon");
}

hv_status hv_model_senet3d_cls_step(hv_model_senet3d_trainer *t, const float *x,
                                    const float *grades, double *loss)
{
    if (!t) return hv_error_set(HV_ERR_ARG, "senet3d classification step: NULL trainer");
    return step(t, t->gc, t->ioc.x, t->lab_c, t->loss_c, t->adam_c, x, grades, loss,
                "classification");
}

hv_status hv_model_senet3d_predict(hv_model_senet3d_trainer *t, const float *x, float *logits,
                                   float *proj)
{
    if (!t || !x || !logits) return hv_error_set(HV_ERR_ARG, "senet3d predict: NULL argument");
    hv_status st;
    if ((st = hv_nn_tensor_set(t->ioi.x, x, (size_t)(t->n * t->vox)))) return st;
    if ((st = hv_nn_graph_forward(t->gi))) return hv_error_wrap(st, "senet3d predict: forward");
    if ((st = hv_nn_tensor_get(t->ioi.logits, logits, (size_t)(t->n * HV_MODEL_SENET3D_GRADES))))
        return st;
    if (proj && (st = hv_nn_tensor_get(t->ioi.proj, proj, (size_t)(t->n * t->cfg.proj_dim))))
        return st;
    return HV_OK;
}
