/*
 * fake_device.h: a test-only "device" backend for the NN engine, to check
 * that the graph treats a backend whose buffers are not host memory
 * correctly without a GPU. Header-only (static functions) so that each test
 * stays one source file.
 *
 * Its buffers are separate anonymous mappings kept PROT_NONE whenever the
 * backend itself is not running: host code that touches them (a reference
 * kernel run on device pointers, a memcpy instead of copy_out) faults, and
 * the SIGSEGV handler installed by fake_device_create says so and exits 1.
 * Its own kernels (the ops in its `supports` list, every other op is
 * declined) open the mappings and run the reference kernels on them. It
 * queues work like a device: after a kernel, copy_out refuses to read
 * until synchronize was called. copy_in/copy_out/clear check that the device
 * side lies inside one of its buffers and the host side outside all of them.
 * Adam runs as its adam_step hook on the bound buffers, with the host loop's
 * arithmetic, after the step's finite check: grad_check queues into one
 * flag, grad_check_result is a synchronisation (counted in n_sync, and in
 * n_check_wait) that answers it.
 *
 * Ownership: fake_device_create returns a backend freed with
 * hv_nn_backend_free; the fake_dev state (counters, supports) is owned by the
 * backend and may be read and changed by the test while it lives.
 */
#ifndef HV_TESTS_NN_FAKE_DEVICE_H
#define HV_TESTS_NN_FAKE_DEVICE_H

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/nn/nn_backend.h"

#define FAKE_DEV_MAX_BUFS 4096

typedef struct fake_dev {
    struct {
        char *p;
        size_t len;
    } bufs[FAKE_DEV_MAX_BUFS];
    int nb;
    int supports[HV_NN_OP_COUNT]; /* 1: its own kernel; 0: declined */
    int pending;                  /* kernels ran since the last synchronize */
    uint64_t n_sync, n_copy_in, n_copy_out, n_kernels, n_adam;
    uint64_t n_check, n_check_wait; /* grad_check calls, grad_check_result waits */
    int flag;                       /* the step's non-finite flag (a tag, 0 none) */
} fake_dev;

static void fake_dev_segv(int sig)
{
    static const char msg[] = "SIGSEGV: host code touched fake device memory (or another fault)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    _exit(1);
}

static void fake_dev_access(fake_dev *fd, int open)
{
    for (int i = 0; i < fd->nb; i++)
        mprotect(fd->bufs[i].p, fd->bufs[i].len, open ? PROT_READ | PROT_WRITE : PROT_NONE);
}

/* Index of the buffer holding [p, p + bytes), -1 when none does. */
static int fake_dev_find(const fake_dev *fd, const void *p, size_t bytes)
{
    const char *c = p;
    for (int i = 0; i < fd->nb; i++)
        if (c >= fd->bufs[i].p && c + bytes <= fd->bufs[i].p + fd->bufs[i].len) return i;
    return -1;
}

static int fake_dev_touches(const fake_dev *fd, const void *p, size_t bytes)
{
    const char *c = p;
    for (int i = 0; i < fd->nb; i++)
        if (c < fd->bufs[i].p + fd->bufs[i].len && c + bytes > fd->bufs[i].p) return 1;
    return 0;
}

static void fake_dev_destroy(hv_nn_backend *be)
{
    fake_dev *fd = be->ctx;
    for (int i = 0; i < fd->nb; i++) munmap(fd->bufs[i].p, fd->bufs[i].len);
    free(fd);
    free(be);
}

static hv_status fake_dev_alloc(hv_nn_backend *be, size_t bytes, void **out)
{
    fake_dev *fd = be->ctx;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (bytes + pg - 1) / pg * pg;
    if (!len) len = pg;
    if (fd->nb == FAKE_DEV_MAX_BUFS) return hv_error_set(HV_ERR_NOMEM, "fake device: too many buffers");
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return hv_error_set(HV_ERR_NOMEM, "fake device: mmap of %zu bytes failed", len);
    fd->bufs[fd->nb].p = p;
    fd->bufs[fd->nb].len = len;
    fd->nb++;
    *out = p;
    return HV_OK;
}

static void fake_dev_buffer_free(hv_nn_backend *be, void *buf)
{
    fake_dev *fd = be->ctx;
    for (int i = 0; i < fd->nb; i++)
        if (fd->bufs[i].p == buf) {
            munmap(fd->bufs[i].p, fd->bufs[i].len);
            fd->bufs[i] = fd->bufs[--fd->nb];
            return;
        }
}

static hv_status fake_dev_copy_in(hv_nn_backend *be, void *dst, const void *src, size_t bytes)
{
    fake_dev *fd = be->ctx;
    if (fake_dev_find(fd, dst, bytes) < 0 || fake_dev_touches(fd, src, bytes))
        return hv_error_set(HV_ERR_ARG, "fake device: copy_in from %p to %p (%zu bytes) is not host "
                            "to device", src, dst, bytes);
    fake_dev_access(fd, 1);
    memcpy(dst, src, bytes);
    fake_dev_access(fd, 0);
    fd->n_copy_in++;
    return HV_OK;
}

