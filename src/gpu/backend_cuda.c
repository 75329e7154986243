/*
 * backend_cuda.c: the NN engine's CUDA backend (hv_gpu_backend_create in
 * hv/gpu.h; the interface is src/nn/nn_backend.h, modelled on the test-only
 * fake device of tests/nn/fake_device.h).
 *
 * A device backend (host_memory 0): the graph's arena and workspace are
 * cudaMalloc'd, values move through copy_in/copy_out (cudaMemcpyAsync on the
 * backend's one stream), gradient resets are cudaMemsetAsync, and
 * synchronize is cudaStreamSynchronize. Its own work:
 *   - the elementwise ops (elu, relu, leaky_relu, sigmoid, tanh, clamp,
 *     scale, reshape; add, sub, mul), forward and backward, with its own
 *     kernels (cuda_kernels.cu);
 *   - conv2d forward and backward through cuDNN, and deconv2d as its
 *     adjoint (conv_cudnn.c);
 *   - the training and classifier ops (train_ops.c, kernels in
 *     loss_kernels.cu and norm_kernels.cu): sum, mean, bce_logits, l1,
 *     mse, dice, softmax, batch norm, max pooling, Sobel, spectral norm;
 *   - contextual attention forward and backward (ctx_attn_cuda.c, its
 *     kernels in ctx_attn_kernels.cu, its GEMMs through cuBLAS);
 *   - upsample, downsample, concat, pad, slice, gap, channel_mul and linear
 *     forward and backward (shape_cuda.c, shape_kernels.cu; linear through
 *     cuBLAS), and AOT-GAN's reflect_pad, upsample_bilinear and aot_norm
 *     (shape_cuda.c, aot_kernels.cu);
 *   - Adam (adam_step) as a kernel with the host loop's arithmetic, after
 *     one finite check of the whole step's gradients (grad_check, one
 *     stream synchronisation per step).
 * It declines every other op; the graph runs those on the reference
 * kernels on host staging copies (src/nn/placement.c).
 *
 * Written in C (the CUDA runtime, cuDNN and cuBLAS have C APIs); only the
 * kernels are CUDA C++ (the .cu files).
 *
 * Errors: every CUDA, cuDNN and cuBLAS return code is checked and turned into
 * HV_ERR_GPU with the call's text and CUDA's own message.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "cuda_kernels.h"
#include "hv/gpu.h"
#include "train_ops.h"

hv_status hv__cuda_check(cudaError_t e, const char *call)
{
    if (e == cudaSuccess) return HV_OK;
    return hv_error_set(HV_ERR_GPU, "cuda backend: %s failed: %s (%s)", call,
                        cudaGetErrorString(e), cudaGetErrorName(e));
}

hv_status hv__cudnn_check(cudnnStatus_t e, const char *call)
{
    if (e == CUDNN_STATUS_SUCCESS) return HV_OK;
    return hv_error_set(HV_ERR_GPU, "cuda backend: %s failed: %s", call, cudnnGetErrorString(e));
}

static hv_cuda_be *ctx_of(hv_nn_backend *be) { return be->ctx; }

/* ------------------------------------------------------------ lifetime */

static void cuda_destroy(hv_nn_backend *be)
{
    hv_cuda_be *cb = ctx_of(be);
    if (cb) {
        /* teardown: nothing useful can be done with an error here */
        if (cb->stream) (void)cudaStreamSynchronize(cb->stream);
        if (cb->dnn) (void)cudnnDestroy(cb->dnn);
        if (cb->blas) (void)cublasDestroy(cb->blas);
        if (cb->flag_d) (void)cudaFree(cb->flag_d);
        if (cb->flag_h) (void)cudaFreeHost(cb->flag_h);
        if (cb->stream) (void)cudaStreamDestroy(cb->stream);
        free(cb);
    }
    free(be);
}

/* -------------------------------------------------------------- memory */

static hv_status cuda_sync(hv_nn_backend *be)
{
    return HV_CU(cudaStreamSynchronize(ctx_of(be)->stream));
}

