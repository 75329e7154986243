/*
 * conv_cudnn.c: the CUDA backend's conv2d and deconv2d (below). conv2d (x (N,C,H,W),
 * w (O,C,kh,kw), optional bias (O); one stride, padding and dilation for
 * both axes, ip[0..2]; no groups; cross-correlation as in PyTorch) through
 * cuDNN's convolution API (cudnn_cnn.h, still present in cuDNN 9).
 *
 * node_prepare builds the descriptors and chooses the algorithms once per
 * node with cuDNN's heuristics (cudnnGet...Algorithm_v7: at plan time the
 * graph's buffers do not exist yet, so the measuring cudnnFind...Ex cannot
 * run there), taking the first algorithm cuDNN ranks that it supports and
 * whose workspace fits HV_CUDA_WS_MAX; the largest workspace of the node's
 * algorithms is asked from the graph (work_n) and comes back as the shared
 * ex->work. Math: CUDNN_TENSOR_OP_MATH (TF32 allowed) when the backend's
 * tf32 switch is on, then each direction's descriptor takes the math type
 * cuDNN reports for the chosen algorithm; CUDNN_FMA_MATH (plain fp32) when it
 * is off, and algorithms reported as tensor-op math are then passed over.
 * ALLOW_CONVERSION (fp16 conversion) is never used.
 *
 * Forward: y = conv(x, w) (beta 0), + bias (cudnnAddTensor), then the fused
 * activation of an inference graph (ip[4], alpha fp[2]) with the backend's
 * kernel. Backward ADDS (beta 1) into dx (BackwardData), dw
 * (BackwardFilter) and db (BackwardBias), each only when that input takes
 * a gradient.
 *
 * deconv2d (x (N,Cin,H,W), w (Cin,Cout,kh,kw), optional bias (Cout); stride
 * ip[0], padding ip[1], output padding ip[2], no dilation) is the adjoint of
 * the convolution from its output y (the convolution's input) to x (the
 * convolution's output) with the same filter descriptor: forward is
 * cuDNN's BackwardData (x in, y out), the gradient of x is the
 * convolution's Forward of dy, the gradient of w BackwardFilter with dy as
 * the input and x as the output gradient, the bias gradient BackwardBias
 * of dy. The same three algorithm choices serve, in other roles; the
 * output padding needs no parameter, cuDNN takes y's size from its
 * descriptor (prepare checks that the convolution of y has x's size).
 */
#include <limits.h>
#include <stdlib.h>

#include "cuda_backend.h"
#include "cuda_kernels.h"

/* Largest workspace a convolution may ask for (bytes). */
#define HV_CUDA_WS_MAX ((size_t)1 << 30)

typedef struct conv_state {
    /* the convolution's input and output (conv2d: x and y; deconv2d: y and
     * x), the bias (1, channels of y, 1, 1) */
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    /* one convolution descriptor per direction: each carries the math type
     * of the algorithm chosen for it (cudnnGet..._v7 reports it per
     * algorithm; cuDNN runs an algorithm with the descriptor's math type) */
    cudnnConvolutionDescriptor_t cd[3]; /* forward, backward data, backward filter */
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws_fwd, ws_data, ws_filter; /* bytes */
    int has_fwd, has_bwd_data, has_bwd_filter;
    int deconv; /* 1: a deconv2d node (roles above) */
} conv_state;

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

int hv__cuda_conv_supported(const hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    for (int d = 0; d < 4; d++)
        if (!fits_int(x->shape[d]) || !fits_int(w->shape[d]) || !fits_int(n->shape[d])) return 0;
    return fits_int(x->numel) && fits_int(n->numel);
}

void hv__cuda_conv_release(hv_nn_tensor *n)
{
    conv_state *cs = n->be_state;
    if (!cs) return;
    /* teardown: errors cannot be acted upon */
    if (cs->xd) (void)cudnnDestroyTensorDescriptor(cs->xd);
    if (cs->yd) (void)cudnnDestroyTensorDescriptor(cs->yd);
    if (cs->bd) (void)cudnnDestroyTensorDescriptor(cs->bd);
    if (cs->wd) (void)cudnnDestroyFilterDescriptor(cs->wd);
    for (int k = 0; k < 3; k++)
        if (cs->cd[k]) (void)cudnnDestroyConvolutionDescriptor(cs->cd[k]);
    free(cs);
    n->be_state = NULL;
}

/* May an algorithm of this math type run under the backend's switch?
 * Never ALLOW_CONVERSION (it may convert fp32 data to fp16); TENSOR_OP only
 * with TF32 on. */
static int math_ok(const hv_cuda_be *cb, cudnnMathType_t m)
{
    if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return 0;
    return cb->tf32 || m != CUDNN_TENSOR_OP_MATH;
}

