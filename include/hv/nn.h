/*
 * hv/nn.h: the neural-network engine (tensors, graphs, autodiff, optimiser,
 * checkpoints). It knows ops, not networks: the networks that run on it are
 * in hv/model.h (src/model).
 *
 * Shape of the API (after ggml: graph first, compute later):
 *
 *     hv_nn_params *ps;  hv_nn_params_create(&ps);          // persistent weights
 *     hv_nn_param *w, *b;
 *     hv_nn_params_add(ps, "conv1.weight", 4, (int64_t[]){16, 3, 3, 3}, 1, &w);
 *     hv_nn_params_add(ps, "conv1.bias",   1, (int64_t[]){16}, 1, &b);
 *     hv_nn_init_torch_default(w, b, &rng);
 *
 *     hv_nn_graph *g;  hv_nn_graph_create(&g);               // records ops only
 *     hv_nn_tensor *x = hv_nn_input(g, "x", 4, (int64_t[]){1, 3, 64, 64});
 *     hv_nn_tensor *y = hv_nn_elu(g, hv_nn_conv2d(g, x, hv_nn_param_tensor(g, w),
 *                                  hv_nn_param_tensor(g, b), 1, 1, 1), 1.0f);
 *     hv_nn_set_output(y);
 *     hv_nn_backend *be;  hv_nn_backend_create_cpu(&be);      // oneDNN + reference
 *     hv_nn_graph_plan(g, be, 0);                            // memory + primitives, once
 *     for (...) {                                            // no allocation in here
 *         hv_nn_tensor_set(x, data, n);
 *         hv_nn_graph_forward(g);
 *         hv_nn_tensor_get(y, out, n);
 *     }
 *
 * Building ops never fails loudly: the first error is recorded in the graph
 * (sticky, like redis' rio) and every later op returns NULL; check it once
 * with hv_nn_graph_status() (hv_nn_graph_plan also returns it).
 *
 * Tensors are fp32, row-major, outermost dimension first (N, C, H, W or
 * N, C, D, H, W; at most HV_NN_MAX_DIMS). Image ops take 4-D NCHW tensors;
 * batch norm, gap and channel_mul take NCHW or NCDHW; conv3d and maxpool3d
 * take NCDHW.
 *
 * Training: plan with HV_NN_PLAN_TRAIN, run forward, then
 * hv_nn_graph_backward(g, loss) (reverse-mode: every op's backward kernel runs
 * in reverse order and ADDS into the gradients of its inputs); parameter
 * gradients accumulate in the parameter set until hv_nn_params_zero_grad();
 * hv_nn_adam_step() updates the weights.
 *
 * Ownership: a graph owns its tensors (freed with the graph); a parameter set
 * owns its parameters; a graph borrows the parameter sets and the backend it
 * was planned with, which must outlive it. Objects are single-threaded: one
 * graph is used from one thread at a time (kernels themselves use OpenMP).
 */
#ifndef HV_NN_H
#define HV_NN_H

#include <stddef.h>
#include <stdint.h>

#include "hv/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HV_NN_MAX_DIMS 5

typedef struct hv_nn_graph hv_nn_graph;
typedef struct hv_nn_tensor hv_nn_tensor;
typedef struct hv_nn_params hv_nn_params;
typedef struct hv_nn_param hv_nn_param;
typedef struct hv_nn_backend hv_nn_backend;
typedef struct hv_nn_adam hv_nn_adam;

/* Operation codes. Append only (checkpointed graphs never store these, but
 * backends switch on them); WARNING: keep in sync with op_names[] in graph.c. */
