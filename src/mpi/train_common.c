/*
 * train_common.c: the pieces that `healthivert train` (train_run.c) and
 * `healthivert train-classifier` (cls_train_run.c) share on MPI ranks:
 * status agreement before collectives, the summing reducer, the
 * sleep-waiting barrier, durations for progress lines, the checkpoint's
 * compatibility check (format, version, the results-changing config text,
 * the step), the per-step CSV that a resume cuts back to its checkpoint,
 * and the start of both runs: the option checks and the output folder
 * (lock, fresh, checkpoint found). One copy, so both trainings resume and
 * refuse alike (run_internal.h); what differs (the training file's plan, the
 * model, the checkpoint's own extra check) stays in the two runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "run_internal.h"

/* Sleep-waiting barrier: ranks that wait (validation, checkpoints on rank 0)
 * leave the cores to the rank that works (Open MPI busy-polls otherwise). */
void hv__train_wait_all(MPI_Comm comm)
{
    MPI_Request rq;
    MPI_Ibarrier(comm, &rq);
    int done = 0;
    struct timespec ts = {0, 2 * 1000 * 1000};
    for (;;) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done) break;
        nanosleep(&ts, NULL);
    }
}

/* Every rank's status into one: HV_OK when all are; otherwise the first
 * failing rank's status and message on every rank. */
hv_status hv__train_agree(MPI_Comm comm, int rank, int nranks, hv_status st)
{
    int mine = st != HV_OK ? rank : nranks, first = nranks;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == nranks) return HV_OK;
    int s = (int)st;
    char msg[2048] = "";
    if (rank == first) snprintf(msg, sizeof msg, "%s", hv_error_detail());
    MPI_Bcast(&s, 1, MPI_INT, first, comm);
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, comm);
    if (rank != first) hv_error_set((hv_status)s, "%s", msg);
    return (hv_status)s;
}

/* The model's reducer: sum n floats in place over the ranks. */
int hv__train_mpi_sum(void *ctx, float *buf, size_t n)
{
    MPI_Comm comm = *(MPI_Comm *)ctx;
    while (n > 0) {
        int c = n > (size_t)(1 << 28) ? (1 << 28) : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, buf, c, MPI_FLOAT, MPI_SUM, comm) != MPI_SUCCESS) return 1;
        buf += c;
        n -= (size_t)c;
    }
    return 0;
}

void hv__train_fmt_dur(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, cap, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(b, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(b, cap, "%lds", t);
}

/* "key=value" lines of the results-changing keys that differ between a
 * (the checkpoint's) and b (this config), into a message. */
static char *diff_keys(const char *a, const char *b)
{
    hv_sbuf s = {0};
    for (int pass = 0; pass < 2; pass++) {
        const char *x = pass ? b : a, *y = pass ? a : b;
        for (const char *l = x; *l;) {
            const char *e = strchr(l, '\n');
            size_t n = e ? (size_t)(e - l) : strlen(l);
            const char *eq = memchr(l, '=', n);
            if (eq) {
                size_t kn = (size_t)(eq - l) + 1;
                /* same key=value present in y? */
                int same = 0, found = 0;
                for (const char *m = y; *m;) {
                    const char *f = strchr(m, '\n');
                    size_t mn = f ? (size_t)(f - m) : strlen(m);
                    if (mn >= kn && !memcmp(m, l, kn)) {
                        found = 1;
                        same = mn == n && !memcmp(m, l, n);
                        if (!pass && !same)
                            hv_sbuf_printf(&s, "%s%.*s (checkpoint) vs %.*s (now)", s.len ? ", " : "",
                                           (int)n, l, (int)(mn - kn), m + kn);
                        break;
                    }
                    m = f ? f + 1 : m + mn;
                }
                if (!found)
                    hv_sbuf_printf(&s, "%s%.*s only %s", s.len ? ", " : "", (int)n, l,
                                   pass ? "now" : "in the checkpoint");
            }
            l = e ? e + 1 : l + n;
        }
    }
    return hv_sbuf_take(&s);
}

hv_status hv__train_meta_get(const char *path, const char *key, char *buf, size_t cap)
{
    hv_status st = hv_nn_checkpoint_meta(path, key, buf, cap);
    if (st != HV_OK) hv_error_wrap(st, "checkpoint %s: metadata '%s'", path, key);
    return st;
}

hv_status hv__train_csv_keep(const char *path, const char *header, int64_t max, hv_sbuf *out)
{
    struct stat sb;
    hv_sbuf_printf(out, "%s\n", header);
    if (stat(path, &sb) != 0) return HV_OK;
    char *text = NULL;
    hv_status st = hv_file_read_all(path, "table", 256u << 20, &text, NULL);
    if (st != HV_OK) return st;
    int line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (line++ == 0) continue;
        char *end;
        long long s = strtoll(l, &end, 10);
        if (end == l || *end != ',') continue; /* a torn line: dropped */
        if (s <= max) hv_sbuf_printf(out, "%s\n", l);
    }
    free(text);
    return out->oom ? hv_error_set(HV_ERR_NOMEM, "table: out of memory") : HV_OK;
}