/* Give descriptor cd the chosen algorithm's math type (TF32 on only: with
 * TF32 off it stays CUDNN_FMA_MATH). */
static hv_status set_math(const hv_cuda_be *cb, cudnnConvolutionDescriptor_t cd, cudnnMathType_t m)
{
    return cb->tf32 ? HV_DNN(cudnnSetConvolutionMathType(cd, m)) : HV_OK;
}

static hv_status pick_fwd(hv_cuda_be *cb, conv_state *cs)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    hv_status st = HV_DNN(cudnnGetConvolutionForwardAlgorithm_v7(
        cb->dnn, cs->xd, cs->wd, cs->cd[0], cs->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    if (st != HV_OK) return st;
    for (int i = 0; i < got; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= HV_CUDA_WS_MAX &&
            math_ok(cb, perf[i].mathType)) {
            cs->fwd = perf[i].algo;
            cs->has_fwd = 1;
            if ((st = set_math(cb, cs->cd[0], perf[i].mathType)) != HV_OK) return st;
            return HV_DNN(cudnnGetConvolutionForwardWorkspaceSize(
                cb->dnn, cs->xd, cs->wd, cs->cd[0], cs->yd, cs->fwd, &cs->ws_fwd));
        }
    return hv_error_set(HV_ERR_GPU, "cuda backend: cuDNN offers no forward convolution algorithm "
                        "for this shape within %zu bytes of workspace and the TF32 switch", HV_CUDA_WS_MAX);
}

static hv_status pick_bwd_data(hv_cuda_be *cb, conv_state *cs)
{
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0;
    hv_status st = HV_DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        cb->dnn, cs->wd, cs->yd, cs->cd[1], cs->xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got,
        perf));
    if (st != HV_OK) return st;
    for (int i = 0; i < got; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= HV_CUDA_WS_MAX &&
            math_ok(cb, perf[i].mathType)) {
            cs->bwd_data = perf[i].algo;
            cs->has_bwd_data = 1;
            if ((st = set_math(cb, cs->cd[1], perf[i].mathType)) != HV_OK) return st;
            return HV_DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(
                cb->dnn, cs->wd, cs->yd, cs->cd[1], cs->xd, cs->bwd_data, &cs->ws_data));
        }
    return hv_error_set(HV_ERR_GPU, "cuda backend: cuDNN offers no backward-data convolution "
                        "algorithm for this shape within %zu bytes of workspace and the TF32 switch", HV_CUDA_WS_MAX);
}

static hv_status pick_bwd_filter(hv_cuda_be *cb, conv_state *cs)
{
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int got = 0;
    hv_status st = HV_DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        cb->dnn, cs->xd, cs->yd, cs->cd[2], cs->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got,
        perf));
    if (st != HV_OK) return st;
    for (int i = 0; i < got; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= HV_CUDA_WS_MAX &&
            math_ok(cb, perf[i].mathType)) {
            cs->bwd_filter = perf[i].algo;
            cs->has_bwd_filter = 1;
            if ((st = set_math(cb, cs->cd[2], perf[i].mathType)) != HV_OK) return st;
            return HV_DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                cb->dnn, cs->xd, cs->yd, cs->cd[2], cs->wd, cs->bwd_filter, &cs->ws_filter));
        }
    return hv_error_set(HV_ERR_GPU, "cuda backend: cuDNN offers no backward-filter convolution "
                        "algorithm for this shape within %zu bytes of workspace and the TF32 switch", HV_CUDA_WS_MAX);
}

