/*
 * resume.c: rank 0's part of resuming a run: what earlier attempts left in
 * the journal folder, and the store rebuilt from it.
 *
 * The journal folder holds the per-rank journals (hv_store's journal.c),
 * config.txt (the settings that change results, so that a resume with
 * other settings is refused instead of mixing results) and attempt (the
 * number of the last attempt). Every start replays the journals twice: the
 * first pass picks the record that wins for each case (latest attempt, then
 * file order), the second writes the winners into a new store at
 * <store>.tmp, which is renamed over the store only once complete; a store
 * an earlier attempt left is never trusted (run.c says why). What is still
 * to run is ordered largest estimated cost (CT + mask bytes) first.
 *
 * No MPI here: run.c calls this on rank 0 in phase A and broadcasts the
 * outcome. The small files are read with hv_file_read_all and written with
 * hv_file_write_atomic, durably, under a temporary name of the process's own
 * (the shards of a job array write the same files at once).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_internal.h"

hv_status hv_resume_read_text(const char *path, const char *what, char **text)
{
    struct stat sb;
    *text = NULL;
    if (stat(path, &sb) != 0 && errno == ENOENT) return HV_OK;
    return hv_file_read_all(path, what, 1 << 24, text, NULL);
}

void hv_resume_discard(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l > 4 && !strcmp(e->d_name + l - 4, ".log")) {
                char *p = hv_strfmt("%s/%s", dir, e->d_name);
                if (p) unlink(p);
                free(p);
            }
        }
        closedir(d);
    }
    char p[1200];
    snprintf(p, sizeof p, "%s/attempt", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.txt", dir);
    unlink(p);
}

hv_status hv_resume_attempt(const char *dir, const char *out_dir, const char *results_text,
                            int *attempt)
{
    hv_status st = HV_OK;
    char *have = NULL;
    *attempt = 0;
    /* journal compatibility */
    char *path = hv_strfmt("%s/config.txt", dir);
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_resume_read_text(path, "journal", &have)) != HV_OK) goto done;
    if (have && strcmp(have, results_text)) {
        st = hv_error_set(HV_ERR_ARG,
                          "%s holds the journal of a run with other settings (see %s); "
                          "resume with the same config, or pass --set run.fresh=1 to start over",
                          out_dir, path);
        goto done;
    }
    if (!have && (st = hv_file_write_atomic(path, results_text, strlen(results_text), 1)) != HV_OK)
        goto done;

    /* attempt number */
    free(path);
    free(have);
    have = NULL;
    if (!(path = hv_strfmt("%s/attempt", dir))) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_resume_read_text(path, "journal", &have)) != HV_OK) goto done;
    *attempt = (have ? atoi(have) : 0) + 1;
    char num[32];
    snprintf(num, sizeof num, "%d\n", *attempt);
    st = hv_file_write_atomic(path, num, strlen(num), 1);
done:
    free(path);
    free(have);
    return st;
}

/* ------------------------------------------------------------- case rows */

static void rel_or_full(char *dst, size_t cap, const char *path)
{
    if (!path) {
        dst[0] = 0;
        return;
    }
    size_t n = strlen(path);
    if (n >= cap) path += n - (cap - 1);
    snprintf(dst, cap, "%s", path);
}

static double file_size(const char *p)
{
    struct stat sb;
    return (p && stat(p, &sb) == 0) ? (double)sb.st_size : 0.0;
}

static double case_cost(const hv_case *cs) { return file_size(cs->ct_path) + file_size(cs->mask_path); }

void hv_run_case_row(hv_run_crow *r, const hv_case *cs)
{
    snprintf(r->id, sizeof r->id, "%s", cs->id);
    rel_or_full(r->ct_path, sizeof r->ct_path, cs->ct_path);
    rel_or_full(r->mask_path, sizeof r->mask_path, cs->mask_path);
    r->cost = case_cost(cs);
}

/* ---------------------------------------------------------------- replay */