static hv_status cuda_alloc(hv_nn_backend *be, size_t bytes, void **out)
{
    hv_cuda_be *cb = ctx_of(be);
    void *p = NULL;
    *out = NULL;
    hv_status st = HV_CU(cudaMalloc(&p, bytes ? bytes : 256));
    if (st != HV_OK) return hv_error_wrap(st, "%zu bytes", bytes);
    /* zero-filled, and ready before any other stream or the host uses it */
    st = HV_CU(cudaMemsetAsync(p, 0, bytes, cb->stream));
    if (st == HV_OK) st = HV_CU(cudaStreamSynchronize(cb->stream));
    if (st != HV_OK) {
        (void)cudaFree(p);
        return st;
    }
    *out = p;
    return HV_OK;
}

static void cuda_buffer_free(hv_nn_backend *be, void *buf)
{
    (void)be;
    if (buf) (void)cudaFree(buf); /* implicitly synchronising */
}

static hv_status cuda_copy_in(hv_nn_backend *be, void *dst, const void *src, size_t bytes)
{
    /* From pageable host memory the call returns once src has been read
     * (staged), so the caller may reuse it; the copy is ordered on the
     * stream before the kernels queued after it. */
    return HV_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_of(be)->stream));
}

static hv_status cuda_copy_out(hv_nn_backend *be, void *dst, const void *src, size_t bytes)
{
    hv_cuda_be *cb = ctx_of(be);
    hv_status st = HV_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cb->stream));
    if (st == HV_OK) st = HV_CU(cudaStreamSynchronize(cb->stream));
    return st;
}

static hv_status cuda_clear(hv_nn_backend *be, void *dst, size_t bytes)
{
    return HV_CU(cudaMemsetAsync(dst, 0, bytes, ctx_of(be)->stream));
}

/* ---------------------------------------------------------------- ops */

static int is_unary(hv_nn_op op)
{
    return op == HV_NN_OP_ELU || op == HV_NN_OP_RELU || op == HV_NN_OP_LEAKY_RELU ||
           op == HV_NN_OP_SIGMOID || op == HV_NN_OP_TANH || op == HV_NN_OP_CLAMP ||
           op == HV_NN_OP_SCALE || op == HV_NN_OP_RESHAPE;
}

static int is_binary(hv_nn_op op)
{
    return op == HV_NN_OP_ADD || op == HV_NN_OP_SUB || op == HV_NN_OP_MUL;
}

static int cuda_supports(hv_nn_backend *be, const hv_nn_tensor *n, int grads)
{
    (void)be;
    (void)grads;
    if (is_unary(n->op)) return n->nsrc == 1 && n->src[0]->numel == n->numel;
    if (is_binary(n->op))
        return n->nsrc == 2 && n->src[0]->numel == n->numel && n->src[1]->numel == n->numel;
    if (n->op == HV_NN_OP_CONV2D) return hv__cuda_conv_supported(n);
    if (n->op == HV_NN_OP_DECONV2D) return hv__cuda_conv_supported(n);
    if (hv__cuda_train_owns(n->op)) return hv__cuda_train_supported(n);
    if (n->op == HV_NN_OP_CTX_ATTN) return hv__cuda_ca_supported(n);
    if (hv__cuda_shape_supported(n)) return 1;
    /* declined, so staged through the host: conv3d, maxpool3d (no 3-D
     * kernels yet), batch norm, gap and channel_mul on NCDHW (their
     * checks above ask for 4-D tensors), and SupCon's l2_normalize, supcon
     * and cross_entropy (no kernels yet; none of the checks above names
     * them). AOT-GAN's tanh (is_unary), reflect_pad, upsample_bilinear and
     * aot_norm (shape_cuda.c) run on the device. */
    return 0;
}

static hv_status cuda_prepare(hv_nn_backend *be, hv_nn_tensor *n, int grads, size_t *work_n)
{
    *work_n = 0;
    if (n->op == HV_NN_OP_CONV2D) return hv__cuda_conv_prepare(ctx_of(be), n, grads, work_n);
    if (n->op == HV_NN_OP_DECONV2D) return hv__cuda_conv_prepare(ctx_of(be), n, grads, work_n);
    if (hv__cuda_train_owns(n->op)) return hv__cuda_train_prepare(ctx_of(be), n, grads, work_n);
    if (n->op == HV_NN_OP_CTX_ATTN) return hv__cuda_ca_prepare(n, grads, work_n);
    return HV_OK;
}