typedef enum hv_nn_op {
    HV_NN_OP_INPUT = 0,
    HV_NN_OP_PARAM,
    HV_NN_OP_CONV2D,        /* x, w[, b]; stride, pad, dilation               */
    HV_NN_OP_DECONV2D,      /* x, w (Cin, Cout, k, k)[, b]; stride, pad, opad */
    HV_NN_OP_SPECTRAL_NORM, /* w, u, v (buffers): w / sigma                   */
    HV_NN_OP_ELU,
    HV_NN_OP_RELU,
    HV_NN_OP_LEAKY_RELU,
    HV_NN_OP_SIGMOID,
    HV_NN_OP_CLAMP,
    HV_NN_OP_UPSAMPLE,      /* nearest, integer factor                        */
    HV_NN_OP_DOWNSAMPLE,    /* nearest (PyTorch: picks index i*f)             */
    HV_NN_OP_CONCAT,        /* along dimension 1                              */
    HV_NN_OP_PAD,           /* zero padding of H and W                        */
    HV_NN_OP_SLICE,         /* a range along one dimension                    */
    HV_NN_OP_BATCH_NORM,    /* x (NCHW or NCDHW), gamma, beta, running stats  */
    HV_NN_OP_GAP,           /* global average pool -> N, C, 1, 1 (, 1)        */
    HV_NN_OP_LINEAR,        /* x (N, K...) , w (M, K)[, b (M)] -> N, M         */
    HV_NN_OP_SOFTMAX,       /* over dimension 1                               */
    HV_NN_OP_ADD,
    HV_NN_OP_SUB,
    HV_NN_OP_MUL,
    HV_NN_OP_SCALE,         /* a*x + b                                        */
    HV_NN_OP_SUM,           /* all elements -> shape (1)                      */
    HV_NN_OP_MEAN,
    HV_NN_OP_SOBEL,         /* N,1,H,W: |grad| with replicate padding, <= 1   */
    HV_NN_OP_BCE_LOGITS,    /* mean over all elements                         */
    HV_NN_OP_L1,            /* mean |x - t|                                   */
    HV_NN_OP_MSE,           /* mean (x - t)^2                                 */
    HV_NN_OP_DICE,          /* mean over items of (2 sum pt + 1e-5)/(sum p + sum t + 1e-5) */
    HV_NN_OP_CTX_ATTN,      /* DeepFill v1 contextual attention (f, b, mask)  */
    HV_NN_OP_RESHAPE,       /* same elements, new shape                       */
    HV_NN_OP_MAXPOOL,       /* 2-D max pooling (padding never wins)           */
    HV_NN_OP_CHANNEL_MUL,   /* x (N,C,H,W or N,C,D,H,W) * s (N,C): SE scaling */
    HV_NN_OP_CONV3D,        /* x (NCDHW), w (Cout,Cin,kd,kh,kw)[, b]; per axis */
    HV_NN_OP_MAXPOOL3D,     /* 3-D max pooling (padding never wins)           */
    HV_NN_OP_TANH,
    HV_NN_OP_REFLECT_PAD,   /* reflection padding of H and W (ReflectionPad2d) */
    HV_NN_OP_UPSAMPLE_BILINEAR, /* integer factor, align_corners = True       */
    HV_NN_OP_AOT_NORM,      /* AOT-GAN gate norm per (item, channel) over H, W */
    HV_NN_OP_L2_NORMALIZE,  /* x (N, K) / max(||x_n||, eps) per row           */
    HV_NN_OP_SUPCON,        /* supervised contrastive loss of z (N, K), labels */
    HV_NN_OP_CROSS_ENTROPY, /* softmax cross entropy of logits (N, C), labels[, w] */
    HV_NN_OP_COUNT
} hv_nn_op;

const char *hv_nn_op_name(hv_nn_op op);

/* ------------------------------------------------------------ parameters */

hv_status hv_nn_params_create(hv_nn_params **out);
void hv_nn_params_free(hv_nn_params *ps);
/* Add a zero-filled tensor (name and shape are copied). trainable = 0 makes a buffer (running statistics,
 * spectral-norm vectors): saved in checkpoints, never given a gradient. Names
 * are unique (HV_ERR_ARG otherwise). *out (may be NULL) is borrowed from ps. */
hv_status hv_nn_params_add(hv_nn_params *ps, const char *name, int ndim,
                           const int64_t *shape, int trainable, hv_nn_param **out);
/* NULL when absent. */
hv_nn_param *hv_nn_params_find(const hv_nn_params *ps, const char *name);
size_t hv_nn_params_size(const hv_nn_params *ps);
hv_nn_param *hv_nn_params_at(const hv_nn_params *ps, size_t i);
/* Number of scalars, trainable only or all. */
int64_t hv_nn_params_numel(const hv_nn_params *ps, int trainable_only);
void hv_nn_params_zero_grad(hv_nn_params *ps);
/* Call after writing parameter data by hand, so that graphs recompute the
 * values they folded from it (spectral norm in inference graphs). */
void hv_nn_params_touch(hv_nn_params *ps);

const char *hv_nn_param_name(const hv_nn_param *p);
int hv_nn_param_shape(const hv_nn_param *p, int64_t shape[HV_NN_MAX_DIMS]);
int64_t hv_nn_param_numel(const hv_nn_param *p);
int hv_nn_param_trainable(const hv_nn_param *p);
/* Host storage owned by the set (numel floats). Write through these only
 * between graph runs, then call hv_nn_params_touch(). NULL when the set is
 * bound to a device backend (hv_nn_params_bind): use the copies below. */