typedef struct {
    const hv_manifest *man;
    hv_run_crow *rows;       /* per manifest case, from the journals when finished */
    int *state;              /* HV_CASE_* per manifest case                        */
    int *have;               /* per case: 1 once its winner is in the new store    */
    long n_unknown;
} replay_ctx;

typedef struct {
    replay_ctx *rc;
    hv_store *tmpstore;
    long n_put;
} put_ctx;

static long find_case(const hv_manifest *m, const char *id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->cases[mid].id, id);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* First pass: which record wins for each case (latest attempt, then file order). */
static hv_status on_record_pick(void *user, const hv_case_result *r)
{
    replay_ctx *rc = user;
    long ci = find_case(rc->man, r->c.id);
    if (ci < 0) {
        rc->n_unknown++;
        return HV_OK;
    }
    if (rc->state[ci] == HV_CASE_PENDING || r->c.attempt >= rc->rows[ci].attempt) {
        rc->rows[ci] = r->c;
        rc->state[ci] = r->state;
    }
    return HV_OK;
}

/* Second pass: write the winning records into the new store. */
static hv_status on_record_put(void *user, const hv_case_result *r)
{
    put_ctx *pc = user;
    long ci = find_case(pc->rc->man, r->c.id);
    if (ci < 0 || pc->rc->state[ci] != r->state || pc->rc->rows[ci].attempt != r->c.attempt ||
        pc->rc->have[ci])
        return HV_OK;
    if (memcmp(&pc->rc->rows[ci], &r->c, sizeof r->c) != 0) return HV_OK;
    pc->rc->have[ci] = 1;
    pc->n_put++;
    return hv_store_put_case(pc->tmpstore, ci, r);
}

typedef struct {
    long idx;
    double cost;
} order_item;

static int cmp_order(const void *a, const void *b)
{
    const order_item *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

hv_status hv_resume_rebuild(const hv_resume_plan *p, long **order_out, long *n_pending,
                            long *n_resumed)
{
    hv_status st = HV_OK;
    const hv_stage_ctx *sc = p->sc;
    size_t n = p->man->n;
    replay_ctx rc = {p->man, NULL, NULL, NULL, 0};
    hv_store *ts = NULL;
    order_item *ord = NULL;
    long *order = NULL;
    char tmp[1200];
    *order_out = NULL;
    *n_pending = *n_resumed = 0;

    rc.rows = calloc(n ? n : 1, sizeof *rc.rows);
    rc.state = calloc(n ? n : 1, sizeof *rc.state);
    rc.have = calloc(n ? n : 1, sizeof *rc.have);
    if (!rc.rows || !rc.state || !rc.have) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    long nrec = 0, ntorn = 0;
    st = hv_journal_replay(p->journal, sc->n_stages, sc->names, on_record_pick, &rc, &nrec,
                           &ntorn);
    if (st != HV_OK) goto done;
    if (rc.n_unknown)
        hv_log_warn("%ld journal record(s) name cases not in the manifest; ignored", rc.n_unknown);

    /* case rows as they go into the new store */
    hv_run_crow *init = calloc(n ? n : 1, sizeof *init);
    if (!init) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        hv_run_case_row(&init[i], &p->man->cases[i]);
        init[i].rank = -1;
    }
    char started[32];
    hv_utc_now(started);
    hv_store_create_info ci = {(long)n, p->n_img, p->config_text, p->ranks, p->attempt, started,
                               p->input_root, sc->n_stages, sc->names, p->cam,
                               p->synth_crops, p->crop3d};
    snprintf(tmp, sizeof tmp, "%s.tmp", p->store);
    st = hv_store_create(tmp, &ci, init, &ts);
    free(init);
    if (st != HV_OK) goto done;
    put_ctx pc = {&rc, ts, 0};
    long nrec2 = 0, ntorn2 = 0;
    st = hv_journal_replay(p->journal, sc->n_stages, sc->names, on_record_put, &pc, &nrec2,
                           &ntorn2);
    if (st != HV_OK) goto done;
    st = hv_store_close(ts);
    ts = NULL;
    if (st != HV_OK) goto done;
    if (rename(tmp, p->store) != 0) {
        st = hv_error_set(HV_ERR_IO, "cannot rename %s to %s: %s", tmp, p->store, strerror(errno));
        goto done;
    }
    hv_run_crashpoint("after-create");

    /* pending cases, largest first */
    ord = malloc((n ? n : 1) * sizeof *ord);
    order = malloc((n ? n : 1) * sizeof *order);
    if (!ord || !order) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->shard_count > 1 && (long)(i % (size_t)p->shard_count) != p->shard_index) continue;
        int finished = rc.state[i] == HV_CASE_DONE ||
                       (rc.state[i] == HV_CASE_FAILED && !p->retry_failed);
        if (finished) {
            (*n_resumed)++;
            continue;
        }
        ord[np].idx = (long)i;
        ord[np].cost = p->order_largest ? case_cost(&p->man->cases[i]) : 0.0;
        np++;
    }
    qsort(ord, np, sizeof *ord, cmp_order);
    for (size_t i = 0; i < np; i++) order[i] = ord[i].idx;
    *n_pending = (long)np;
    if (p->attempt > 1 || nrec)
        hv_log_info("attempt %d: %ld journal record(s) replayed (%ld torn record(s) cut off); "
                    "%ld case(s) already finished, %ld to run",
                    p->attempt, nrec, ntorn, *n_resumed, *n_pending);
    *order_out = order;
    order = NULL;
