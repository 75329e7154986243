/*
 * nn_backend.h: the inside of the NN engine, shared by the graph core
 * (the .c files of src/nn) and the backends (src/nn/cpu, later src/gpu).
 *
 * A backend is a C vtable (struct hv_nn_backend_i, after ggml's
 * ggml_backend_i). The graph asks supports_op() for every node at plan time;
 * a node the backend declines runs on the reference kernels on the host
 * (ggml-blas style partial backend): in place on a host-memory backend, on
 * host staging copies of its tensors on a device backend (host_memory 0).
 * A backend may keep per-node state (oneDNN primitives, cuDNN descriptors)
 * in node->be_state, created in node_prepare and released in node_release;
 * it may ask for workspace (scratch floats shared by all nodes) at prepare
 * time.
 *
 * Kernel contract: forward writes node->data from src[i]->data; backward
 * ADDS into src[i]->grad for every src with requires_grad (grad != NULL), from
 * node->grad. node->aux is persistent per-node memory (saved statistics);
 * ex->work is scratch valid for one kernel call.
 */
#ifndef HV_NN_BACKEND_H
#define HV_NN_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hv/nn.h"

#define HV_NN_MAX_SRC 8

struct hv_nn_param {
    char *name;
    int ndim;
    int64_t shape[HV_NN_MAX_DIMS];
    int64_t numel;
    int trainable;
    float *data;
    float *grad;      /* NULL for buffers */
    uint64_t version; /* bumped whenever data changes */
    /* the device backend holding data and grad (hv_nn_params_bind); NULL:
     * host memory (also when bound to a host-memory backend) */
    hv_nn_backend *be;
};

/* Adam's per-step constants (params.c): m = b1 m + (1 - b1) g, v = b2 v +
 * (1 - b2) g^2, w -= step_size m / (sqrt(v) / sqrt_bc2 + eps). */
typedef struct hv_nn_adam_hp {
    float beta1, beta2, step_size, sqrt_bc2, eps;
} hv_nn_adam_hp;

/* GEMM used by the reference kernels: C[M,N] = alpha * op(A) op(B) + beta * C,
 * row-major, lda/ldb/ldc as in cblas. The graph fills hv_nn_exec.gemm with
 * plain loops (hv__nn_gemm_ref); the CPU backend runs the reference kernels
 * itself with a copy of the exec context holding oneDNN's sgemm. It is a CPU
 * detail, not part of the backend interface. */
typedef void (*hv_nn_gemm_fn)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                              float alpha, const float *a, int64_t lda, const float *b,
                              int64_t ldb, float beta, float *c, int64_t ldc);

/* An optional lower-precision GEMM a backend may offer an inference kernel:
 * C[M,N] = op(A) op(B) (alpha 1, beta 0) with A and B rounded to bf16 and
 * fp32 accumulation. Returns 0 when C is written, nonzero when the backend
 * has no such kernel for this call (its shape was not prepared, or it
 * failed): the kernel then calls gemm instead. ctx is the backend's. */
typedef int (*hv_nn_gemm_bf16_fn)(void *ctx, int trans_a, int trans_b, int64_t m, int64_t n,
                                  int64_t k, const float *a, int64_t lda, const float *b,
                                  int64_t ldb, float *c, int64_t ldc);

/* fp32 -> bf16, round to nearest even; denormals flushed to signed zero and
 * NaN kept quiet (vcvtneps2bf16's rules, as oneDNN's reorder on
 * avx512_bf16). Written without branches so that loops over it vectorise. */
static inline uint16_t hv__nn_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t rne = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u
                       : (u & 0x7f800000u) == 0     ? (u >> 16) & 0x8000u
                                                    : rne;
    return (uint16_t)r;
}

typedef struct hv_nn_exec {
    int training;
    float *work;      /* scratch, work_n floats */
    size_t work_n;
    hv_nn_gemm_fn gemm;
    hv_nn_gemm_bf16_fn gemm_bf16; /* NULL unless the backend runs this node */
    void *gemm_bf16_ctx;          /* in bf16 (contextual attention)        */
    hv_nn_reduce_fn reduce; /* synchronised batch norm (NULL: none); the   */
    void *reduce_ctx;       /* kernel sums its statistics through it       */
} hv_nn_exec;

struct hv_nn_tensor {
    hv_nn_op op;
    int id;
    int ndim;
    int64_t shape[HV_NN_MAX_DIMS];
    int64_t numel;
    hv_nn_tensor *src[HV_NN_MAX_SRC];
    int nsrc;
    int32_t ip[12];  /* integer op parameters (conv3d, maxpool3d: 9) */
    float fp[4];     /* float op parameters   */
    char name[64];
    hv_nn_param *param; /* PARAM leaves */
    hv_nn_graph *graph;