float *hv_nn_param_data(hv_nn_param *p);
float *hv_nn_param_grad(hv_nn_param *p); /* NULL for buffers */
/* Copies of a parameter's values and gradient (n must equal its numel),
 * wherever it lives; set bumps its version (no hv_nn_params_touch needed). */
hv_status hv_nn_param_get(const hv_nn_param *p, float *dst, size_t n);
hv_status hv_nn_param_get_grad(const hv_nn_param *p, float *dst, size_t n);
hv_status hv_nn_param_set(hv_nn_param *p, const float *src, size_t n);
/* Overwrite a trainable parameter's gradient (a data-parallel sum written
 * back before the optimiser step); the values and their version are kept.
 * HV_ERR_ARG for a buffer (no gradient) or n != numel. */
hv_status hv_nn_param_set_grad(hv_nn_param *p, const float *src, size_t n);

/* Placement. Move the data and gradients of every parameter of ps (and of
 * those added later) into the memory of backend be: on a backend whose
 * buffers are host memory (ref, cpu) and for be NULL that is host memory,
 * on a device backend its buffers (the host storage is freed; values are
 * kept). Graphs planned on a device backend read and update the bound
 * copies in place and refuse a parameter that is not bound to it; graphs on
 * a host backend refuse a parameter bound to a device. Bind before planning
 * graphs (a graph planned earlier refuses to run once its parameters moved)
 * and before hv_nn_adam_create (the optimiser keeps its moments where the
 * parameters are at its creation and refuses to step after they moved).
 * Initialisation, hv_nn_sn_power_iteration and checkpoints work on bound
 * sets through host copies. be is borrowed: it must outlive the set or a
 * later hv_nn_params_bind(ps, NULL). */
hv_status hv_nn_params_bind(hv_nn_params *ps, hv_nn_backend *be);

/* Seeded initialisation (hv_rng from core.h; draws in element order). */
void hv_nn_init_uniform(hv_nn_param *p, hv_rng *rng, double lo, double hi);
void hv_nn_init_normal(hv_nn_param *p, hv_rng *rng, double mean, double std);
void hv_nn_init_const(hv_nn_param *p, double value);
/* PyTorch's default for Conv2d/Linear: weight kaiming_uniform(a = sqrt(5)),
 * i.e. U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)); fan_in = numel(w)/w.shape[0].
 * b may be NULL. */
void hv_nn_init_torch_default(hv_nn_param *w, hv_nn_param *b, hv_rng *rng);
/* Spectral-norm vectors as PyTorch creates them: u, v = normalise(N(0, 1)). */
void hv_nn_init_sn_vectors(hv_nn_param *u, hv_nn_param *v, hv_rng *rng);

/* Run `iters` power iterations of spectral normalisation (w viewed as
 * (shape[0], rest)) on the stored u, v, as that many training forwards would
 * (PyTorch starts from random u, v; an inference graph of a fresh network
 * then divides by a poor estimate of sigma). */
void hv_nn_sn_power_iteration(const hv_nn_param *w, hv_nn_param *u, hv_nn_param *v, int iters);

/* ------------------------------------------------------------- optimiser */

/* Adam over the trainable parameters of ps (borrowed; must outlive adam),
 * PyTorch semantics (bias-corrected, eps added to sqrt(v_hat)). The reference
 * uses lr 2e-4, beta1 0.5, beta2 0.999, eps 1e-8. */
hv_status hv_nn_adam_create(hv_nn_params *ps, double lr, double beta1, double beta2,
                            double eps, hv_nn_adam **out);
void hv_nn_adam_free(hv_nn_adam *a);
void hv_nn_adam_set_lr(hv_nn_adam *a, double lr);
/* One update from the accumulated gradients (does not zero them): the host
 * loop on host memory, the backend's own update (adam_step hook) on a bound
 * set. Every gradient is checked first: a non-finite value anywhere is
 * HV_ERR_NUMERIC naming the first such parameter, with no weight, moment or
 * step count changed (a device backend synchronises once per step). */
hv_status hv_nn_adam_step(hv_nn_adam *a);
int64_t hv_nn_adam_steps(const hv_nn_adam *a);

/* ----------------------------------------------------------- checkpoints */

/* HDF5 checkpoint: /params/<name> (float32 datasets with the tensor's shape),
 * /adam/m/<name>, /adam/v/<name> and attributes step, lr, beta1, beta2, eps
 * when adam is not NULL, and string attributes on /meta from meta_kv, which
 * holds n_meta (key, value) pairs. Written to "<path>.tmp" then renamed.
 * The file is a serial HDF5 file (readable with h5dump / h5py). */
