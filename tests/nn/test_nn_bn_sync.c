/*
 * test_nn_bn_sync.c: synchronised batch norm (hv_nn_graph_set_reducer).
 * Two threads, each holding half of a batch of 4 and summing through a
 * barrier-based reducer, must compute what one graph on the whole batch
 * computes: forward output, input gradients, running statistics, and
 * gamma/beta gradients (each thread keeps its local part; their sum is the
 * whole batch's). The whole-batch kernel itself is checked against PyTorch
 * fixtures in test_nn_ops / test_model_nets. Loss = sum(bn(x) * w) with a
 * random w, so every input gradient is non-trivial.
 *
 * Built a second time as tests/gpu's test_gpu_bn_sync with HV_TEST_CUDA:
 * every graph then runs on its own CUDA backend (device 0, parameters
 * bound), so the two halves sum the statistics of the backend's batch norm
 * kernels through the host reducer, and must still equal the whole batch
 * on CUDA. Without a usable device that build prints why and exits 77.
 */
#include <pthread.h>

#include "hv_test.h"
#include "hv/nn.h"
#ifdef HV_TEST_CUDA
#include "hv/gpu.h"
#endif

#define NB 4
#define C 3
#define H 5
#define W 4
#define PER (C * H * W)

static float xs[NB * PER], ws[NB * PER];

typedef struct net {
    hv_nn_params *ps;
    hv_nn_param *gam, *bet, *rm, *rv;
    hv_nn_graph *g;
    hv_nn_tensor *x, *w, *y, *loss;
    hv_nn_backend *be;
} net;

static hv_status net_make(net *n, int64_t nb)
{
    memset(n, 0, sizeof *n);
    const int64_t c = C, sh[4] = {nb, C, H, W};
    hv_status st;
    if ((st = hv_nn_params_create(&n->ps)) || (st = hv_nn_params_add(n->ps, "g", 1, &c, 1, &n->gam)) ||
        (st = hv_nn_params_add(n->ps, "b", 1, &c, 1, &n->bet)) ||
        (st = hv_nn_params_add(n->ps, "rm", 1, &c, 0, &n->rm)) ||
        (st = hv_nn_params_add(n->ps, "rv", 1, &c, 0, &n->rv)))
        return st;
    for (int k = 0; k < C; k++) {
        hv_nn_param_data(n->gam)[k] = 1.0f + 0.3f * (float)k;
        hv_nn_param_data(n->bet)[k] = -0.2f * (float)k;
        hv_nn_param_data(n->rv)[k] = 1.0f;
    }
    if ((st = hv_nn_graph_create(&n->g))) return st;
    n->x = hv_nn_input(n->g, "x", 4, sh);
    n->w = hv_nn_input(n->g, "w", 4, sh);
    hv_nn_set_requires_grad(n->x);
    n->y = hv_nn_batch_norm(n->g, n->x, hv_nn_param_tensor(n->g, n->gam), hv_nn_param_tensor(n->g, n->bet),
                            hv_nn_param_tensor(n->g, n->rm), hv_nn_param_tensor(n->g, n->rv), 0.1f, 1e-5f);
    hv_nn_set_output(n->y);
    n->loss = hv_nn_sum(n->g, hv_nn_mul(n->g, n->y, n->w));
#ifdef HV_TEST_CUDA
    if ((st = hv_gpu_backend_create(0, &n->be)) || (st = hv_nn_params_bind(n->ps, n->be))) return st;
#else
    if ((st = hv_nn_backend_create_cpu(&n->be))) return st;
#endif
    return hv_nn_graph_plan(n->g, n->be, HV_NN_PLAN_TRAIN);
}

static void net_free(net *n)
{
    hv_nn_graph_free(n->g);
    hv_nn_params_free(n->ps);
    hv_nn_backend_free(n->be);
}

/* a parameter's values or gradient (C floats), wherever it lives */
static void param_read(const hv_nn_param *p, int grad, float *out)
{
    HV_CHECK_OK(grad ? hv_nn_param_get_grad(p, out, C) : hv_nn_param_get(p, out, C));
}

typedef struct team {
    pthread_barrier_t bar;
    float *bufs[2];
    float tmp[2][64];
    int calls[2];
} team;

typedef struct member {
    team *t;
    int rank;
    net n;
    float y[2 * PER], dx[2 * PER];
    hv_status st;
} member;

static int reduce2(void *ctx, float *buf, size_t n)
{
    member *me = ctx;
    team *t = me->t;
    if (n > 64) return 1;
    me->t->calls[me->rank]++;
    t->bufs[me->rank] = buf;
    pthread_barrier_wait(&t->bar);
    for (size_t k = 0; k < n; k++) t->tmp[me->rank][k] = t->bufs[0][k] + t->bufs[1][k];
    pthread_barrier_wait(&t->bar);
    memcpy(buf, t->tmp[me->rank], n * sizeof(float));
    return 0;
}

static void *run(void *arg)
{
    member *me = arg;
    const size_t off = (size_t)me->rank * 2 * PER;
    for (int it = 0; it < 2 && me->st == HV_OK; it++) { /* twice: running stats move twice */
        hv_nn_params_zero_grad(me->n.ps);
        if ((me->st = hv_nn_tensor_set(me->n.x, xs + off, 2 * PER)) ||
            (me->st = hv_nn_tensor_set(me->n.w, ws + off, 2 * PER)) ||
            (me->st = hv_nn_graph_forward(me->n.g)) ||
            (me->st = hv_nn_graph_backward(me->n.g, me->n.loss)))
            break;
    }
    if (me->st == HV_OK) me->st = hv_nn_tensor_get(me->n.y, me->y, 2 * PER);
    if (me->st == HV_OK) me->st = hv_nn_tensor_get_grad(me->n.x, me->dx, 2 * PER);
    return NULL;
}

