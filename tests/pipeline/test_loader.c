/*
 * test_loader.c: the read-ahead loader (hv_pipe_loader, src/pipeline/loader.c).
 *
 * Expected values are the ones this test writes: voxel patterns given by a
 * formula, written as NIfTI and read back through the loader; error texts
 * are compared with what hv_io_nifti_read itself says about the same file
 * (the load stage's behaviour without a loader). Concurrency is checked with
 * a read function of the test's own that meets the other read at a
 * rendezvous: it only succeeds when two reads are in flight at once.
 */
#define _POSIX_C_SOURCE 200809L
#include <threads.h>
#include <time.h>

#include "hv/pipeline.h"
#include "hv_test.h"

static float ct_val(int tag, int64_t i, int64_t j, int64_t k)
{
    return (float)(tag * 1000 + i - 7 * j + 13 * k) + 0.25f;
}
static int16_t mask_val(int tag, int64_t i, int64_t j, int64_t k)
{
    return (int16_t)((i + 2 * j + 3 * k + tag) % 5);
}

static int write_case(const char *dir, int tag, char *mask_path, char *ct_path, size_t cap)
{
    const int64_t dim[3] = {9, 7, 5};
    hv_volume *m = NULL, *c = NULL;
    int ok = hv_vol_create(&m, dim, HV_DTYPE_I16, NULL) == HV_OK &&
             hv_vol_create(&c, dim, HV_DTYPE_F32, NULL) == HV_OK;
    for (int64_t k = 0; ok && k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                ((int16_t *)m->data)[hv_vol_idx(m, i, j, k)] = mask_val(tag, i, j, k);
                ((float *)c->data)[hv_vol_idx(c, i, j, k)] = ct_val(tag, i, j, k);
            }
    snprintf(mask_path, cap, "%s/case%d_msk.nii.gz", dir, tag);
    snprintf(ct_path, cap, "%s/case%d_ct.nii.gz", dir, tag);
    ok = ok && hv_io_nifti_write(mask_path, m, NULL) == HV_OK &&
         hv_io_nifti_write(ct_path, c, NULL) == HV_OK;
    hv_vol_free(m);
    hv_vol_free(c);
    return ok;
}

static int same_as_written(const hv_volume *m, const hv_volume *c, int tag)
{
    if (!m || !c || m->dtype != HV_DTYPE_I16 || c->dtype != HV_DTYPE_F32) return 0;
    for (int64_t k = 0; k < m->dim[2]; k++)
        for (int64_t j = 0; j < m->dim[1]; j++)
            for (int64_t i = 0; i < m->dim[0]; i++)
                if (((int16_t *)m->data)[hv_vol_idx(m, i, j, k)] != mask_val(tag, i, j, k) ||
                    ((float *)c->data)[hv_vol_idx(c, i, j, k)] != ct_val(tag, i, j, k))
                    return 0;
    return m->dim[0] == 9 && m->dim[1] == 7 && m->dim[2] == 5;
}

/* ------------------------------------------------- a read of the test's own */

typedef struct probe {
    mtx_t mu;
    cnd_t cv;
    int started, finished, in_flight, max_in_flight;
    int rendezvous;     /* 1: each read waits (up to 3 s) for a second one     */
    int met, missed;
    int gate;           /* 1: reads wait until the test opens it (gate = 0)    */
    long sleep_ms;
} probe;

static void wait_until(probe *p, double deadline)
{
    double now = hv_time_now();
    if (now >= deadline) return;
    double left = deadline - now;
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    ts.tv_sec += (time_t)left;
    ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    cnd_timedwait(&p->cv, &p->mu, &ts);
}