hv_status hv__cuda_conv_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n)
{
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    conv_state *cs = calloc(1, sizeof *cs);
    hv_status st = HV_OK;
    int on = 0, oc = 0, oh = 0, ow = 0;
    if (!cs) return hv_error_set(HV_ERR_NOMEM, "cuda backend: out of memory");
    n->be_state = cs;
    cs->deconv = n->op == HV_NN_OP_DECONV2D;
    /* the convolution's input ci and output co */
    const hv_nn_tensor *ci = cs->deconv ? n : x, *co = cs->deconv ? x : n;
    const int N = (int)ci->shape[0], C = (int)ci->shape[1], H = (int)ci->shape[2],
              W = (int)ci->shape[3], O = (int)w->shape[0];
    const int dil = cs->deconv ? 1 : n->ip[2];
    if ((st = HV_DNN(cudnnCreateTensorDescriptor(&cs->xd))) != HV_OK) goto done;
    if ((st = HV_DNN(cudnnCreateTensorDescriptor(&cs->yd))) != HV_OK) goto done;
    if ((st = HV_DNN(cudnnCreateFilterDescriptor(&cs->wd))) != HV_OK) goto done;

    if ((st = HV_DNN(cudnnSetTensor4dDescriptor(cs->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C,
                                                H, W))) != HV_OK)
        goto done;
    if ((st = HV_DNN(cudnnSetFilter4dDescriptor(cs->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, O, C,
                                                (int)w->shape[2], (int)w->shape[3]))) != HV_OK)
        goto done;
    for (int k = 0; k < 3; k++) {
        if ((st = HV_DNN(cudnnCreateConvolutionDescriptor(&cs->cd[k]))) != HV_OK) goto done;
        if ((st = HV_DNN(cudnnSetConvolution2dDescriptor(cs->cd[k], n->ip[1], n->ip[1], n->ip[0],
                                                         n->ip[0], dil, dil,
                                                         CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT))) != HV_OK)
            goto done;
        if ((st = HV_DNN(cudnnSetConvolutionMathType(
                 cs->cd[k], cb->tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH))) != HV_OK)
            goto done;
    }
    if ((st = HV_DNN(cudnnGetConvolution2dForwardOutputDim(cs->cd[0], cs->xd, cs->wd, &on, &oc,
                                                           &oh, &ow))) != HV_OK)
        goto done;
    if (on != co->shape[0] || oc != co->shape[1] || oh != co->shape[2] || ow != co->shape[3]) {
        st = hv_error_set(HV_ERR_INTERNAL, "cuda backend: cuDNN's %s output %dx%dx%dx%d "
                          "differs from the graph's %lldx%lldx%lldx%lld", hv_nn_op_name(n->op),
                          on, oc, oh, ow, (long long)co->shape[0], (long long)co->shape[1],
                          (long long)co->shape[2], (long long)co->shape[3]);
        goto done;
    }
    if ((st = HV_DNN(cudnnSetTensor4dDescriptor(cs->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on,
                                                oc, oh, ow))) != HV_OK)
        goto done;
    if (n->nsrc > 2) {
        if ((st = HV_DNN(cudnnCreateTensorDescriptor(&cs->bd))) != HV_OK) goto done;
        if ((st = HV_DNN(cudnnSetTensor4dDescriptor(cs->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                    (int)n->shape[1], 1, 1))) != HV_OK)
            goto done;
    }
    /* conv2d: forward runs Forward, x's gradient BackwardData; deconv2d the
     * other way round */
    const int need_fwd = cs->deconv ? grads && x->requires_grad : 1;
    const int need_data = cs->deconv ? 1 : grads && x->requires_grad;
    if (need_fwd && (st = pick_fwd(cb, cs)) != HV_OK) goto done;
    if (need_data && (st = pick_bwd_data(cb, cs)) != HV_OK) goto done;
    if (grads && w->requires_grad && (st = pick_bwd_filter(cb, cs)) != HV_OK) goto done;
    size_t ws = cs->ws_fwd;
    if (cs->ws_data > ws) ws = cs->ws_data;
    if (cs->ws_filter > ws) ws = cs->ws_filter;
    *work_n = (ws + sizeof(float) - 1) / sizeof(float);
done:
    if (st != HV_OK) hv__cuda_conv_release(n);
    return st;
}

/* bytes of the shared workspace, checked against what the algorithm needs */
static hv_status workspace(const hv_nn_exec *ex, size_t need, void **ws)
{
    *ws = ex->work;
    if (need > ex->work_n * sizeof(float))
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: convolution needs %zu bytes of "
                            "workspace, the graph gave %zu", need, ex->work_n * sizeof(float));
    return HV_OK;
}

static hv_status deconv_forward(hv_cuda_be *cb, conv_state *cs, hv_nn_tensor *n,
                                const hv_nn_exec *ex)
{
    const float one = 1.0f, zero = 0.0f;
    void *ws = NULL;
    if (!cs->has_bwd_data)
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s: no backward-data algorithm was "
                            "chosen", n->name);
    hv_status st = workspace(ex, cs->ws_data, &ws);
    if (st != HV_OK) return st;
    st = HV_DNN(cudnnConvolutionBackwardData(cb->dnn, &one, cs->wd, n->src[1]->data, cs->yd,
                                             n->src[0]->data, cs->cd[1], cs->bwd_data, ws,
                                             cs->ws_data, &zero, cs->xd, n->data));
    if (st == HV_OK && n->nsrc > 2)
        st = HV_DNN(cudnnAddTensor(cb->dnn, &one, cs->bd, n->src[2]->data, &one, cs->xd, n->data));
    return st;
}

