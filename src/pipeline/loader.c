/*
 * loader.c: reading cases ahead (hv/pipeline.h, "reading ahead").
 *
 * Why: on a large CT, reading and inflating the mask and the CT is about a
 * third of a case (results/run-overlap.txt), and the runner used to do it
 * between two cases with nothing else going on. The loader lets a rank read
 * its next case while it computes the current one, and reads a case's two
 * files at once (two inflates in flight), so a case's wall time tends to
 * the larger of load and compute instead of their sum.
 *
 * How: two threads, one per file kind: thread 0 reads masks, thread 1 CTs,
 * each taking the oldest held case whose file of its kind is still queued.
 * Cases are held in a FIFO of HV_PIPE_LOADER_DEPTH heap entries, guarded by
 * one mutex and one condition variable (broadcast on every change: two
 * threads and one caller, nothing to gain from finer signalling). Only the
 * caller adds and removes entries (prefetch, take, drop: one calling thread,
 * like the rest of the pipeline); a thread holds a pointer to an entry only
 * while a read of it is in progress, and the caller never removes an entry
 * with a read in progress (it waits), so entries need no reference counts.
 * Queued reads of a removed entry are cancelled, never started.
 *
 * Errors: a read's status and error detail (the thread's own, hv_error_* is
 * per thread) are copied into the entry, and hv_pipe_load_volumes raises
 * them again on the caller's thread with the same status and text, so a bad
 * file fails its case with the same reason whether it was read ahead or not.
 *
 * C11 threads (glibc has them): the same primitives as pthreads, and the
 * project is C11.
 */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "hv/pipeline.h"

enum { JOB_NONE = 0, JOB_QUEUED, JOB_READING, JOB_DONE };
enum { K_MASK = 0, K_CT = 1, K_COUNT = 2 };

typedef struct entry {
    const hv_case *cs;          /* borrowed from the caller (prefetch .. take)  */
    char *path[K_COUNT];        /* owned copies; NULL: nothing to read          */
    int state[K_COUNT];         /* JOB_*                                        */
    hv_volume *vol[K_COUNT];    /* owned until taken                            */
    hv_status st[K_COUNT];
    char *err[K_COUNT];         /* owned                                        */
    double t0[K_COUNT], t1[K_COUNT];
} entry;

struct hv_pipe_loader {
    hv_pipe_loader_opts o;
    mtx_t mu;
    cnd_t cv;
    entry *q[HV_PIPE_LOADER_DEPTH]; /* oldest first                             */
    int n;
    int stop;
    thrd_t th[K_COUNT];
    int n_threads;              /* started                                      */
    int have_mu, have_cv;
    hv_pipe_loaded last;        /* timings of the last take, no volumes         */
};

typedef struct worker_arg {
    hv_pipe_loader *l;
    int kind;
} worker_arg;

static hv_status read_nifti(void *user, const char *path, hv_dtype dtype, hv_volume **out)
{
    (void)user;
    return hv_io_nifti_read(path, dtype, NULL, out, NULL);
}

static void entry_free(entry *e)
{
    if (!e) return;
    for (int k = 0; k < K_COUNT; k++) {
        free(e->path[k]);
        hv_vol_free(e->vol[k]);
        free(e->err[k]);
    }
    free(e);
}

static int entry_busy(const entry *e)
{
    return e->state[K_MASK] == JOB_READING || e->state[K_CT] == JOB_READING;
}

static int entry_done(const entry *e)
{
    for (int k = 0; k < K_COUNT; k++)
        if (e->state[k] == JOB_QUEUED || e->state[k] == JOB_READING) return 0;
    return 1;
}

/* Caller's thread, mutex held: remove q[i], cancelling its queued reads and
 * waiting for one in progress. */
static void remove_at(hv_pipe_loader *l, int i)
{
    entry *e = l->q[i];
    for (int k = 0; k < K_COUNT; k++)
        if (e->state[k] == JOB_QUEUED) e->state[k] = JOB_NONE;
    while (entry_busy(e)) cnd_wait(&l->cv, &l->mu);
    for (int j = i; j + 1 < l->n; j++) l->q[j] = l->q[j + 1];
    l->q[--l->n] = NULL;
    entry_free(e);
}

static int find(const hv_pipe_loader *l, const hv_case *cs)
{
    for (int i = 0; i < l->n; i++)
        if (l->q[i]->cs == cs) return i;
    return -1;
}