done:
    if (ts) hv_store_close(ts);
    free(rc.rows);
    free(rc.state);
    free(rc.have);
    free(ord);
    free(order);
    return st;
}

/* ---------------------------------------------------- images, at the end */

typedef struct {
    hv_store *s;
    const hv_run_crow *rows; /* the store's case rows, sorted by id */
    const uint8_t *stt;
    uint8_t *have;
    size_t n;
    int attempt;
    long n_put;
} images_ctx;

static long find_row(const hv_run_crow *rows, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rows[mid].id, id);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static hv_status on_record_images(void *user, const hv_case_result *r)
{
    images_ctx *ic = user;
    if (r->state != HV_CASE_DONE || r->c.attempt != ic->attempt) return HV_OK;
    long ci = find_row(ic->rows, ic->n, r->c.id);
    /* only the record the store's row came from: same attempt and rank,
     * done (another shard's cases are pending in this shard's store) */
    if (ci < 0 || ic->have[ci] || ic->stt[ci] != HV_CASE_DONE ||
        ic->rows[ci].attempt != r->c.attempt || ic->rows[ci].rank != r->c.rank ||
        ic->rows[ci].n_vert != r->c.n_vert)
        return HV_OK;
    ic->have[ci] = 1;
    ic->n_put++;
    return hv_store_put_images(ic->s, ci, r);
}

hv_status hv_resume_images(const char *journal, const hv_stage_ctx *sc, hv_store *s, int attempt,
                           long *n_cases)
{
    *n_cases = 0;
    int any_vol = 0;
    for (int w = 0; w < HV_STORE_N_VOL; w++) any_vol |= hv_store_has_vol(s, w);
    if (hv_store_n_img(s) <= 0 && !any_vol) return HV_OK;
    size_t n = (size_t)hv_store_n_cases(s);
    hv_status st = HV_OK;
    images_ctx ic = {s, NULL, NULL, NULL, n, attempt, 0};
    hv_run_crow *rows = malloc((n ? n : 1) * sizeof *rows);
    uint8_t *stt = malloc(n ? n : 1);
    ic.have = calloc(n ? n : 1, 1);
    if (!rows || !stt || !ic.have) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, rows, stt)) != HV_OK) goto done;
    ic.rows = rows;
    ic.stt = stt;
    long nrec = 0, ntorn = 0;
    st = hv_journal_replay(journal, sc->n_stages, sc->names, on_record_images, &ic, &nrec, &ntorn);
    *n_cases = ic.n_put;
done:
    free(rows);
    free(stt);
    free(ic.have);
    return st;
}