static hv_status deconv_backward(hv_cuda_be *cb, conv_state *cs, hv_nn_tensor *n,
                                 const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *w = n->src[1];
    const float one = 1.0f;
    void *ws = NULL;
    hv_status st = HV_OK;
    if (x->grad) {
        if (!cs->has_fwd)
            return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s: no forward algorithm was "
                                "chosen", n->name);
        if ((st = workspace(ex, cs->ws_fwd, &ws)) != HV_OK) return st;
        st = HV_DNN(cudnnConvolutionForward(cb->dnn, &one, cs->xd, n->grad, cs->wd, w->data,
                                            cs->cd[0], cs->fwd, ws, cs->ws_fwd, &one, cs->yd,
                                            x->grad));
        if (st != HV_OK) return st;
    }
    if (w->grad) {
        if (!cs->has_bwd_filter)
            return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s: no backward-filter algorithm "
                                "was chosen", n->name);
        if ((st = workspace(ex, cs->ws_filter, &ws)) != HV_OK) return st;
        st = HV_DNN(cudnnConvolutionBackwardFilter(cb->dnn, &one, cs->xd, n->grad, cs->yd,
                                                   x->data, cs->cd[2], cs->bwd_filter, ws,
                                                   cs->ws_filter, &one, cs->wd, w->grad));
        if (st != HV_OK) return st;
    }
    if (n->nsrc > 2 && n->src[2]->grad)
        st = HV_DNN(cudnnConvolutionBackwardBias(cb->dnn, &one, cs->xd, n->grad, &one, cs->bd,
                                                 n->src[2]->grad));
    return st;
}

hv_status hv__cuda_conv_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    conv_state *cs = n->be_state;
    const float one = 1.0f, zero = 0.0f;
    void *ws = NULL;
    if (!cs) return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s %s not prepared",
                                 hv_nn_op_name(n->op), n->name);
    if (cs->deconv) return deconv_forward(cb, cs, n, ex);
    hv_status st = workspace(ex, cs->ws_fwd, &ws);
    if (st != HV_OK) return st;
    st = HV_DNN(cudnnConvolutionForward(cb->dnn, &one, cs->xd, n->src[0]->data, cs->wd,
                                        n->src[1]->data, cs->cd[0], cs->fwd, ws, cs->ws_fwd, &zero,
                                        cs->yd, n->data));
    if (st == HV_OK && n->nsrc > 2)
        st = HV_DNN(cudnnAddTensor(cb->dnn, &one, cs->bd, n->src[2]->data, &one, cs->yd, n->data));
    if (st == HV_OK && n->ip[4]) {
        /* the activations the graph fuses (graph.c, step 1b); act_k knows
         * these four only */
        const int a = n->ip[4];
        if (a != HV_NN_OP_ELU && a != HV_NN_OP_RELU && a != HV_NN_OP_LEAKY_RELU &&
            a != HV_NN_OP_SIGMOID)
            return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s %s has a fused %s, which "
                                "has no fused kernel", hv_nn_op_name(n->op), n->name,
                                hv_nn_op_name((hv_nn_op)a));
        st = HV_CU(hv__cuda_act(cb->stream, a, n->data, n->numel, n->fp[2]));
    }
    return st;
}

hv_status hv__cuda_conv_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    conv_state *cs = n->be_state;
    hv_nn_tensor *x = n->src[0], *w = n->src[1];
    const float one = 1.0f;
    void *ws = NULL;
    hv_status st = HV_OK;
    if (!cs) return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s %s not prepared",
                                 hv_nn_op_name(n->op), n->name);
    if (cs->deconv) return deconv_backward(cb, cs, n, ex);
    if (n->ip[4])
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: backward through a fused activation "
                            "(%s: fusion is for inference graphs only)", n->name);
    if (x->grad) {
        if (!cs->has_bwd_data)
            return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s: no backward-data algorithm "
                                "was chosen", n->name);
        if ((st = workspace(ex, cs->ws_data, &ws)) != HV_OK) return st;
        st = HV_DNN(cudnnConvolutionBackwardData(cb->dnn, &one, cs->wd, w->data, cs->yd, n->grad,
                                                 cs->cd[1], cs->bwd_data, ws, cs->ws_data, &one,
                                                 cs->xd, x->grad));
        if (st != HV_OK) return st;
    }
    if (w->grad) {
        if (!cs->has_bwd_filter)
            return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s: no backward-filter algorithm "
                                "was chosen", n->name);
        if ((st = workspace(ex, cs->ws_filter, &ws)) != HV_OK) return st;
        st = HV_DNN(cudnnConvolutionBackwardFilter(cb->dnn, &one, cs->xd, x->data, cs->yd,
                                                   n->grad, cs->cd[2], cs->bwd_filter, ws,
                                                   cs->ws_filter, &one, cs->wd, w->grad));
        if (st != HV_OK) return st;
    }
    if (n->nsrc > 2 && n->src[2]->grad)
        st = HV_DNN(cudnnConvolutionBackwardBias(cb->dnn, &one, cs->yd, n->grad, &one, cs->bd,
                                                 n->src[2]->grad));
    return st;
}