int main(void)
{
#ifdef HV_TEST_CUDA
    setenv("HV_CUDA_TF32", "0", 1);
    hv_nn_backend *probe = NULL;
    if (hv_gpu_backend_create(0, &probe) != HV_OK) {
        printf("# %s\n", hv_error_detail());
        return hv_test_skip("no usable CUDA device: the cuda backend cannot be checked here");
    }
    hv_nn_backend_free(probe);
#endif
    hv_rng rng;
    hv_rng_seed(&rng, 42, 0);
    for (int i = 0; i < NB * PER; i++) {
        /* per-item offsets, so halves have different statistics */
        xs[i] = (float)(2.0 * hv_rng_normal(&rng) + (i / PER) * 1.5);
        ws[i] = (float)hv_rng_normal(&rng);
    }
    net whole;
    HV_REQUIRE(net_make(&whole, NB) == HV_OK, "whole graph: %s", hv_error_detail());
    for (int it = 0; it < 2; it++) {
        hv_nn_params_zero_grad(whole.ps);
        HV_CHECK_OK(hv_nn_tensor_set(whole.x, xs, NB * PER));
        HV_CHECK_OK(hv_nn_tensor_set(whole.w, ws, NB * PER));
        HV_CHECK_OK(hv_nn_graph_forward(whole.g));
        HV_CHECK_OK(hv_nn_graph_backward(whole.g, whole.loss));
    }
    float y[NB * PER], dx[NB * PER];
    HV_CHECK_OK(hv_nn_tensor_get(whole.y, y, NB * PER));
    HV_CHECK_OK(hv_nn_tensor_get_grad(whole.x, dx, NB * PER));

    team t;
    memset(&t, 0, sizeof t);
    pthread_barrier_init(&t.bar, NULL, 2);
    member *m = calloc(2, sizeof *m);
    HV_REQUIRE(m, "oom");
    for (int r = 0; r < 2; r++) {
        m[r].t = &t;
        m[r].rank = r;
        HV_REQUIRE(net_make(&m[r].n, NB / 2) == HV_OK, "half graph: %s", hv_error_detail());
        hv_nn_graph_set_reducer(m[r].n.g, reduce2, &m[r]);
    }
    uint64_t a0 = hv_nn_alloc_count();
    pthread_t th[2];
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, run, &m[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    HV_CHECK(hv_nn_alloc_count() == a0, "forward/backward allocated %llu times",
             (unsigned long long)(hv_nn_alloc_count() - a0));
    /* per iteration: forward 2 calls (sums, squares), backward 1 */
    HV_CHECK(t.calls[0] == 6 && t.calls[1] == 6, "reducer calls %d %d", t.calls[0], t.calls[1]);

    /* tolerance 1e-5: float sums in another order; an unsynchronised BN
     * (reducer not called) differs here by ~1 (per-half statistics) */
    double ey = 0, ed = 0, eg = 0, er = 0;
    float wrm[C], wrv[C], wg[C], wb[C], a[C], b[C];
    param_read(whole.rm, 0, wrm);
    param_read(whole.rv, 0, wrv);
    param_read(whole.gam, 1, wg);
    param_read(whole.bet, 1, wb);
    for (int r = 0; r < 2; r++) {
        HV_CHECK(m[r].st == HV_OK, "rank %d: %s", r, hv_status_name(m[r].st));
        for (int i = 0; i < 2 * PER; i++) {
            ey = fmax(ey, fabs(m[r].y[i] - y[r * 2 * PER + i]));
            ed = fmax(ed, fabs(m[r].dx[i] - dx[r * 2 * PER + i]));
        }
        param_read(m[r].n.rm, 0, a);
        param_read(m[r].n.rv, 0, b);
        for (int k = 0; k < C; k++) {
            er = fmax(er, fabs(a[k] - wrm[k]));
            er = fmax(er, fabs(b[k] - wrv[k]));
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        param_read(pass ? m[0].n.bet : m[0].n.gam, 1, a);
        param_read(pass ? m[1].n.bet : m[1].n.gam, 1, b);
        for (int k = 0; k < C; k++) eg = fmax(eg, fabs(a[k] + b[k] - (pass ? wb : wg)[k]));
    }
    printf("# max diffs: y %.3g dx %.3g dgamma/dbeta %.3g running %.3g\n", ey, ed, eg, er);
    HV_CHECK(ey < 1e-5, "forward output differs by %.3g", ey);
    HV_CHECK(ed < 1e-5, "input gradient differs by %.3g", ed);
    HV_CHECK(eg < 1e-4, "gamma/beta gradients differ by %.3g", eg);
    HV_CHECK(er < 1e-5, "running statistics differ by %.3g", er);
    /* the running variance moved (unbiased, m - 1 = 79 over the whole batch) */
    HV_CHECK(fabs(wrv[0] - 1.0f) > 0.1, "running var did not move");
    for (int r = 0; r < 2; r++) net_free(&m[r].n);
    free(m);
    net_free(&whole);
    pthread_barrier_destroy(&t.bar);
    return hv_test_done();
}