static hv_status fake_dev_copy_out(hv_nn_backend *be, void *dst, const void *src, size_t bytes)
{
    fake_dev *fd = be->ctx;
    if (fake_dev_find(fd, src, bytes) < 0 || fake_dev_touches(fd, dst, bytes))
        return hv_error_set(HV_ERR_ARG, "fake device: copy_out from %p to %p (%zu bytes) is not "
                            "device to host", src, dst, bytes);
    if (fd->pending)
        return hv_error_set(HV_ERR_ARG, "fake device: copy_out while kernels are queued "
                            "(synchronize was not called)");
    fake_dev_access(fd, 1);
    memcpy(dst, src, bytes);
    fake_dev_access(fd, 0);
    fd->n_copy_out++;
    return HV_OK;
}

static hv_status fake_dev_clear(hv_nn_backend *be, void *dst, size_t bytes)
{
    fake_dev *fd = be->ctx;
    if (fake_dev_find(fd, dst, bytes) < 0)
        return hv_error_set(HV_ERR_ARG, "fake device: clear of host memory %p", dst);
    fake_dev_access(fd, 1);
    memset(dst, 0, bytes);
    fake_dev_access(fd, 0);
    return HV_OK;
}

static hv_status fake_dev_sync(hv_nn_backend *be)
{
    fake_dev *fd = be->ctx;
    fd->pending = 0;
    fd->n_sync++;
    return HV_OK;
}

static int fake_dev_supports(hv_nn_backend *be, const hv_nn_tensor *n, int grads)
{
    (void)grads;
    return ((fake_dev *)be->ctx)->supports[n->op];
}

static hv_status fake_dev_run(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex, int bwd)
{
    fake_dev *fd = be->ctx;
    fake_dev_access(fd, 1);
    hv_status st = bwd ? hv__nn_ref_backward(n, ex) : hv__nn_ref_forward(n, ex);
    fake_dev_access(fd, 0);
    fd->pending = 1;
    fd->n_kernels++;
    return st;
}

static hv_status fake_dev_forward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    return fake_dev_run(be, n, ex, 0);
}

static hv_status fake_dev_backward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    return fake_dev_run(be, n, ex, 1);
}

static hv_status fake_dev_adam(hv_nn_backend *be, float *w, float *m, float *v, const float *g,
                               int64_t n, const hv_nn_adam_hp *hp)
{
    fake_dev *fd = be->ctx;
    const size_t bytes = (size_t)n * sizeof(float);
    if (fake_dev_find(fd, w, bytes) < 0 || fake_dev_find(fd, m, bytes) < 0 ||
        fake_dev_find(fd, v, bytes) < 0 || fake_dev_find(fd, g, bytes) < 0)
        return hv_error_set(HV_ERR_ARG, "fake device: adam_step on memory that is not its own");
    fake_dev_access(fd, 1);
    hv_status st = hv__nn_adam_update(w, m, v, g, n, hp);
    fake_dev_access(fd, 0);
    fd->pending = 1;
    fd->n_adam++;
    return st;
}

static hv_status fake_dev_grad_check(hv_nn_backend *be, const float *g, int64_t n, int tag)
{
    fake_dev *fd = be->ctx;
    if (n > 0 && fake_dev_find(fd, g, (size_t)n * sizeof(float)) < 0)
        return hv_error_set(HV_ERR_ARG, "fake device: grad_check on memory that is not its own");
    if (tag == 1) fd->flag = 0;
    fake_dev_access(fd, 1);
    for (int64_t k = 0; k < n && !fd->flag; k++)
        if (!isfinite(g[k])) fd->flag = tag;
    fake_dev_access(fd, 0);
    fd->pending = 1;
    fd->n_check++;
    return HV_OK;
}

static hv_status fake_dev_grad_check_result(hv_nn_backend *be, int *tag)
{
    fake_dev *fd = be->ctx;
    fd->n_check_wait++;
    *tag = fd->flag;
    return fake_dev_sync(be);
}

static const hv_nn_backend_i fake_dev_iface = {
    .name = "fake_device",
    .destroy = fake_dev_destroy,
    .host_memory = 0,
    .synchronize = fake_dev_sync,
    .buffer_alloc = fake_dev_alloc,
    .buffer_free = fake_dev_buffer_free,
    .copy_in = fake_dev_copy_in,
    .copy_out = fake_dev_copy_out,
    .clear = fake_dev_clear,
    .supports_op = fake_dev_supports,
    .node_forward = fake_dev_forward,
    .node_backward = fake_dev_backward,
    .adam_step = fake_dev_adam,
    .grad_check = fake_dev_grad_check,
    .grad_check_result = fake_dev_grad_check_result,
};

/* A fake device running the ops listed in ops (n_ops of them; n_ops < 0:
 * every op) and declining the rest. */
static hv_status fake_device_create(hv_nn_backend **out, const hv_nn_op *ops, int n_ops)
{
    hv_nn_backend *be = calloc(1, sizeof *be);
    fake_dev *fd = calloc(1, sizeof *fd);
    if (!be || !fd) {
        free(be);
        free(fd);
        return hv_error_set(HV_ERR_NOMEM, "fake device: out of memory");
    }
    for (int i = 0; i < HV_NN_OP_COUNT; i++) fd->supports[i] = n_ops < 0;
    for (int i = 0; i < n_ops; i++) fd->supports[ops[i]] = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fake_dev_segv;
    sigaction(SIGSEGV, &sa, NULL);
    be->iface = &fake_dev_iface;
    be->ctx = fd;
    *out = be;
    return HV_OK;
}

static inline fake_dev *fake_device_state(hv_nn_backend *be) { return be->ctx; }

#endif /* HV_TESTS_NN_FAKE_DEVICE_H */