hv_status hv_nn_checkpoint_save(const char *path, const hv_nn_params *ps,
                                const hv_nn_adam *adam, const char *const *meta_kv,
                                size_t n_meta);
/* Load every parameter of ps from path; a missing name or a shape mismatch is
 * HV_ERR_FORMAT (strict = 1) or skipped with a warning (strict = 0); extra
 * tensors in the file are ignored. adam (may be NULL) gets its state back. */
hv_status hv_nn_checkpoint_load(const char *path, hv_nn_params *ps, hv_nn_adam *adam,
                                int strict);
/* Several parameter sets in one file (a GAN's networks): set i goes under
 * /<group_names[i]>/params and /<group_names[i]>/adam (adams may be NULL,
 * or hold NULLs), metadata under /meta as above; atomic like
 * hv_nn_checkpoint_save. Group names: no '/', not "meta". */
hv_status hv_nn_checkpoint_save_groups(const char *path, size_t n_groups,
                                       const char *const *group_names,
                                       const hv_nn_params *const *ps,
                                       const hv_nn_adam *const *adams,
                                       const char *const *meta_kv, size_t n_meta);
/* Strict load of such a file: every tensor (and Adam moment, when adams[i]
 * is set) of every group is checked for presence and shape before anything
 * is read, so a refused file (HV_ERR_FORMAT naming the first missing or
 * differently shaped tensor) changes nothing. */
hv_status hv_nn_checkpoint_load_groups(const char *path, size_t n_groups,
                                       const char *const *group_names, hv_nn_params *const *ps,
                                       hv_nn_adam *const *adams);
/* One metadata value into buf (NUL-terminated, truncated to len; "" on error).
 * Fixed-size and variable-length string attributes are read alike (h5py, as
 * used by scripts/pth_to_hv.py, writes variable-length UTF-8 strings). */
hv_status hv_nn_checkpoint_meta(const char *path, const char *key, char *buf, size_t len);

/* --------------------------------------------------------------- backends */

/* Plain reference kernels only (the ground truth every backend is tested
 * against). */
hv_status hv_nn_backend_create_ref(hv_nn_backend **out);
/* CPU backend: oneDNN primitives for conv2d, conv3d and the eltwise ops (elu, relu,
 * leaky_relu, sigmoid, tanh; forward and backward, created once per graph node),
 * OpenBLAS for the GEMMs inside the reference kernels (deconv2d, linear,
 * contextual attention), reference kernels for the rest (batch norm among
 * them). docs/nn.md lists which op runs where. */
hv_status hv_nn_backend_create_cpu(hv_nn_backend **out);
void hv_nn_backend_free(hv_nn_backend *be);
const char *hv_nn_backend_name(const hv_nn_backend *be);

/* Inference precision of a backend's convolutions. HV_NN_FP32 (the default
 * of every backend) computes in fp32. HV_NN_BF16 (CPU backend only, where
 * oneDNN has a native bf16 convolution: a CPU with avx512_bf16 or AMX) runs
 * each conv2d with bf16 source, weights and (between two convolutions) output,
 * fp32 bias and fp32 accumulation; the weights are converted once per change
 * of their values, every tensor the other kernels read stays fp32. A
 * convolution oneDNN has only a reference bf16 kernel for stays fp32, and so
 * does one with fewer than HV_NN_BF16_MIN_COUT output channels (the output
 * heads, whose thresholded probabilities bf16 moved; hv_nn_graph_bf16_nodes
 * counts the others). bf16 is for inference only: a
 * graph with gradients (HV_NN_PLAN_TRAIN or HV_NN_PLAN_GRAD) planned on a
 * bf16 backend is refused (HV_ERR_UNSUPPORTED). Set it before planning the
 * graphs that should use it (planned graphs keep theirs). */
typedef enum hv_nn_precision { HV_NN_FP32 = 0, HV_NN_BF16 = 1 } hv_nn_precision;
enum { HV_NN_BF16_MIN_COUT = 4 };
/* HV_ERR_UNSUPPORTED with a message naming the backend and what is missing
 * (the backend has no bf16 path, or this CPU lacks avx512_bf16/AMX) when p
 * cannot be had; the backend's precision is then unchanged. */
hv_status hv_nn_backend_set_precision(hv_nn_backend *be, hv_nn_precision p);
hv_nn_precision hv_nn_backend_precision(const hv_nn_backend *be);
/* "fp32" / "bf16" (the spelling of configs and command lines); parse returns
 * HV_ERR_ARG (no message set: the caller names its key) on anything else. */