static hv_status probe_read(void *user, const char *path, hv_dtype dtype, hv_volume **out)
{
    probe *p = user;
    mtx_lock(&p->mu);
    p->started++;
    p->in_flight++;
    if (p->in_flight > p->max_in_flight) p->max_in_flight = p->in_flight;
    cnd_broadcast(&p->cv);
    double deadline = hv_time_now() + 3.0;
    if (p->rendezvous) {
        while (p->in_flight < 2 && p->max_in_flight < 2 && hv_time_now() < deadline)
            wait_until(p, deadline);
        if (p->max_in_flight >= 2) p->met++;
        else p->missed++;
    }
    while (p->gate && hv_time_now() < deadline + 10) wait_until(p, deadline + 10);
    long ms = p->sleep_ms;
    mtx_unlock(&p->mu);
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    hv_status st;
    if (strstr(path, "bad")) st = hv_error_set(HV_ERR_FORMAT, "%s: probe says bad", path);
    else {
        const int64_t dim[3] = {2, 2, 2};
        st = hv_vol_create(out, dim, dtype, NULL);
    }
    mtx_lock(&p->mu);
    p->in_flight--;
    p->finished++;
    cnd_broadcast(&p->cv);
    mtx_unlock(&p->mu);
    return st;
}

static void probe_init(probe *p)
{
    memset(p, 0, sizeof *p);
    mtx_init(&p->mu, mtx_plain);
    cnd_init(&p->cv);
}

static int probe_count(probe *p, int *which)
{
    mtx_lock(&p->mu);
    int v = *which;
    mtx_unlock(&p->mu);
    return v;
}

/* Wait up to `s` seconds for p->started to reach n. */
static int wait_started(probe *p, int n, double s)
{
    double deadline = hv_time_now() + s;
    mtx_lock(&p->mu);
    while (p->started < n && hv_time_now() < deadline) wait_until(p, deadline);
    int v = p->started;
    mtx_unlock(&p->mu);
    return v;
}

static hv_case mk_case(char *id, char *mask, char *ct)
{
    hv_case c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.mask_path = mask;
    c.ct_path = ct;
    c.status = HV_OK;
    return c;
}