    /* set by planning */
    int requires_grad;
    int is_output;
    int is_const;      /* inference graphs: depends on parameters only */
    int last_use;      /* index of the last node reading this one */
    int on_backend;    /* 1: backend kernel, 0: reference kernel (host) */
    float *data;
    float *grad;
    float *aux;
    size_t aux_n;
    uint64_t const_version; /* sum of parameter versions when folded */
    int n_consumers;   /* nodes reading this one */
    /* inference graphs: an activation fused into the convolution before it.
     * The activation node then shares the convolution's data and does not
     * run; the convolution applies ip[4] (the activation's op, 0: none) with
     * alpha fp[2]. */
    hv_nn_tensor *alias_of;
    /* memory layout of data and grad, chosen at plan time by the backend:
     * 0 plain NCHW; B > 0 oneDNN's blocked nChw{B}c (channel k of item i,
     * pixel j at ((i * C/B + k/B) * H*W + j) * B + k%B; C is a multiple of B,
     * so the size is numel, no padding; B = C is NHWC, which the CPU
     * backend's inference chains use on AVX-512, fp32 and bf16). Only set
     * on tensors between two
     * backend convolutions whose readers are all layout-agnostic (elementwise
     * activations) or know the layout (batch norm; in fp32 inference also
     * NHWC concat, nearest upsampling and gap, ref_ops_layout.c, and further
     * backend convolutions); hv_nn_tensor_get and
     * _get_grad return plain NCHW whatever the layout. */
    int blk;
    /* set by the backend's node_prepare: 1 when it runs this node in bf16
     * (hv_nn_backend_set_precision): a convolution. */
    int bf16;
    /* with blk > 0: the buffer holds bf16 values (2 bytes each, in the blk
     * layout, in the first half of the buffer), set by the backend at plan
     * time: a bf16 convolution's output inside a chain or bf16 NHWC region,
     * the activation fused into it, and a concat or upsample in such a
     * region. A bf16 convolution may also keep its fp32 output in a layout
     * (blk > 0, blk_bf16 = 0) for fp32 readers. */
    int blk_bf16;
    void *be_state;
};

typedef struct hv_nn_backend_i {
    const char *name;
    void (*destroy)(hv_nn_backend *be);
    /* Where the backend's buffers are. 1: host memory, which host code (the
     * reference kernels, hv_nn_tensor_get) may read and write directly.
     * 0: device memory, reached only through copy_in/copy_out, which must be
     * set together with buffer_alloc, buffer_free and clear (the planner
     * refuses a device backend that lacks one). On a device backend a node
     * that supports_op declines runs on the reference kernels on host
     * staging copies: the graph copies its inputs (and, backward, its
     * gradients) out, runs the kernel on the host and copies its results in
     * (placement.c, hv__nn_run_staged); parameters must be bound to the backend
     * (hv_nn_params_bind). */
    int host_memory;
    /* (optional) wait until the work queued on the backend is done; called
     * before results go back to the host (hv_nn_tensor_get, parameter and
     * checkpoint reads, host staging). NULL: kernels are synchronous. */
    hv_status (*synchronize)(hv_nn_backend *be);
    /* (optional) memory for the graph's arena and workspace, zero-filled;
     * NULL: host memory (64-byte aligned). A device backend returns device
     * memory; tensor data pointers then point into it. */
    hv_status (*buffer_alloc)(hv_nn_backend *be, size_t bytes, void **out);
    void (*buffer_free)(hv_nn_backend *be, void *buf);
    /* (optional on host backends) copies between host memory and the
     * backend's buffers (dst, src: bytes each); NULL: memcpy. */
    hv_status (*copy_in)(hv_nn_backend *be, void *dst, const void *src, size_t bytes);
    hv_status (*copy_out)(hv_nn_backend *be, void *dst, const void *src, size_t bytes);
    /* (optional on host backends) zero bytes of a backend buffer (gradient
     * reset); NULL: memset */
    hv_status (*clear)(hv_nn_backend *be, void *dst, size_t bytes);
    /* (optional) does this backend run node n? NULL: every node. `grads` is
     * 1 when the graph will also run backward. */
    int (*supports_op)(hv_nn_backend *be, const hv_nn_tensor *n, int grads);
    /* (optional) create per-node state; *work_n receives the scratch floats it
     * needs (forward, and backward when grads). Runs in node order, so the
     * state of a node's inputs already exists. */
    hv_status (*node_prepare)(hv_nn_backend *be, hv_nn_tensor *n, int grads,
                              size_t *work_n);
    /* (optional) free per-node state. */
    void (*node_release)(hv_nn_backend *be, hv_nn_tensor *n);
    hv_status (*node_forward)(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex);
    hv_status (*node_backward)(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex);
    /* (optional) one Adam update of n floats in the backend's buffers (w,
     * m, v updated; g read), with hv__nn_adam_update's arithmetic. Its
     * gradient was already found finite (grad_check below): it may be
     * queued, with no check and no wait. NULL: the host loop, which only a
     * host-memory backend can use (hv_nn_adam_step refuses otherwise). */
    hv_status (*adam_step)(hv_nn_backend *be, float *w, float *m, float *v, const float *g,
                           int64_t n, const hv_nn_adam_hp *hp);
    /* (required with adam_step) the step's finite check, before any update:
     * hv_nn_adam_step queues grad_check for every parameter's gradient (n
     * floats; tag = the parameter's index + 1, tag 1 first, which clears
     * the step's one non-finite flag), then calls grad_check_result once:
     * it waits (the step's one synchronisation) and sets *tag to 0 when
     * every queued value was finite, else to the tag of the first checked
     * gradient holding a non-finite value. */
    hv_status (*grad_check)(hv_nn_backend *be, const float *g, int64_t n, int tag);
    hv_status (*grad_check_result)(hv_nn_backend *be, int *tag);
    /* (optional) can the backend run precision p (never HV_NN_FP32)? HV_OK,
     * or an error with a message saying what is missing. NULL: fp32 only.
     * The chosen precision is then in hv_nn_backend.precision, which
     * node_prepare reads. */
    hv_status (*check_precision)(hv_nn_backend *be, hv_nn_precision p);
} hv_nn_backend_i;