const char *hv_nn_precision_name(hv_nn_precision p);
hv_status hv_nn_precision_parse(const char *s, hv_nn_precision *out);

/* --------------------------------------------------------------- graphs */

hv_status hv_nn_graph_create(hv_nn_graph **out);
void hv_nn_graph_free(hv_nn_graph *g);
/* First error recorded while building or running; HV_OK otherwise. */
hv_status hv_nn_graph_status(const hv_nn_graph *g);

/* Leaves. An input's data is set with hv_nn_tensor_set after planning. */
hv_nn_tensor *hv_nn_input(hv_nn_graph *g, const char *name, int ndim, const int64_t *shape);
/* Ask for the gradient of an input (tests, Grad-CAM). */
void hv_nn_set_requires_grad(hv_nn_tensor *t);
/* The graph node of a parameter (one node per parameter per graph). */
hv_nn_tensor *hv_nn_param_tensor(hv_nn_graph *g, hv_nn_param *p);
/* Keep a tensor's value readable after forward (planning may reuse the
 * memory of tensors that are not outputs in inference graphs). */
void hv_nn_set_output(hv_nn_tensor *t);

/* Ops. Inputs may be NULL (then NULL is returned: errors propagate). */
hv_nn_tensor *hv_nn_conv2d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w,
                           hv_nn_tensor *b, int stride, int pad, int dilation);
/* Transposed convolution; w is (Cin, Cout, k, k) as in PyTorch. */
hv_nn_tensor *hv_nn_deconv2d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w,
                             hv_nn_tensor *b, int stride, int pad, int out_pad);
/* w / sigma(w), w viewed as (shape[0], rest). u (shape[0]) and v (rest) are
 * the persistent power-iteration vectors (non-trainable parameters). In a
 * training graph every forward runs one power iteration (updating u, v) with
 * eps 1e-12, as PyTorch; in an inference graph u and v are used as stored and
 * the result is folded (computed once, again only after params change). */
hv_nn_tensor *hv_nn_spectral_norm(hv_nn_graph *g, hv_nn_tensor *w, hv_nn_tensor *u,
                                  hv_nn_tensor *v);