static int worker(void *arg)
{
    hv_pipe_loader *l = ((worker_arg *)arg)->l;
    const int kind = ((worker_arg *)arg)->kind;
    free(arg);
    const hv_dtype dtype = kind == K_MASK ? HV_DTYPE_I16 : HV_DTYPE_F32;
    mtx_lock(&l->mu);
    for (;;) {
        entry *e = NULL;
        while (!l->stop) {
            for (int i = 0; i < l->n && !e; i++)
                if (l->q[i]->state[kind] == JOB_QUEUED) e = l->q[i];
            if (e) break;
            cnd_wait(&l->cv, &l->mu);
        }
        if (l->stop) break;
        e->state[kind] = JOB_READING;
        const char *path = e->path[kind];
        mtx_unlock(&l->mu);

        hv_volume *v = NULL;
        double t0 = hv_time_now();
        hv_error_clear();
        hv_status st = l->o.read(l->o.user, path, dtype, &v);
        char *err = NULL;
        if (st != HV_OK) {
            hv_vol_free(v);
            v = NULL;
            err = hv_strdup(hv_error_detail());
            hv_error_clear();
        }
        double t1 = hv_time_now();

        mtx_lock(&l->mu);
        e->vol[kind] = v;
        e->st[kind] = st;
        e->err[kind] = err;
        e->t0[kind] = t0;
        e->t1[kind] = t1;
        e->state[kind] = JOB_DONE;
        cnd_broadcast(&l->cv);
    }
    mtx_unlock(&l->mu);
    return 0;
}

void hv_pipe_loaded_clear(hv_pipe_loaded *d)
{
    if (!d) return;
    hv_vol_free(d->mask);
    hv_vol_free(d->ct);
    free(d->mask_err);
    free(d->ct_err);
    memset(d, 0, sizeof *d);
}

hv_status hv_pipe_loader_create(const hv_pipe_loader_opts *o, hv_pipe_loader **out)
{
    *out = NULL;
    hv_pipe_loader *l = calloc(1, sizeof *l);
    if (!l) return hv_error_set(HV_ERR_NOMEM, "loader: out of memory");
    if (o) l->o = *o;
    if (!l->o.read) l->o.read = read_nifti;
    l->have_mu = mtx_init(&l->mu, mtx_plain) == thrd_success;
    l->have_cv = l->have_mu && cnd_init(&l->cv) == thrd_success;
    if (!l->have_cv) {
        hv_pipe_loader_free(l);
        return hv_error_set(HV_ERR_NOMEM, "loader: cannot make its mutex and condition");
    }
    for (int k = 0; k < K_COUNT; k++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) *a = (worker_arg){l, k};
        if (!a || thrd_create(&l->th[k], worker, a) != thrd_success) {
            free(a);
            hv_pipe_loader_free(l);
            return hv_error_set(HV_ERR_NOMEM, "loader: cannot start its reading thread %d", k);
        }
        l->n_threads++;
    }
    *out = l;
    return HV_OK;
}

/* Mutex held: a new entry for cs at the end of the queue (room checked). */
static hv_status push(hv_pipe_loader *l, const hv_case *cs)
{
    entry *e = calloc(1, sizeof *e);
    if (!e) return hv_error_set(HV_ERR_NOMEM, "loader: out of memory");
    e->cs = cs;
    if (cs->status == HV_OK) {
        const char *p[K_COUNT] = {cs->mask_path, cs->ct_path};
        for (int k = 0; k < K_COUNT; k++) {
            if (!p[k]) continue;
            if (!(e->path[k] = hv_strdup(p[k]))) {
                entry_free(e);
                return hv_error_set(HV_ERR_NOMEM, "loader: out of memory");
            }
            e->state[k] = JOB_QUEUED;
        }
    }
    l->q[l->n++] = e;
    cnd_broadcast(&l->cv);
    return HV_OK;
}

hv_status hv_pipe_loader_prefetch(hv_pipe_loader *l, const hv_case *cs)
{
    hv_status st = HV_OK;
    mtx_lock(&l->mu);
    if (find(l, cs) >= 0)
        st = hv_error_set(HV_ERR_ARG, "loader: case %s is queued already", cs->id ? cs->id : "?");
    else if (l->n >= HV_PIPE_LOADER_DEPTH)
        st = hv_error_set(HV_ERR_LIMIT, "loader: %d case(s) held already (at most %d)", l->n,
                          HV_PIPE_LOADER_DEPTH);
    else st = push(l, cs);
    mtx_unlock(&l->mu);
    return st;
}