int main(void)
{
    const char *tmp = hv_test_tmpdir("loader");
    HV_REQUIRE(tmp != NULL, "scratch folder");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp);
    char m1[4200], c1[4200], m2[4200], c2[4200], bad[4200];
    HV_REQUIRE(write_case(dir, 1, m1, c1, sizeof m1) && write_case(dir, 2, m2, c2, sizeof m2),
               "writing the test's NIfTI files: %s", hv_error_detail());
    snprintf(bad, sizeof bad, "%s/not_a_nifti.nii.gz", dir);
    FILE *f = fopen(bad, "w");
    HV_REQUIRE(f != NULL, "writing %s", bad);
    fputs("this is not a NIfTI file\n", f);
    fclose(f);

    /* 1. real files, two cases held; each comes back as written */
    {
        hv_case a = mk_case("a", m1, c1), b = mk_case("b", m2, c2), c = mk_case("c", m1, c2);
        hv_pipe_loader *l = NULL;
        HV_CHECK_OK(hv_pipe_loader_create(NULL, &l));
        HV_REQUIRE(l != NULL, "loader");
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &a));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &b));
        HV_CHECK(hv_pipe_loader_prefetch(l, &c) == HV_ERR_LIMIT,
                 "a third case is refused (at most %d held)", HV_PIPE_LOADER_DEPTH);
        HV_CHECK(hv_pipe_loader_prefetch(l, &a) == HV_ERR_ARG, "a case held twice is refused");
        hv_error_clear();
        hv_pipe_loaded d;
        HV_CHECK_OK(hv_pipe_loader_take(l, &a, &d));
        HV_CHECK(same_as_written(d.mask, d.ct, 1), "case a: the written voxels");
        HV_CHECK(d.mask_st == HV_OK && d.ct_st == HV_OK && !d.mask_err && !d.ct_err, "a: no error");
        HV_CHECK(d.load_s >= d.read_s[0] && d.load_s >= d.read_s[1] && d.read_s[1] > 0,
                 "a: load %.6f covers the reads %.6f %.6f", d.load_s, d.read_s[0], d.read_s[1]);
        hv_pipe_loaded_clear(&d);
        HV_CHECK(!d.mask && !d.ct, "cleared");
        /* room again: c is accepted behind b */
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &c));
        HV_CHECK_OK(hv_pipe_loader_take(l, &b, &d));
        HV_CHECK(same_as_written(d.mask, d.ct, 2), "case b: the written voxels");
        hv_pipe_loaded last;
        hv_pipe_loader_last(l, &last);
        HV_CHECK(last.cs == &b && last.load_s == d.load_s && !last.mask && !last.ct,
                 "last(): b's timings only");
        hv_pipe_loaded_clear(&d);
        /* c is dropped unread or read: either way freed (ASan) */
        hv_pipe_loader_drop(l, &c);
        /* never prefetched: read on take */
        HV_CHECK_OK(hv_pipe_loader_take(l, &b, &d));
        HV_CHECK(same_as_written(d.mask, d.ct, 2), "case b again, not prefetched");
        hv_pipe_loaded_clear(&d);
        hv_pipe_loader_free(l);
    }

    /* 2. the load stage's reads: the same volumes and errors with and
     *    without a loader; the mask's error first */
    {
        hv_case good = mk_case("good", m1, c1), badmask = mk_case("bm", bad, c1),
                badct = mk_case("bc", m1, bad), both = mk_case("bb", bad, bad),
                noct = mk_case("noct", m2, NULL);
        hv_case *cases[] = {&good, &badmask, &badct, &both, &noct};
        hv_pipe_loader *l = NULL;
        HV_CHECK_OK(hv_pipe_loader_create(NULL, &l));
        HV_REQUIRE(l != NULL, "loader");
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            hv_case *cs = cases[i];
            hv_volume *m0 = NULL, *c0 = NULL, *m1v = NULL, *c1v = NULL;
            hv_error_clear();
            hv_status s0 = hv_pipe_load_volumes(NULL, cs, &m0, &c0);
            char d0[2048];
            snprintf(d0, sizeof d0, "%s", hv_error_detail());
            hv_error_clear();
            HV_CHECK_OK(hv_pipe_loader_prefetch(l, cs));
            hv_status s1 = hv_pipe_load_volumes(l, cs, &m1v, &c1v);
            const char *d1 = hv_error_detail();
            HV_CHECK(s0 == s1, "case %s: status %s read here, %s read ahead", cs->id,
                     hv_status_name(s0), hv_status_name(s1));
            HV_CHECK(!strcmp(d0, d1), "case %s: detail '%s' read here, '%s' read ahead", cs->id,
                     d0, d1);
            HV_CHECK(!m0 == !m1v && !c0 == !c1v, "case %s: the same volumes are set", cs->id);
            if (cs == &good) HV_CHECK(same_as_written(m1v, c1v, 1), "good: voxels");
            if (cs == &noct) HV_CHECK(m1v && !c1v, "no CT: mask only");
            if (cs == &badmask || cs == &both)
                HV_CHECK(s1 == HV_ERR_FORMAT && strstr(d1, "not_a_nifti") && !m1v,
                         "case %s: the mask's error, naming the file: %s", cs->id, d1);
            if (cs == &badct)
                HV_CHECK(s1 != HV_OK && strstr(d1, "not_a_nifti") && m1v && !c1v,
                         "bad CT: its error, the mask read: %s", d1);
            hv_vol_free(m0);
            hv_vol_free(c0);
            hv_vol_free(m1v);
            hv_vol_free(c1v);
        }
        hv_pipe_loader_free(l);
    }

    /* 3. both files of a case in flight at once */
    {
        probe p;
        probe_init(&p);
        p.rendezvous = 1;
        hv_pipe_loader_opts o = {probe_read, &p};
        hv_pipe_loader *l = NULL;
        HV_CHECK_OK(hv_pipe_loader_create(&o, &l));
        hv_case a = mk_case("a", "m", "c");
        hv_pipe_loaded d;
        HV_CHECK_OK(hv_pipe_loader_take(l, &a, &d));
        HV_CHECK(p.met == 2 && p.missed == 0 && p.max_in_flight == 2,
                 "mask and CT read at once (met %d, missed %d, at most %d in flight)", p.met,
                 p.missed, p.max_in_flight);
        HV_CHECK(d.overlap_s > 0, "the reads overlapped (%.6f s)", d.overlap_s);
        hv_pipe_loaded_clear(&d);
        hv_pipe_loader_free(l);
    }

    /* 4. the next case is read while the caller works on the current one,
     *    without another call; a case that cannot run reads nothing */
    {
        probe p;
        probe_init(&p);
        hv_pipe_loader_opts o = {probe_read, &p};
        hv_pipe_loader *l = NULL;
        HV_CHECK_OK(hv_pipe_loader_create(&o, &l));
        hv_case a = mk_case("a", "m", "c"), b = mk_case("b", "m", "c"),
                skip = mk_case("skip", "m", "c");
        skip.status = HV_ERR_NOT_FOUND;
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &a));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &b));
        hv_pipe_loaded d;
        HV_CHECK_OK(hv_pipe_loader_take(l, &a, &d));
        hv_pipe_loaded_clear(&d);
        /* the caller "computes" a: b's two reads start on their own */
        HV_CHECK(wait_started(&p, 4, 5.0) == 4, "b's reads started during a's compute (%d)",
                 probe_count(&p, &p.started));
        HV_CHECK_OK(hv_pipe_loader_take(l, &b, &d));
        HV_CHECK(d.wait_s < d.load_s + 1.0 && d.mask && d.ct, "b handed over");
        hv_pipe_loaded_clear(&d);
        int before = probe_count(&p, &p.started);
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &skip));
        HV_CHECK_OK(hv_pipe_loader_take(l, &skip, &d));
        HV_CHECK(!d.mask && !d.ct && d.load_s == 0 && probe_count(&p, &p.started) == before,
                 "a case whose status is not OK reads nothing");
        hv_pipe_loaded_clear(&d);
        /* a read error travels with its text */
        hv_case e = mk_case("e", "m", "c-bad");
        HV_CHECK_OK(hv_pipe_loader_take(l, &e, &d));
        HV_CHECK(d.mask && !d.ct && d.ct_st == HV_ERR_FORMAT && d.ct_err &&
                     !strcmp(d.ct_err, "c-bad: probe says bad"),
                 "the CT's error: %s", d.ct_err ? d.ct_err : "(none)");
        hv_pipe_loaded_clear(&d);
        hv_pipe_loader_free(l);
    }

    /* 5. taking a later case drops the earlier ones; free stops with reads
     *    queued and in progress (nothing leaks: the ASan build checks) */
    {
        probe p;
        probe_init(&p);
        p.sleep_ms = 50;
        hv_pipe_loader_opts o = {probe_read, &p};
        hv_pipe_loader *l = NULL;
        HV_CHECK_OK(hv_pipe_loader_create(&o, &l));
        hv_case a = mk_case("a", "m", "c"), b = mk_case("b", "m", "c");
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &a));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &b));
        hv_pipe_loaded d;
        HV_CHECK_OK(hv_pipe_loader_take(l, &b, &d));
        HV_CHECK(d.mask && d.ct, "b taken past a");
        hv_pipe_loaded_clear(&d);
        hv_case c = mk_case("c", "m", "c");
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &a));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &c)); /* room: a was dropped */
        hv_pipe_loader_free(l);                     /* a in flight, c queued */
        HV_CHECK(probe_count(&p, &p.in_flight) == 0, "free waited for the reads in flight");
        HV_CHECK(probe_count(&p, &p.started) <= 6,
                 "free did not start the queued reads (%d started)", probe_count(&p, &p.started));

        /* a gate: free while both threads are blocked in a read returns once
         * the reads end, and drops the queued case behind them */
        probe g;
        probe_init(&g);
        g.gate = 1;
        hv_pipe_loader_opts og = {probe_read, &g};
        HV_CHECK_OK(hv_pipe_loader_create(&og, &l));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &a));
        HV_CHECK_OK(hv_pipe_loader_prefetch(l, &b));
        HV_CHECK(wait_started(&g, 2, 5.0) == 2, "a's reads started");
        mtx_lock(&g.mu);
        g.gate = 0;
        cnd_broadcast(&g.cv);
        mtx_unlock(&g.mu);
        hv_pipe_loader_free(l);
        HV_CHECK(probe_count(&g, &g.in_flight) == 0, "no read left running after free");
    }
    return hv_test_done();
}