hv_status hv__train_text_write(const char *path, const hv_sbuf *b)
{
    if (b->oom) return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
    return hv_file_write_atomic(path, b->s ? b->s : "", b->len, 0);
}


hv_status hv__train_ckpt_check(const char *path, const char *format, const char *version,
                               const char *section,
                               hv_status (*extra)(const char *path, void *ctx), void *ctx,
                               const char *results_text, int *resume, long long *step)
{
    *resume = 0;
    *step = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return HV_OK;
        return hv_error_set(HV_ERR_IO, "checkpoint %s: %s", path, strerror(errno));
    }
    char fmt[128], ver[32], stp[64];
    size_t cap = strlen(results_text) + 65536;
    char *have = malloc(cap);
    hv_status st = have ? HV_OK : hv_error_set(HV_ERR_NOMEM, "out of memory");
    if (st == HV_OK && (st = hv__train_meta_get(path, "format", fmt, sizeof fmt)) == HV_OK &&
        strcmp(fmt, format))
        st = hv_error_set(HV_ERR_FORMAT, "checkpoint %s: format '%s', expected '%s'", path, fmt,
                          format);
    if (st == HV_OK && (st = hv__train_meta_get(path, "version", ver, sizeof ver)) == HV_OK &&
        strcmp(ver, version))
        st = hv_error_set(HV_ERR_FORMAT, "checkpoint %s: version %s, this build reads %s", path,
                          ver, version);
    if (st == HV_OK && extra) st = extra(path, ctx);
    if (st == HV_OK && (st = hv__train_meta_get(path, "results_config", have, cap)) == HV_OK &&
        strcmp(have, results_text)) {
        char *d = diff_keys(have, results_text);
        st = hv_error_set(HV_ERR_ARG,
                          "checkpoint %s was trained with another config (%s): re-run with the "
                          "same values, use another %s.output, or %s.fresh = 1 to start over",
                          path, d ? d : "out of memory", section, section);
        free(d);
    }
    if (st == HV_OK && (st = hv__train_meta_get(path, "step", stp, sizeof stp)) == HV_OK) {
        char *end;
        *step = strtoll(stp, &end, 10);
        if (*end || *step < 0)
            st = hv_error_set(HV_ERR_FORMAT, "checkpoint %s: step '%s' is not a step", path, stp);
    }
    free(have);
    if (st == HV_OK) *resume = 1;
    return st;
}

void hv__train_write_why(const char *dir, char *why, size_t cap)
{
    /* HDF5's messages do not carry errno: say what the usual causes look
     * like here (space left, a file size limit) */
    why[0] = 0;
    struct statvfs vs;
    if (statvfs(dir, &vs) == 0)
        snprintf(why, cap, "; %.0f KiB free on the file system of %s",
                 (double)vs.f_bavail * (double)vs.f_frsize / 1024.0, dir);
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t l = strlen(why);
        snprintf(why + l, cap - l, "; file size limit (RLIMIT_FSIZE) %.0f KiB",
                 (double)rl.rlim_cur / 1024.0);
    }
}

int hv__train_params_finite(hv_nn_params *ps, const char *net, char *bad, size_t cap)
{
    /* through copies: the set may live on a device backend */
    int ok = 1;
    float *d = NULL;
    size_t have = 0;
    for (size_t i = 0; i < hv_nn_params_size(ps) && ok; i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        size_t n = (size_t)hv_nn_param_numel(p);
        if (n > have) {
            float *t = realloc(d, n * sizeof(float));
            if (!t) {
                snprintf(bad, cap, "%s%s%s: out of memory reading it", net ? net : "",
                         net ? " " : "", hv_nn_param_name(p));
                ok = 0;
                break;
            }
            d = t;
            have = n;
        }
        if (hv_nn_param_get(p, d, n) != HV_OK) {
            snprintf(bad, cap, "%s%s%s: cannot be read (%s)", net ? net : "", net ? " " : "",
                     hv_nn_param_name(p), hv_error_detail());
            ok = 0;
            break;
        }
        for (size_t k = 0; k < n; k++)
            if (!isfinite(d[k])) {
                snprintf(bad, cap, "%s%s%s[%lld] = %g", net ? net : "", net ? " " : "",
                         hv_nn_param_name(p), (long long)k, (double)d[k]);
                ok = 0;
                break;
            }
    }
    free(d);
    return ok;
}

hv_status hv__train_opts_check(const char *section, const char *file, const char *output,
                               int batch, int nranks, int threads)
{
    if (!file[0])
        return hv_error_set(HV_ERR_ARG, "%s.file is not set (the training file that `healthivert "
                            "prepare` writes)", section);
    if (!output[0]) return hv_error_set(HV_ERR_ARG, "%s.output is empty", section);
    if (batch < nranks)
        return hv_error_set(HV_ERR_ARG, "%s.batch = %d is smaller than the number of ranks (%d): "
                            "every rank needs at least one item of each global batch",
                            section, batch, nranks);
    if (threads > 0) omp_set_num_threads(threads);
    return HV_OK;
}