hv_status hv_pipe_loader_take(hv_pipe_loader *l, const hv_case *cs, hv_pipe_loaded *out)
{
    memset(out, 0, sizeof *out);
    double t_in = hv_time_now();
    hv_status st = HV_OK;
    mtx_lock(&l->mu);
    int i = find(l, cs);
    if (i < 0) {
        /* never prefetched: whatever is held is older, and dropped */
        while (l->n > 0) remove_at(l, 0);
        if ((st = push(l, cs)) != HV_OK) goto done;
        i = 0;
    }
    while (i > 0) remove_at(l, 0), i--;
    entry *e = l->q[0];
    while (!entry_done(e)) cnd_wait(&l->cv, &l->mu);
    out->cs = cs;
    out->mask = e->vol[K_MASK];
    out->ct = e->vol[K_CT];
    out->mask_st = e->st[K_MASK];
    out->ct_st = e->st[K_CT];
    out->mask_err = e->err[K_MASK];
    out->ct_err = e->err[K_CT];
    double lo = 0, hi = 0;
    int nread = 0;
    for (int k = 0; k < K_COUNT; k++) {
        e->vol[k] = NULL;
        e->err[k] = NULL;
        if (e->state[k] != JOB_DONE) continue;
        out->read_s[k] = e->t1[k] - e->t0[k];
        if (!nread || e->t0[k] < lo) lo = e->t0[k];
        if (!nread || e->t1[k] > hi) hi = e->t1[k];
        nread++;
    }
    out->load_s = nread ? hi - lo : 0;
    if (nread == K_COUNT) {
        double a = e->t0[0] > e->t0[1] ? e->t0[0] : e->t0[1];
        double b = e->t1[0] < e->t1[1] ? e->t1[0] : e->t1[1];
        out->overlap_s = b > a ? b - a : 0;
    }
    remove_at(l, 0);
    out->wait_s = hv_time_now() - t_in;
    l->last = *out;
    l->last.mask = l->last.ct = NULL;
    l->last.mask_err = l->last.ct_err = NULL;
done:
    mtx_unlock(&l->mu);
    return st;
}

void hv_pipe_loader_drop(hv_pipe_loader *l, const hv_case *cs)
{
    if (!l) return;
    mtx_lock(&l->mu);
    int i = find(l, cs);
    if (i >= 0) remove_at(l, i);
    mtx_unlock(&l->mu);
}

void hv_pipe_loader_last(const hv_pipe_loader *l, hv_pipe_loaded *out)
{
    memset(out, 0, sizeof *out);
    if (!l) return;
    mtx_lock((mtx_t *)&l->mu);
    *out = l->last;
    mtx_unlock((mtx_t *)&l->mu);
}

void hv_pipe_loader_free(hv_pipe_loader *l)
{
    if (!l) return;
    if (l->have_cv) {
        mtx_lock(&l->mu);
        l->stop = 1;
        /* queued reads are cancelled; a thread in a read finishes it first */
        for (int i = 0; i < l->n; i++)
            for (int k = 0; k < K_COUNT; k++)
                if (l->q[i]->state[k] == JOB_QUEUED) l->q[i]->state[k] = JOB_NONE;
        cnd_broadcast(&l->cv);
        mtx_unlock(&l->mu);
        for (int k = 0; k < l->n_threads; k++) thrd_join(l->th[k], NULL);
    }
    for (int i = 0; i < l->n; i++) entry_free(l->q[i]);
    if (l->have_cv) cnd_destroy(&l->cv);
    if (l->have_mu) mtx_destroy(&l->mu);
    free(l);
}

/* --------------------------------------------------- the load stage's reads */

/* `st` with the detail `err` on this thread (a read's, copied on its own). */
static hv_status raise_read(hv_status st, const char *err)
{
    return hv_error_set(st, "%s", err ? err : "(the read's error detail was lost: out of memory)");
}

hv_status hv_pipe_load_volumes(hv_pipe_loader *l, const hv_case *cs, hv_volume **mask,
                               hv_volume **ct)
{
    hv_status st;
    *mask = NULL;
    *ct = NULL;
    if (l) {
        hv_pipe_loaded d;
        if (hv_pipe_loader_take(l, cs, &d) == HV_OK) {
            if (d.mask_st != HV_OK) st = raise_read(d.mask_st, d.mask_err);
            else if (cs->ct_path && d.ct_st != HV_OK) {
                *mask = d.mask;
                d.mask = NULL;
                st = raise_read(d.ct_st, d.ct_err);
            } else {
                *mask = d.mask;
                *ct = d.ct;
                d.mask = d.ct = NULL;
                st = HV_OK;
            }
            hv_pipe_loaded_clear(&d);
            return st;
        }
        hv_log_warn("case %s: reading ahead failed (%s); reading its files here",
                    cs->id ? cs->id : "?", hv_error_detail());
        hv_error_clear();
    }
    st = hv_io_nifti_read(cs->mask_path, HV_DTYPE_I16, NULL, mask, NULL);
    if (st != HV_OK || !cs->ct_path) return st;
    return hv_io_nifti_read(cs->ct_path, HV_DTYPE_F32, NULL, ct, NULL);
}