static void cuda_release(hv_nn_backend *be, hv_nn_tensor *n)
{
    (void)be;
    if (n->op == HV_NN_OP_CONV2D) hv__cuda_conv_release(n);
    if (n->op == HV_NN_OP_DECONV2D) hv__cuda_conv_release(n);
    if (hv__cuda_train_owns(n->op)) hv__cuda_train_release(n);
}

static hv_status cuda_forward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_cuda_be *cb = ctx_of(be);
    if (is_unary(n->op))
        return HV_CU(hv__cuda_unary_fwd(cb->stream, (int)n->op, n->src[0]->data, n->data,
                                        n->numel, n->fp[0], n->fp[1]));
    if (is_binary(n->op))
        return HV_CU(hv__cuda_binary_fwd(cb->stream, (int)n->op, n->src[0]->data,
                                         n->src[1]->data, n->data, n->numel));
    if (n->op == HV_NN_OP_CONV2D) return hv__cuda_conv_forward(cb, n, ex);
    if (n->op == HV_NN_OP_DECONV2D) return hv__cuda_conv_forward(cb, n, ex);
    if (hv__cuda_train_owns(n->op)) return hv__cuda_train_forward(cb, n, ex);
    if (n->op == HV_NN_OP_CTX_ATTN) return hv__cuda_ca_forward(cb, n, ex);
    if (hv__cuda_shape_supported(n)) return hv__cuda_shape_forward(cb, n);
    return hv_error_set(HV_ERR_INTERNAL, "cuda backend: forward of op %s it declined",
                        hv_nn_op_name(n->op));
}

static hv_status cuda_backward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_cuda_be *cb = ctx_of(be);
    if (is_unary(n->op)) {
        hv_nn_tensor *x = n->src[0];
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_unary_bwd(cb->stream, (int)n->op, x->data, n->data, n->grad,
                                        x->grad, n->numel, n->fp[0], n->fp[1]));
    }
    if (is_binary(n->op)) {
        hv_nn_tensor *a = n->src[0], *b = n->src[1];
        if (!a->grad && !b->grad) return HV_OK;
        return HV_CU(hv__cuda_binary_bwd(cb->stream, (int)n->op, a->data, b->data, n->grad,
                                         a->grad, b->grad, n->numel));
    }
    if (n->op == HV_NN_OP_CONV2D) return hv__cuda_conv_backward(cb, n, ex);
    if (n->op == HV_NN_OP_DECONV2D) return hv__cuda_conv_backward(cb, n, ex);
    if (hv__cuda_train_owns(n->op)) return hv__cuda_train_backward(cb, n, ex);
    if (n->op == HV_NN_OP_CTX_ATTN) return hv__cuda_ca_backward(cb, n, ex);
    if (hv__cuda_shape_supported(n)) return hv__cuda_shape_backward(cb, n);
    return hv_error_set(HV_ERR_INTERNAL, "cuda backend: backward of op %s it declined",
                        hv_nn_op_name(n->op));
}

/* Adam's step (params.c): every parameter's grad_check queued into the
 * one flag (cleared by tag 1), then grad_check_result's one wait, then the
 * updates queued with no wait (the flag is 0 then; adam_k would skip on a
 * set one). One stream synchronisation per optimiser step. */
static hv_status cuda_grad_check(hv_nn_backend *be, const float *g, int64_t n, int tag)
{
    hv_cuda_be *cb = ctx_of(be);
    hv_status st = HV_OK;
    if (tag == 1) st = HV_CU(cudaMemsetAsync(cb->flag_d, 0, sizeof(int), cb->stream));
    if (st == HV_OK && n > 0) st = HV_CU(hv__cuda_finite(cb->stream, g, n, cb->flag_d, tag));
    return st;
}

static hv_status cuda_grad_check_result(hv_nn_backend *be, int *tag)
{
    hv_cuda_be *cb = ctx_of(be);
    hv_status st = HV_CU(cudaMemcpyAsync(cb->flag_h, cb->flag_d, sizeof(int),
                                         cudaMemcpyDeviceToHost, cb->stream));
    if (st == HV_OK) st = HV_CU(cudaStreamSynchronize(cb->stream));
    *tag = st == HV_OK ? *cb->flag_h : 0;
    return st;
}