void hv__train_ranks(MPI_Comm comm, int *rank, int *nranks)
{
    MPI_Comm_rank(comm, rank);
    MPI_Comm_size(comm, nranks);
    if (*nranks > 1) hv_log_set_rank(*rank);
}

hv_status hv__train_begin(const char *section, const char *file, const char *output, int batch,
                          int threads, int device, MPI_Comm comm, int nranks,
                          hv_mpi_compute *comp, hv__train_dir *dir)
{
    hv_status st = hv__train_opts_check(section, file, output, batch, nranks, threads);
    if (st == HV_OK) st = hv_mpi_compute_open(device, comm, comp);
    if (st == HV_OK) hv__train_dir_init(dir, output);
    return st;
}

void hv__train_dir_init(hv__train_dir *d, const char *output)
{
    memset(d, 0, sizeof *d);
    snprintf(d->ckpt, sizeof d->ckpt, "%s/checkpoint.h5", output);
    snprintf(d->lock, sizeof d->lock, "%s/train.lock", output);
    snprintf(d->losses, sizeof d->losses, "%s/losses.csv", output);
}

hv_status hv__train_dir_prepare(hv__train_dir *d, const hv_run_config *cfg, MPI_Comm comm,
                                int rank, int nranks, const char *section, const char *output,
                                int fresh, const char *format, const char *version,
                                hv_status (*extra)(const char *path, void *ctx), void *ctx)
{
    hv_status st = HV_OK;
    d->cfgtext = hv_run_config_text(cfg);
    d->results = hv_run_config_results_text(cfg);
    if (!d->cfgtext || !d->results) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
    if (rank == 0 && st == HV_OK) {
        st = hv_mkdir_p(output);
        if (st == HV_OK) st = hv_store_lock_take(d->lock, &d->locked);
        if (st == HV_OK && fresh) {
            hv_log_info("%s.fresh = 1: discarding an earlier checkpoint, val.csv and losses.csv",
                        section);
            unlink(d->ckpt);
            unlink(d->losses);
            char *v = hv_strfmt("%s/val.csv", output);
            if (v) unlink(v);
            free(v);
        }
        if (st == HV_OK)
            st = hv__train_ckpt_check(d->ckpt, format, version, section, extra, ctx, d->results,
                                      &d->resume, &d->step);
    }
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) return st;
    long long b[2] = {d->resume, d->step};
    MPI_Bcast(b, 2, MPI_LONG_LONG, 0, comm);
    d->resume = (int)b[0];
    d->step = b[1];
    return HV_OK;
}

hv_status hv__train_past_end(const hv__train_dir *d, const char *section, const char *steps_key,
                             int64_t total_steps)
{
    if (!d->resume || d->step <= total_steps) return HV_OK;
    return hv_error_set(HV_ERR_ARG, "%s is at step %lld, past the %lld step(s) now planned "
                        "(lowered since?): set %s.%s = %lld to finish with those weights, a "
                        "larger value to go on, or %s.fresh = 1 to start again",
                        d->ckpt, (long long)d->step, (long long)total_steps, section, steps_key,
                        (long long)d->step, section);
}

void hv__train_dir_release(hv__train_dir *d)
{
    if (d->locked) hv_store_lock_release(d->lock);
    d->locked = 0;
    free(d->cfgtext);
    free(d->results);
    d->cfgtext = d->results = NULL;
}

/* ------------------------------------------------------------ item cache */

void hv__train_cache_begin(hv_model_trainset *ts, const char *section, int mb, size_t n_train,
                           size_t n_val, int rank)
{
    const size_t budget = (size_t)mb << 20, item = hv_model_trainset_item_bytes(ts);
    hv_model_trainset_set_budget(ts, budget);
    if (rank != 0) return;
    const size_t n = n_train + n_val, fit = budget && item ? budget / item : n;
    const double item_mib = (double)item / 1048576.0;
    char b[64];
    if (mb) snprintf(b, sizeof b, "%d MiB", mb);
    else snprintf(b, sizeof b, "no limit");
    if (fit >= n)
        hv_log_info("item cache: %zu items of %.1f MiB (%zu train, %zu val), %.1f MiB in all; "
                    "%s.item_cache_mb %s per rank: all fit, each is read once",
                    n, item_mib, n_train, n_val, (double)n * item_mib, section, b);
    else
        hv_log_info("item cache: %zu items of %.1f MiB (%zu train, %zu val), %.1f MiB in all; "
                    "%s.item_cache_mb %s per rank: %zu fit, the least recently used are read "
                    "again (a step's own items are always kept)",
                    n, item_mib, n_train, n_val, (double)n * item_mib, section, b, fit);
}

void hv__train_cache_end(const hv_model_trainset *ts)
{
    hv_model_trainset_cache_stats cs;
    hv_model_trainset_cache_get(ts, &cs);
    hv_log_info("item cache: %llu reads, %llu evictions, peak %.1f MiB resident, %.2f s "
                "reading", (unsigned long long)cs.loads, (unsigned long long)cs.evictions,
                (double)cs.peak / 1048576.0, cs.read_s);
}