struct hv_nn_backend {
    const hv_nn_backend_i *iface;
    void *ctx;
    hv_nn_precision precision; /* hv_nn_backend_set_precision; 0 (fp32) from calloc */
};

/* ---- host staging of the nodes a device backend declines (placement.c) */
/* backend->synchronize when it has one (errors wrapped with its name). */
hv_status hv__nn_sync(const hv_nn_backend *be);
/* Staging floats node t needs: its distinct inputs and itself, each with
 * its gradient where it has one (plan time, after the requires_grad marks). */
size_t hv__nn_stage_floats(const hv_nn_tensor *t);
/* Run t (forward, or backward) on the reference kernels over copies in
 * `stage` (hv__nn_stage_floats(t) floats, host) with the host exec context
 * hex: copy out its distinct inputs (backward also their gradients, its own
 * value and gradient), point the tensors at the copies, run, copy in what
 * the kernel wrote (forward: its value and the non-trainable parameter
 * inputs that batch norm and spectral norm update; backward: its inputs'
 * gradients) and point the tensors back, also on error. */
hv_status hv__nn_run_staged(hv_nn_backend *be, hv_nn_tensor *t, int backward, float *stage,
                            const hv_nn_exec *hex);

/* ---- the cpu backend (src/nn/cpu/backend_cpu.c), for tests */
/* How many oneDNN reorders (layout conversions of activations, gradients,
 * weights) the cpu backend has run since the process started, all graphs
 * and threads together; the difference over one pass counts that pass's. */
uint64_t hv__nn_cpu_reorders(void);
/* bf16 NHWC regions (backend_cpu.c, link_nhwc) on (1, the default) or off
 * (0: the bf16 path without them, whose outputs they must leave bit for bit
 * the same). Process-wide; a graph reads it when it is planned. */
void hv__nn_cpu_set_bf16_regions(int on);
/* contextual attention's two GEMMs as bf16 matmuls on a bf16 CPU backend
 * (1, the default) or in fp32 (0); read when a graph is planned. */
void hv__nn_cpu_set_ctx_attn_bf16(int on);
/* The graph's nodes in recording order (node i has id i), *n their count:
 * for a backend's node_prepare that looks at all readers of a tensor. */
hv_nn_tensor *const *hv__nn_graph_nodes(const hv_nn_graph *g, int *n);

/* ---- reference kernels (src/nn/cpu/ref_*.c), the host fallback of every backend */
/* Persistent aux floats and scratch floats a node needs (plan time). */
size_t hv__nn_ref_aux_size(const hv_nn_tensor *n, int training);
/* y = act(y) for a fused activation (op ELU, RELU, LEAKY_RELU or SIGMOID). */
void hv__nn_apply_act(float *y, int64_t n, int op, float alpha);
size_t hv__nn_ref_work_size(const hv_nn_tensor *n, int training);
hv_status hv__nn_ref_forward(hv_nn_tensor *n, const hv_nn_exec *ex);
/* 1 when node n is a concat or upsample writing, or a gap reading, a
 * blocked layout (t->blk; the CPU backend's inference chains): its forward
 * is then hv__nn_layout_forward (ref_ops_layout.c), which
 * hv__nn_ref_forward calls; it has no backward. */