static hv_status cuda_adam(hv_nn_backend *be, float *w, float *m, float *v, const float *g,
                           int64_t n, const hv_nn_adam_hp *hp)
{
    hv_cuda_be *cb = ctx_of(be);
    if (n <= 0) return HV_OK;
    return HV_CU(hv__cuda_adam(cb->stream, w, m, v, g, n, hp->beta1, hp->beta2, hp->step_size,
                               hp->sqrt_bc2, hp->eps, cb->flag_d));
}

static const hv_nn_backend_i cuda_iface = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .host_memory = 0,
    .synchronize = cuda_sync,
    .buffer_alloc = cuda_alloc,
    .buffer_free = cuda_buffer_free,
    .copy_in = cuda_copy_in,
    .copy_out = cuda_copy_out,
    .clear = cuda_clear,
    .supports_op = cuda_supports,
    .node_prepare = cuda_prepare,
    .node_release = cuda_release,
    .node_forward = cuda_forward,
    .node_backward = cuda_backward,
    .adam_step = cuda_adam,
    .grad_check = cuda_grad_check,
    .grad_check_result = cuda_grad_check_result,
};

hv_status hv_gpu_backend_create(int device, hv_nn_backend **out)
{
    hv_nn_backend *be = NULL;
    hv_cuda_be *cb = NULL;
    hv_status st = HV_OK;
    int count = 0;
    if (!out) return hv_error_set(HV_ERR_ARG, "cuda backend: NULL out");
    *out = NULL;
    if (device < 0) return hv_error_set(HV_ERR_ARG, "cuda backend: device %d < 0", device);
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        st = hv_error_set(HV_ERR_GPU, "cuda backend: no usable CUDA driver or device "
                          "(cudaGetDeviceCount: %s)", cudaGetErrorString(e));
        (void)cudaGetLastError(); /* reset the runtime's last error for later calls */
        return st;
    }
    if (device >= count)
        return hv_error_set(HV_ERR_GPU, "cuda backend: device %d requested, %d present", device,
                            count);
    be = calloc(1, sizeof *be);
    cb = calloc(1, sizeof *cb);
    if (!be || !cb) {
        st = hv_error_set(HV_ERR_NOMEM, "cuda backend: out of memory");
        goto done;
    }
    be->iface = &cuda_iface;
    be->ctx = cb;
    cb->device = device;
    const char *tf = getenv("HV_CUDA_TF32");
    cb->tf32 = !(tf && strcmp(tf, "0") == 0);
    if ((st = HV_CU(cudaSetDevice(device))) != HV_OK) goto done;
    if ((st = HV_CU(cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking))) != HV_OK)
        goto done;
    if ((st = HV_CU(cudaMalloc((void **)&cb->flag_d, sizeof(int)))) != HV_OK) goto done;
    if ((st = HV_CU(cudaMallocHost((void **)&cb->flag_h, sizeof(int)))) != HV_OK) goto done;
    if ((st = HV_DNN(cudnnCreate(&cb->dnn))) != HV_OK) goto done;
    if ((st = HV_DNN(cudnnSetStream(cb->dnn, cb->stream))) != HV_OK) goto done;
    if ((st = hv__cuda_blas_create(cb)) != HV_OK) goto done;
done:
    if (st != HV_OK) {
        if (be && cb)
            cuda_destroy(be);
        else {
            free(be);
            free(cb);
        }
        return hv_error_wrap(st, "cuda backend on device %d", device);
    }
    *out = be;
    return HV_OK;
}

int hv_gpu_backend_tf32(const hv_nn_backend *be)
{
    if (!be || be->iface != &cuda_iface) return -1;
    return ((const hv_cuda_be *)be->ctx)->tf32;
}

hv_status hv_gpu_backend_sync(hv_nn_backend *be)
{
    if (!be || be->iface != &cuda_iface)
        return hv_error_set(HV_ERR_ARG, "cuda backend sync: %s is not a CUDA backend",
                            be ? be->iface->name : "NULL");
    return cuda_sync(be);
}