hv_nn_tensor *hv_nn_elu(hv_nn_graph *g, hv_nn_tensor *x, float alpha);
hv_nn_tensor *hv_nn_relu(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_leaky_relu(hv_nn_graph *g, hv_nn_tensor *x, float slope);
hv_nn_tensor *hv_nn_sigmoid(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_clamp(hv_nn_graph *g, hv_nn_tensor *x, float lo, float hi);
hv_nn_tensor *hv_nn_upsample(hv_nn_graph *g, hv_nn_tensor *x, int factor);
hv_nn_tensor *hv_nn_downsample(hv_nn_graph *g, hv_nn_tensor *x, int factor);
hv_nn_tensor *hv_nn_concat(hv_nn_graph *g, int n, hv_nn_tensor *const *xs);
hv_nn_tensor *hv_nn_pad(hv_nn_graph *g, hv_nn_tensor *x, int top, int bottom, int left,
                        int right);
hv_nn_tensor *hv_nn_slice(hv_nn_graph *g, hv_nn_tensor *x, int dim, int64_t start,
                          int64_t len);
/* x is N, C, H, W or N, C, D, H, W; statistics are per channel over the
 * items and every spatial position (BatchNorm2d / BatchNorm3d).
 * Training graphs normalise with the batch statistics (biased variance) and
 * update the running ones (unbiased variance, momentum); inference graphs use
 * the running statistics. PyTorch: momentum 0.1, eps 1e-5. */
hv_nn_tensor *hv_nn_batch_norm(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *gamma,
                               hv_nn_tensor *beta, hv_nn_tensor *running_mean,
                               hv_nn_tensor *running_var, float momentum, float eps);
/* Mean over the spatial positions of each (item, channel): N, C, H, W ->
 * N, C, 1, 1 and N, C, D, H, W -> N, C, 1, 1, 1. */
hv_nn_tensor *hv_nn_gap(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_linear(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w,
                           hv_nn_tensor *b);
hv_nn_tensor *hv_nn_softmax(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_add(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b);
hv_nn_tensor *hv_nn_sub(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b);
hv_nn_tensor *hv_nn_mul(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b);
hv_nn_tensor *hv_nn_scale(hv_nn_graph *g, hv_nn_tensor *x, float a, float b);
hv_nn_tensor *hv_nn_sum(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_mean(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_sobel(hv_nn_graph *g, hv_nn_tensor *x);
hv_nn_tensor *hv_nn_bce_logits(hv_nn_graph *g, hv_nn_tensor *logits, hv_nn_tensor *target);
hv_nn_tensor *hv_nn_l1(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *target);
hv_nn_tensor *hv_nn_mse(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *target);
hv_nn_tensor *hv_nn_dice(hv_nn_graph *g, hv_nn_tensor *p, hv_nn_tensor *target);
hv_nn_tensor *hv_nn_reshape(hv_nn_graph *g, hv_nn_tensor *x, int ndim, const int64_t *shape);
/* PyTorch MaxPool2d(kernel, stride, padding), floor mode; the gradient goes
 * to the first maximum of each window. */
hv_nn_tensor *hv_nn_maxpool(hv_nn_graph *g, hv_nn_tensor *x, int kernel, int stride, int pad);
/* y[n,c,...] = x[n,c,...] * s[n,c] for x of shape (N, C, H, W) or (N, C, D,
 * H, W), with s of N*C elements and first dimension N: (N, C), (N, C, 1, 1)
 * or (N, C, 1, 1, 1) (squeeze-and-excitation scaling). */
hv_nn_tensor *hv_nn_channel_mul(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *s);
/* 3-D convolution (PyTorch Conv3d): x (N, Cin, D, H, W), w (Cout, Cin, kd,
 * kh, kw), b (Cout) or NULL. stride (>= 1), pad (>= 0, zero padding on both
 * sides) and dilation (>= 1) are given per axis, in the order D, H, W
 * (arrays of 3, read at the call). Output (N, Cout, Do, Ho, Wo) with Do =
 * (D + 2 pad - dilation (kd - 1) - 1) / stride + 1 (floor), and so on. */
hv_nn_tensor *hv_nn_conv3d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w, hv_nn_tensor *b,
                           const int stride[3], const int pad[3], const int dilation[3]);
/* PyTorch MaxPool3d(kernel, stride, padding), floor mode, per axis (D, H,
 * W; arrays of 3): 2 pad <= kernel on each axis, padding never wins, the
 * gradient goes to the first maximum of each window (in D, H, W order).
 * The saved argmax is a float: D*H*W is limited to 2^24. */
hv_nn_tensor *hv_nn_maxpool3d(hv_nn_graph *g, hv_nn_tensor *x, const int kernel[3],
                              const int stride[3], const int pad[3]);

/* Ops of AOT-GAN's generator (Zeng et al., TVCG 2022; docs/nn.md). */
hv_nn_tensor *hv_nn_tanh(hv_nn_graph *g, hv_nn_tensor *x);
/* PyTorch ReflectionPad2d((left, right, top, bottom)) of an N, C, H, W
 * tensor: the border row or column itself is not repeated (x[-1] = x[1]).
 * Each pad is >= 0 and < the size of its axis (top, bottom < H; left,
 * right < W), as PyTorch asks. */
hv_nn_tensor *hv_nn_reflect_pad(hv_nn_graph *g, hv_nn_tensor *x, int top, int bottom, int left,
                                int right);
/* F.interpolate(x, scale_factor = factor, mode = "bilinear", align_corners =
 * True) of an N, C, H, W tensor (factor >= 1): output H*factor x W*factor,
 * output row i samples input row i (H - 1) / (H*factor - 1), and so on. */
hv_nn_tensor *hv_nn_upsample_bilinear(hv_nn_graph *g, hv_nn_tensor *x, int factor);
/* AOT-GAN's gate normalisation (its my_layer_norm) of an N, C, H, W tensor,
 * per item and channel over H, W (H*W >= 2):
 *     y = 5 (2 (x - mean) / (std + 1e-9) - 1),
 * std with Bessel's correction (divides by H*W - 1, torch.std's default);
 * mean and std are accumulated in double. */
hv_nn_tensor *hv_nn_aot_norm(hv_nn_graph *g, hv_nn_tensor *x);

/* Supervised contrastive pre-training (Khosla et al., NeurIPS 2020;
 * docs/nn.md). l2_normalize: y[n, :] = x[n, :] / max(||x[n, :]||_2, eps)
 * of an (N, K) tensor (F.normalize(x, dim = 1, eps = eps); eps > 0, 1e-12
 * in PyTorch). */
hv_nn_tensor *hv_nn_l2_normalize(hv_nn_graph *g, hv_nn_tensor *x, float eps);
/* The SupCon loss (the paper's L_out, one view per item) of features z (N,
 * K), N >= 2, usually L2-normalised, with class labels (N) (integer values
 * held as floats, compared for equality; a tensor without gradient) and
 * temperature t > 0 (0.07 in the reference code):
 *     s_ij = z_i . z_j / t,
 *     L = (1/N) sum_i [ -(1/|P(i)|) sum_{p in P(i)} s_ip + log sum_{a != i} exp(s_ia) ]
 * with P(i) the other items of i's class; an item alone in its class adds 0
 * to the sum and still counts in N (HobbitLong/SupContrast's losses.py, its
 * base_temperature equal to the temperature). A scalar (shape (1)). The
 * gradient flows to z only; a label that is not finite is HV_ERR_ARG at
 * forward. */
hv_nn_tensor *hv_nn_supcon(hv_nn_graph *g, hv_nn_tensor *z, hv_nn_tensor *labels,
                           float temperature);
/* Softmax cross entropy of logits (N, C) against class labels (N) (integer
 * values 0..C-1 held as floats) with optional class weights w (C) (NULL:
 * all 1), PyTorch's F.cross_entropy(logits, labels, weight = w) with its
 * weighted mean: sum_i w[y_i] (-log softmax(logits_i)[y_i]) / sum_i w[y_i].
 * A scalar (shape (1)); gradient to the logits only. At forward a label
 * that is not an integer in 0..C-1, a weight that is negative or not
 * finite, or a batch whose weights sum to 0 is HV_ERR_ARG. */
hv_nn_tensor *hv_nn_cross_entropy(hv_nn_graph *g, hv_nn_tensor *logits, hv_nn_tensor *labels,
                                  hv_nn_tensor *weights);

/* Contextual attention (DeepFill v1 as in the reference, spec 5.3): f and b
 * are N,C,H,W features (H, W divisible by rate), mask N,1,Hm,Wm with 1 = hole
 * (Hm a multiple of H/rate). Unlike the reference, each item uses its own
 * mask (the reference applies item 0's mask to the whole batch). Gradients
 * flow to f and b, not to the mask. */
typedef struct hv_nn_ctx_attn_opts {
    int ksize;           /* 3  */
    int rate;            /* 2  */
    int fuse_k;          /* 3 (0: no fusion) */
    float softmax_scale; /* 10 */
} hv_nn_ctx_attn_opts;
hv_nn_tensor *hv_nn_ctx_attn(hv_nn_graph *g, hv_nn_tensor *f, hv_nn_tensor *b,
                             hv_nn_tensor *mask, const hv_nn_ctx_attn_opts *opts);

int hv_nn_tensor_shape(const hv_nn_tensor *t, int64_t shape[HV_NN_MAX_DIMS]);
int64_t hv_nn_tensor_numel(const hv_nn_tensor *t);
hv_nn_op hv_nn_tensor_op(const hv_nn_tensor *t);

enum {
    HV_NN_PLAN_TRAIN = 1, /* training mode: keep activations, allocate gradients,
                             BN batch statistics, spectral-norm power iteration */
    HV_NN_PLAN_GRAD = 2   /* inference-mode ops (BN running statistics, stored
                             spectral-norm vectors) but with gradients, e.g. for
                             Grad-CAM++ */
};
/* Allocate all memory of the graph (one arena for activations and gradients,
 * planned from tensor lifetimes; one workspace) and let the backend create its
 * per-node state (oneDNN primitives). Call once; the graph is then frozen.
 * flags 0 plans an inference graph: values that depend on parameters only are
 * folded, an activation is fused into the convolution before it when nothing
 * else reads the convolution, and only inputs and outputs (hv_nn_set_output)
 * keep readable values after forward. */
hv_status hv_nn_graph_plan(hv_nn_graph *g, hv_nn_backend *be, unsigned flags);
/* Floating-point operations of one forward pass (2 per multiply-add) of the
 * convolutions (2-D and 3-D), transposed convolutions, linear layers and contextual
 * attention; the elementwise rest is not counted. */
double hv_nn_graph_flops(const hv_nn_graph *g);
/* Nodes the backend runs in bf16 (0 unless planned on a bf16 backend). */
int hv_nn_graph_bf16_nodes(const hv_nn_graph *g);
/* Bytes held by the plan (arena + workspace); after hv_nn_graphs_share, the
 * bytes the graph uses of the shared arena (so the sum over the group counts
 * the shared bytes more than once). */
size_t hv_nn_graph_bytes(const hv_nn_graph *g);
/* Let planned graphs that never run interleaved use ONE arena and one
 * workspace, graph gs[0]'s (instead of one each): a training step's
 * discriminator passes, each a forward and its backward read out before the
 * next pass starts, need no more. gs[1..n) join gs[0]'s memory (gs[0] may
 * already be in a group from an earlier call; the others may not), so a
 * caller can join each graph right after planning it and never hold more
 * than the group plus one graph; each must need no more arena and
 * workspace than gs[0] (HV_ERR_ARG otherwise: name the largest first).
 * Running any graph of the group overwrites what the others hold: every
 * value of a graph (inputs, outputs, gradients) must be set and read
 * between that graph's own forward/backward calls, with no other graph of
 * the group in between; a joining graph finds the group's values where a
 * fresh plan has zeros. Only graphs with gradients (HV_NN_PLAN_TRAIN or
 * HV_NN_PLAN_GRAD): an inference graph keeps its folded constants in its
 * arena from one run to the next. Graphs on a backend that allocates its
 * own buffers (device memory) keep their own memory (HV_OK, nothing
 * shared). The shared memory belongs to the group: each hv_nn_graph_free
 * releases its share, the last one frees it. */
hv_status hv_nn_graphs_share(hv_nn_graph *const *gs, int n);
hv_status hv_nn_graph_forward(hv_nn_graph *g);
/* Reverse pass from a scalar loss (numel 1): d loss / d loss = 1. Gradients
 * of tensors are reset first; parameter gradients accumulate. Needs a graph
 * planned with HV_NN_PLAN_TRAIN or HV_NN_PLAN_GRAD. */
hv_status hv_nn_graph_backward(hv_nn_graph *g, hv_nn_tensor *loss);
/* The same, run only as far back as tensor `stop` (recorded before loss):
 * the backward kernels of the nodes recorded after `stop` run, so stop's
 * gradient (and that of every tensor recorded after it) is complete, while
 * tensors recorded before it keep a zero gradient and parameters used only
 * before it get nothing. Grad-CAM++ needs the target layer's gradient only,
 * and the stem-to-target part is most of a backward. NULL stop: the whole
 * backward. */
hv_status hv_nn_graph_backward_to(hv_nn_graph *g, hv_nn_tensor *loss, hv_nn_tensor *stop);

/* Data-parallel training: sum n floats of buf in place over every
 * participant (an MPI_Allreduce with MPI_SUM, or threads meeting at a
 * barrier in tests). Called with the same n, in the same order, by every
 * participant; returns 0 on success. */
typedef int (*hv_nn_reduce_fn)(void *ctx, float *buf, size_t n);

/* Synchronised batch norm: in a training graph with a reducer, batch norm's
 * forward sums its per-channel sums, its item count and (second pass) its
 * per-channel centred sums of squares over the participants before forming
 * the batch statistics, and its backward sums the per-channel sums of dy and
 * dy * xhat before forming the input gradient, so that R processes each
 * holding part of a batch compute what one process holding the whole batch
 * computes (running statistics included). The gamma/beta gradients stay the
 * local part: the caller's gradient reduction sums them like any other.
 * Without a reducer (fn NULL, the default) nothing is reduced. ctx is
 * borrowed. A failing reducer makes forward/backward return HV_ERR_IO. */
void hv_nn_graph_set_reducer(hv_nn_graph *g, hv_nn_reduce_fn fn, void *ctx);

/* Frozen parameters (off by default): while on, hv_nn_graph_backward
 * computes the gradients of inputs and intermediates only and leaves every
 * parameter's gradient untouched (PyTorch's requires_grad_(False) on all of
 * the graph's parameters; the GAN step uses it when a discriminator only
 * passes the generator its input gradient). */
void hv_nn_graph_set_frozen(hv_nn_graph *g, int on);

/* Per-op-type wall time of forward and backward passes, accumulated while
 * profiling is on (off by default; costs two clock reads per node). The
 * report is one line per op type, "op calls seconds [backward calls
 * seconds]", most expensive first, written into buf (truncated to len). */
void hv_nn_graph_set_profiling(hv_nn_graph *g, int on);
void hv_nn_graph_profile_report(const hv_nn_graph *g, char *buf, size_t len);

/* Copy host data in/out of a planned tensor (n must equal its numel). */
hv_status hv_nn_tensor_set(hv_nn_tensor *t, const float *src, size_t n);
hv_status hv_nn_tensor_get(const hv_nn_tensor *t, float *dst, size_t n);
/* Gradient of a tensor after backward (HV_ERR_ARG when it has none). */
hv_status hv_nn_tensor_get_grad(const hv_nn_tensor *t, float *dst, size_t n);

/* Number of heap allocations made by this module so far (process-wide); the
 * tests check that forward/backward of a planned graph make none. */
uint64_t hv_nn_alloc_count(void);

#ifdef __cplusplus
}
#endif
#endif /* HV_NN_H */