int hv__nn_layout_kernel(const hv_nn_tensor *n);
hv_status hv__nn_layout_forward(hv_nn_tensor *n);
hv_status hv__nn_ref_backward(hv_nn_tensor *n, const hv_nn_exec *ex);
void hv__nn_gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc);
/* 3-D convolution and max pooling (src/nn/cpu/ref_ops3d.c); ip[0..2],
 * ip[3..5], ip[6..8] are conv3d's stride, pad, dilation and maxpool3d's
 * kernel, stride, pad, each in the order D, H, W. */
void hv__nn_conv3d_forward(hv_nn_tensor *n);
void hv__nn_conv3d_backward(hv_nn_tensor *n);
void hv__nn_maxpool3d_forward(hv_nn_tensor *n);
void hv__nn_maxpool3d_backward(hv_nn_tensor *n);
/* AOT-GAN's ops (src/nn/cpu/ref_ops_aot.c): reflection padding (ip: top,
 * bottom, left, right), bilinear upsampling with align_corners (ip[0]: the
 * factor) and the gate norm. */
void hv__nn_reflect_pad_forward(hv_nn_tensor *n);
void hv__nn_reflect_pad_backward(hv_nn_tensor *n);
void hv__nn_upsample_bilinear_forward(hv_nn_tensor *n);
void hv__nn_upsample_bilinear_backward(hv_nn_tensor *n);
void hv__nn_aot_norm_forward(hv_nn_tensor *n);
void hv__nn_aot_norm_backward(hv_nn_tensor *n);
/* Supervised contrastive learning (src/nn/cpu/ref_ops_supcon.c): L2
 * normalisation of rows (fp[0]: eps) and the SupCon loss (fp[0]: the
 * temperature; forward refuses non-finite labels). */
void hv__nn_l2_normalize_forward(hv_nn_tensor *n);
void hv__nn_l2_normalize_backward(hv_nn_tensor *n);
hv_status hv__nn_supcon_forward(hv_nn_tensor *n);
void hv__nn_supcon_backward(hv_nn_tensor *n);
/* Softmax cross entropy (src[2], when present: class weights); forward
 * refuses bad labels and weights. */
hv_status hv__nn_cross_entropy_forward(hv_nn_tensor *n);
void hv__nn_cross_entropy_backward(hv_nn_tensor *n);
/* contextual attention (src/nn/cpu/ref_ctx_attn.c) */
/* The sizes of a contextual attention node (ref_ctx_attn.c's header names
 * them): batch n, channels c, image h x w, rate r, patch k, fuse fk, its
 * scale, the downsampled grid hs x ws with l = hs*ws patches, c9 = c*k*k,
 * ckk = c*(2r)^2 and msz, the mask's plane. Shared by the reference kernel
 * and the CUDA backend so both read one node the same way. */
typedef struct hv_nn_ca_dims {
    int64_t n, c, h, w, r, k, fk, q, hs, ws, l, c9, ckk, msz;
    float scale;
} hv_nn_ca_dims;
hv_nn_ca_dims hv__nn_ca_dims(const hv_nn_tensor *t);
size_t hv__nn_ca_aux_size(const hv_nn_tensor *n);
size_t hv__nn_ca_work_size(const hv_nn_tensor *n);
hv_status hv__nn_ca_forward(hv_nn_tensor *n, const hv_nn_exec *ex);
hv_status hv__nn_ca_backward(hv_nn_tensor *n, const hv_nn_exec *ex);

/* ---- Adam state for the checkpoint code (params.c): the i-th covered
 * parameter with its moments; returns the number covered. hp = lr, beta1,
 * beta2, eps; set = 1 writes them (and step) into the optimiser. */
size_t hv__nn_adam_state(const hv_nn_adam *a, size_t i, hv_nn_param **p, float **m, float **v);
void hv__nn_adam_hyper(hv_nn_adam *a, double hp[4], int64_t *step, int set);
/* 1 when every covered parameter is still where the moments are (in the
 * memory of the backend the set was bound to at the optimiser's creation). */
int hv__nn_adam_placed(const hv_nn_adam *a);
/* The host Adam loop over n floats; HV_ERR_NUMERIC (no message set) at the
 * first non-finite gradient. */
hv_status hv__nn_adam_update(float *w, float *m, float *v, const float *g, int64_t n,
                             const hv_nn_adam_hp *hp);
/* Copies between host memory and a parameter's storage (p->data, p->grad or
 * an Adam moment of p: host memory or p->be's buffers), n floats; copy_out
 * synchronises the backend first. */
hv_status hv__nn_param_copy_out(const hv_nn_param *p, float *host, const float *buf, int64_t n);
hv_status hv__nn_param_copy_in(const hv_nn_param *p, float *buf, const float *host, int64_t n);

/* ---- counted allocation (hv_nn_alloc_count) */
void *hv__nn_malloc(size_t bytes);
void *hv__nn_calloc(size_t n, size_t size);
void *hv__nn_aligned(size_t bytes);
void hv__nn_free(void *p);

#endif /* HV_NN_BACKEND_H */
