/*
 * run.c: the MPI batch run: its three phases, the broadcasts between them
 * and the work loop. What needs no MPI lives elsewhere: the output folder
 * lock in hv_store (lock.c), the journal replay and the store rebuild of a
 * resume in resume.c, the stages in stage.c, the queue in queue.c, grading
 * and the output folder in gather.c.
 *
 * Phases (every rank calls hv_run_execute):
 *  A. rank 0 alone: take the output folder lock, generate the phantom
 *     cohort when input.source = phantom (skipped when the cohort on disk
 *     was made with the same options), scan the dataset into the manifest
 *     (or read the manifest CSV of input.source = manifest, refused as a
 *     whole when any row is bad; its grades become manifest_split.json),
 *     replay the journals of earlier attempts (torn tails cut off), and
 *     rebuild the store from them into <store>.tmp, which is renamed over
 *     the store only once complete (resume.c). The other ranks wait
 *     without spinning. The manifest and the order of the pending cases
 *     (largest estimated cost first) are then broadcast.
 *  B. all ranks: open the store through MPI-IO, take positions from the RMA
 *     counter (queue.c), run the stages (stage.c), append the result to the
 *     rank's journal (fsync), write it into the store (status last). A stop
 *     request (signal) raises the queue's stop mark: every rank finishes the
 *     case in hand and stops taking new ones. Collective close.
 *  C. rank 0 alone, when every case is finished: grade (gather.c), mark the
 *     store complete, export the CSV tables and write summary.md.
 *
 * Why rebuild the store on every start instead of trusting it: a process
 * killed while it has an HDF5 file open for writing may leave it damaged;
 * journals are append-only, checksummed and fsync'd, so they survive any
 * kill, and replaying them is cheap next to computing a case. Results are
 * computed per case from its own inputs and graded in split/case order, so
 * they are bitwise identical for any number of ranks and any resume history.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv/model.h"
#include "hv/phantom.h"
#include "run_internal.h"

static volatile sig_atomic_t stop_flag = 0;

void hv_run_request_stop(void) { stop_flag = 1; }
int hv_run_stop_requested(void) { return stop_flag != 0; }

void hv_run_crashpoint(const char *point)
{
    static int counts[16];
    static const char *names[16];
    const char *want = getenv("HV_CRASH_AT");
    if (!want || !*want) return;
    size_t lp = strlen(point);
    if (strncmp(want, point, lp) != 0 || (want[lp] != 0 && want[lp] != ':')) return;
    long nth = want[lp] == ':' ? strtol(want + lp + 1, NULL, 10) : 1;
    int slot = 0;
    while (slot < 15 && names[slot] && strcmp(names[slot], point)) slot++;
    names[slot] = point;
    if (++counts[slot] == nth) {
        hv_log_warn("crash point '%s' reached: sending SIGKILL to myself (test hook)", point);
        raise(SIGKILL);
    }
}

/* Test hook: HV_TEST_CASE_DELAY_MS=n sleeps n ms after every case, widening
 * the window in which tests deliver signals (tests/mpi). */
static void test_case_delay(void)
{
    const char *d = getenv("HV_TEST_CASE_DELAY_MS");
    long ms = d ? strtol(d, NULL, 10) : 0;
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* This process's resident memory (VmRSS of /proc/self/status) in kB, -1
 * where there is no such file: logged with every case, so a long run shows
 * whether a rank's memory grows (the soak test reads it). */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) of this process so far, all its threads: a
 * case's share of it does not depend on what else runs on the machine, so
 * the soak test judges steadiness by it. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* Barrier that sleeps instead of spinning, so ranks that wait do not steal
 * the cores of the rank still working (Open MPI busy-polls by default). */
static void lazy_barrier(MPI_Comm comm)
{
    MPI_Request rq;
    MPI_Ibarrier(comm, &rq);
    int done = 0;
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (;;) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done) break;
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------ parameters */

/* The typed parameters of the key table (config.c) plus what follows from
 * them. */
typedef struct {
    hv_run_params k;
    int phantom;
    hv_phantom_opts popts;
    hv_measure_opts mopts;
    const char *synth;                /* synthesis.method (a registered name) */
    int pictures;                     /* hv_pipe_pictures from output.images */
    int n_img;
    char store[1024];
    char journal[1100];
    char lock[1100];
    int order_largest;
    char train[1024];                 /* prepare.output or <out_dir>/train.h5 */
} run_params;

static hv_status read_params(const hv_run_config *c, run_params *p)
{
    hv_status st;
    memset(p, 0, sizeof *p);
    if ((st = hv_run_config_params(c, &p->k)) != HV_OK) return st;
    const hv_run_params *k = &p->k;
    p->phantom = k->source == 0;

    hv_phantom_opts_default(&p->popts);
    p->popts.seed = (uint64_t)k->pseed;
    p->popts.first_label = k->first_label;
    p->popts.last_label = k->last_label;
    memcpy(p->popts.spacing, k->spacing, sizeof k->spacing);
    p->popts.orientation = (hv_phantom_orient)k->orientation;
    p->popts.fracture_rate = k->fracture_rate;
    p->popts.scoliosis_rate = k->scoliosis_rate;
    p->popts.noise_hu = k->noise_hu;

    hv_measure_opts_default(&p->mopts);
    p->mopts.min_volume_ml = k->min_volume_ml;
    p->mopts.n_lateral_rays = k->lateral_rays;
    p->mopts.lateral_frac = k->lateral_frac;
    p->mopts.map_step_mm = k->map_step_mm;
    p->mopts.deform_thresh = k->deform_thresh;
    p->mopts.max_ref_distance = k->max_ref_distance;
    p->synth = hv_run_config_get(c, "synthesis", "method");
    p->pictures = k->images; /* none, qc, full: the order of hv_pipe_pictures */

    static const int n_img[] = {0, 1, HV_IMG_COUNT}; /* none, qc, full */
    p->n_img = n_img[k->images];
    p->order_largest = k->order == 0;
    /* out_dir is < 900 characters (its field), so these fit */
    if (k->store[0]) snprintf(p->store, sizeof p->store, "%s", k->store);
    else if (k->shard_count > 1)
        snprintf(p->store, sizeof p->store, "%s/store-shard-%04d.h5", k->out_dir, k->shard_index);
    else snprintf(p->store, sizeof p->store, "%s/store.h5", k->out_dir);
    snprintf(p->journal, sizeof p->journal, "%s/journal", k->out_dir);
    if (k->shard_count > 1)
        snprintf(p->lock, sizeof p->lock, "%s/run-shard-%04d.lock", k->out_dir, k->shard_index);
    else snprintf(p->lock, sizeof p->lock, "%s/run.lock", k->out_dir);
    if (k->prepare_output[0]) snprintf(p->train, sizeof p->train, "%s", k->prepare_output);
    else snprintf(p->train, sizeof p->train, "%s/train.h5", k->out_dir);
    return HV_OK;
}

/* ---------------------------------------------------------- phase A (rank 0) */

static void progress_cb(void *user, long done, long total)
{
    (void)user;
    if (done == total || done % 10 == 0) hv_log_info("phantom cohort: %ld/%ld cases written", done, total);
}

/* Result of phase A, broadcast to every rank. */
typedef struct {
    int attempt;
    long n_cases, n_pending, n_resumed;
    char root[960];
    char split[1024];
} phase_a;

static hv_status phase_a_run(const hv_run_config *cfg, const run_params *p,
                             const hv_stage_ctx *sc, int nranks, phase_a *pa,
                             hv_manifest **man_out, long **order_out, int *locked)
{
    hv_status st = HV_OK;
    char *want = NULL, *have = NULL, *cfgtext = NULL, *path = NULL, *ptext = NULL;
    hv_manifest *man = NULL;
    hv_split *split = NULL, *msplit = NULL;
    memset(pa, 0, sizeof *pa);
    hv_nifti_opts nopts = {0};

    /* Every input is checked before anything is written: a bad config
     * creates no folder, lock, journal or store. */
    if (p->k.source == 2) {
        /* every row checked; any problem refuses the whole manifest */
        snprintf(pa->root, sizeof pa->root, "%s", p->k.manifest);
        st = hv_io_manifest_read(pa->root, p->k.check_headers ? &nopts : NULL, &man, &msplit);
        if (st != HV_OK) {
            hv_error_wrap(st, "input.manifest");
            goto done;
        }
        if (msplit && p->k.split[0]) {
            st = hv_error_set(HV_ERR_ARG,
                              "input.manifest %s has grades and input.split is set too: give the "
                              "known grades in one place",
                              pa->root);
            goto done;
        }
    }
    if (p->k.source == 1) {
        snprintf(pa->root, sizeof pa->root, "%s", p->k.dataset);
        struct stat sb;
        if (stat(pa->root, &sb) != 0) {
            st = hv_error_set(HV_ERR_NOT_FOUND, "input.dataset: %s: %s", pa->root, strerror(errno));
            goto done;
        }
        if (!S_ISDIR(sb.st_mode)) {
            st = hv_error_set(HV_ERR_ARG, "input.dataset: %s: not a directory", pa->root);
            goto done;
        }
        st = hv_io_dataset_scan(pa->root, p->k.check_headers ? &nopts : NULL, &man);
        if (st != HV_OK) {
            hv_error_wrap(st, "input.dataset: scanning %s", pa->root);
            goto done;
        }
    }
    if (p->k.split[0]) {
        snprintf(pa->split, sizeof pa->split, "%s", p->k.split);
        if ((st = hv_io_split_read(pa->split, &split)) != HV_OK) {
            hv_error_wrap(st, "input.split");
            goto done;
        }
        hv_io_split_free(split);
        split = NULL;
    }

    if ((st = hv_mkdir_p(p->k.out_dir)) != HV_OK) goto done;
    if ((st = hv_store_lock_take(p->lock, locked)) != HV_OK) goto done;
    if (p->k.fresh) {
        hv_log_info("run.fresh = 1: discarding earlier journals and store");
        hv_resume_discard(p->journal);
        unlink(p->store);
    }
    if ((st = hv_mkdir_p(p->journal)) != HV_OK) goto done;
    /* journal compatibility first: a resume with other settings is refused
     * before the cohort or the manifest's split is (re)written, so the
     * earlier run's files stay as they were (tests/mpi/test_faults.sh) */
    want = hv_run_config_results_text(cfg);
    cfgtext = hv_run_config_text(cfg);
    if (!want || !cfgtext) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the gan's weights are part of the results, not only its path: a model
     * file replaced between a stop and a resume (same path, other bytes)
     * must refuse the resume like any other changed setting, or one store
     * would mix two models' numbers. The provenance line names each file
     * with its size and CRC-32. */
    if (sc->synth_provenance) {
        char *w2 = hv_strfmt("%ssynthesis.model_files=%s\n", want, sc->synth_provenance);
        if (!w2) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        free(want);
        want = w2;
    }
    /* the classifier's weights likewise (its maps are the gan's input and
     * the store's attention columns) */
    if (sc->attn_provenance) {
        char *w2 = hv_strfmt("%sattention.model_file=%s\n", want, sc->attn_provenance);
        if (!w2) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        free(want);
        want = w2;
    }
    if ((st = hv_resume_attempt(p->journal, p->k.out_dir, want, &pa->attempt)) != HV_OK) goto done;
    if (p->k.prepare_enabled) {
        hv_prepare_ctx pc;
        memset(&pc, 0, sizeof pc);
        snprintf(pc.parts, sizeof pc.parts, "%s/prepare", p->k.out_dir);
        if ((st = hv_mkdir_p(pc.parts)) != HV_OK) goto done;
        hv_prepare_clean(&pc, p->train);
    }
    /* the manifest's grades, as a split file every rank reads like input.split */
    if (msplit) {
        snprintf(pa->split, sizeof pa->split, "%s/manifest_split.json", p->k.out_dir);
        if ((st = hv_io_split_write(pa->split, msplit)) != HV_OK) {
            hv_error_wrap(st, "input.manifest: writing its grades");
            goto done;
        }
    }

    /* the cohort */
    if (p->phantom) {
        snprintf(pa->root, sizeof pa->root, "%s/cohort", p->k.out_dir);
        path = hv_strfmt("%s/.complete", pa->root);
        ptext = hv_run_config_section_text(cfg, "phantom");
        if (!ptext || !path) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = hv_resume_read_text(path, "phantom cohort", &have)) != HV_OK) goto done;
        if ((!have || strcmp(have, ptext)) && p->k.shard_count > 1) {
            st = hv_error_set(HV_ERR_ARG,
                              "a sharded run does not generate the phantom cohort (shards run "
                              "at once): run the same config unsharded with phantom.cases first, "
                              "or use input.source = dataset");
            goto done;
        }
        if (!have || strcmp(have, ptext)) {
            hv_log_info("generating a phantom cohort of %d cases into %s", p->k.pcases, pa->root);
            unlink(path);
            st = hv_phantom_cohort_write(&p->popts, pa->root, p->k.pcases, progress_cb, NULL);
            if (st == HV_OK) st = hv_file_write_atomic(path, ptext, strlen(ptext), 1);
        } else {
            hv_log_info("phantom cohort in %s is up to date", pa->root);
        }
        free(have);
        have = NULL;
        if (st != HV_OK) {
            hv_error_wrap(st, "phantom cohort");
            goto done;
        }
        if (!p->k.split[0]) {
            struct stat sb;
            snprintf(pa->split, sizeof pa->split, "%s/split.json", pa->root);
            /* the cohort's own split, checked before the store is made */
            if (stat(pa->split, &sb) == 0 && (st = hv_io_split_read(pa->split, &split)) != HV_OK) {
                hv_error_wrap(st, "phantom cohort split");
                goto done;
            }
            hv_io_split_free(split);
            split = NULL;
        }
        st = hv_io_dataset_scan(pa->root, p->k.check_headers ? &nopts : NULL, &man);
        if (st != HV_OK) {
            hv_error_wrap(st, "scanning %s", pa->root);
            goto done;
        }
    }

    /* what earlier attempts left: the journals, replayed into a new store */
    pa->n_cases = (long)man->n;
    hv_resume_plan rp = {man, p->journal, p->store, sc, cfgtext, pa->root, p->n_img, nranks,
                         pa->attempt, p->k.shard_index, p->k.shard_count, p->k.retry_failed,
                         p->order_largest, sc->attn_store == 2, sc->synth_crops, sc->crop3d};
    if ((st = hv_resume_rebuild(&rp, order_out, &pa->n_pending, &pa->n_resumed)) != HV_OK)
        goto done;
    *man_out = man;
    man = NULL;
done:
    hv_io_manifest_free(man);
    free(want);
    free(have);
    free(cfgtext);
    free(path);
    free(ptext);
    hv_io_split_free(split);
    hv_io_split_free(msplit);
    return st;
}

/* ----------------------------------------------------- manifest broadcast */

static void pack_str(char **buf, size_t *len, size_t *cap, const char *s, int *oom)
{
    size_t n = (s ? strlen(s) : 0) + 2; /* presence byte + NUL */
    if (*len + n > *cap) {
        size_t nc = (*cap ? *cap * 2 : 65536) + n;
        char *nb = realloc(*buf, nc);
        if (!nb) {
            *oom = 1;
            return;
        }
        *buf = nb;
        *cap = nc;
    }
    (*buf)[(*len)++] = s ? 1 : 0;
    if (s) memcpy(*buf + *len, s, n - 2);
    *len += n - 2;
    (*buf)[(*len)++] = 0;
}

static char *unpack_str(const char **p)
{
    int present = **p;
    (*p)++;
    size_t n = strlen(*p);
    char *s = present ? hv_strdup(*p) : NULL;
    *p += n + 1;
    return s;
}

static hv_status bcast_manifest(MPI_Comm comm, int rank, hv_manifest **man)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int oom = 0;
    long long blen = 0;
    if (rank == 0) {
        for (size_t i = 0; i < (*man)->n; i++) {
            const hv_case *c = &(*man)->cases[i];
            char stt[16];
            snprintf(stt, sizeof stt, "%d", (int)c->status);
            pack_str(&buf, &len, &cap, c->id, &oom);
            pack_str(&buf, &len, &cap, c->ct_path, &oom);
            pack_str(&buf, &len, &cap, c->mask_path, &oom);
            pack_str(&buf, &len, &cap, c->centroid_path, &oom);
            pack_str(&buf, &len, &cap, stt, &oom);
            pack_str(&buf, &len, &cap, c->problem, &oom);
        }
        blen = oom ? -1 : (long long)len;
    }
    MPI_Bcast(&blen, 1, MPI_LONG_LONG, 0, comm);
    if (blen < 0) {
        free(buf);
        return hv_error_set(HV_ERR_NOMEM, "manifest broadcast: out of memory");
    }
    long long ncases = rank == 0 ? (long long)(*man)->n : 0;
    MPI_Bcast(&ncases, 1, MPI_LONG_LONG, 0, comm);
    if (rank != 0) {
        buf = malloc((size_t)blen + 1);
        if (!buf) return hv_error_set(HV_ERR_NOMEM, "manifest broadcast: out of memory");
    }
    /* in pieces: MPI counts are int */
    for (long long off = 0; off < blen; off += 1 << 30) {
        int cnt = (int)((blen - off) < (1 << 30) ? (blen - off) : (1 << 30));
        MPI_Bcast(buf + off, cnt, MPI_CHAR, 0, comm);
    }
    if (rank == 0) {
        free(buf);
        return HV_OK;
    }
    hv_manifest *m = calloc(1, sizeof *m);
    if (!m || !(m->cases = calloc((size_t)ncases + 1, sizeof *m->cases))) {
        free(m);
        free(buf);
        return hv_error_set(HV_ERR_NOMEM, "manifest broadcast: out of memory");
    }
    m->n = (size_t)ncases;
    const char *q = buf;
    for (size_t i = 0; i < m->n; i++) {
        hv_case *c = &m->cases[i];
        c->id = unpack_str(&q);
        c->ct_path = unpack_str(&q);
        c->mask_path = unpack_str(&q);
        c->centroid_path = unpack_str(&q);
        char *stt = unpack_str(&q);
        c->status = stt ? (hv_status)atoi(stt) : HV_OK;
        free(stt);
        c->problem = unpack_str(&q);
        if (c->status != HV_OK) m->n_bad++;
    }
    free(buf);
    *man = m;
    return HV_OK;
}

/* Broadcast rank 0's status and error text, so that every rank fails alike. */
static hv_status bcast_status(MPI_Comm comm, int rank, hv_status st)
{
    int s = (int)st;
    MPI_Bcast(&s, 1, MPI_INT, 0, comm);
    if (s == HV_OK) return HV_OK;
    char msg[1024] = "";
    if (rank == 0) snprintf(msg, sizeof msg, "%s", hv_error_detail());
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm);
    if (rank != 0) hv_error_set((hv_status)s, "%s", msg);
    return (hv_status)s;
}

static void fmt_dur(char *b, size_t cap, double s)
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

/* ---------------------------------------------------------------- execute */

hv_status hv_run_execute(const hv_run_config *cfg, MPI_Comm comm, hv_run_summary *out)
{
    return hv_run_execute_with(cfg, comm, hv_pipe_default(), out);
}

hv_status hv_run_execute_with(const hv_run_config *cfg, MPI_Comm comm, const hv_pipe_table *table,
                              hv_run_summary *out)
{
    int rank = 0, nranks = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    memset(out, 0, sizeof *out);
    if (nranks > 1) hv_log_set_rank(rank);
    double t_start = hv_time_now();

    run_params p;
    hv_status st = read_params(cfg, &p);
    if (st != HV_OK) return st; /* same config everywhere: every rank fails alike */
    /* the plan: which stages run, and the names of their seconds (the split
     * is read later, by every rank) */
    hv_stage_ctx sctx;
    hv_pipe_stage prep_rows[HV_PIPE_MAX_STAGES];
    hv_pipe_table prep_table;
    hv_prepare_ctx prep;
    memset(&prep, 0, sizeof prep);
    if (p.k.prepare_enabled) {
        /* the training-set stage as one more row (prepare.c) */
        if ((st = hv_prepare_table(table, prep_rows, &prep_table)) != HV_OK) return st;
        table = &prep_table;
        snprintf(prep.parts, sizeof prep.parts, "%s/prepare", p.k.out_dir);
        prep.skip_fov = p.k.prepare_skip_fov;
        hv_model_sample_opts so;
        hv_model_sample_opts_default(&so);
        prep.band_rows = so.band_rows;
    }
    /* the gan's generator(s): opened on every rank before anything is
     * written, so a missing or wrong model file stops the run here, with
     * the same answer on every rank */
    /* where the networks run (compute.c): collective, before anything is
     * written, so compute.device = cuda without a GPU stops every rank here */
    hv_mpi_compute comp;
    if ((st = hv_mpi_compute_open(p.k.compute_device, comm, &comp)) != HV_OK) return st;
    hv_run_synth rsyn;
    st = hv_run_synth_open(&p.k, &comp, &rsyn);
    {
        int bad = st != HV_OK, anybad = 0;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm);
        if (anybad) {
            if (!bad)
                st = hv_error_set(HV_ERR_IO, "another rank could not open synthesis.model (its "
                                  "log says why)");
            hv_run_synth_close(&rsyn);
            return st;
        }
    }
    if (rsyn.model && rank == 0) hv_log_info("synthesis: %s, %s", p.synth, rsyn.provenance);
    /* the attention stage's classifier: the same way, before anything is
     * written (attn_model.c) */
    hv_run_attn rattn;
    st = hv_run_attn_open(&p.k, &comp, &rattn);
    {
        int bad = st != HV_OK, anybad = 0;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm);
        if (anybad) {
            if (!bad)
                st = hv_error_set(HV_ERR_IO, "another rank could not open attention.model (its "
                                  "log says why)");
            hv_run_attn_close(&rattn);
            hv_run_synth_close(&rsyn);
            return st;
        }
    }
    if (rattn.model && rank == 0) hv_log_info("attention: classifier %s", rattn.provenance);
    /* attention.store changed from its default (summary) says the stage was
     * wanted; without a classifier there is no stage and the store gets no
     * attention values: say so once, at the start, not silently */
    if (!p.k.attn_model[0] && p.k.attn_store != 1 && rank == 0)
        hv_log_warn("attention.store = %s has no effect without attention.model (the attention "
                    "stage does not run: no p_fracture%s in the store)",
                    p.k.attn_store == 0 ? "none" : "full", p.k.attn_store == 2 ? ", no maps" : "");
    if (p.k.synth != 1 && p.k.synth != 2 && p.k.synth_crops != 0 && rank == 0)
        hv_log_warn("synthesis.crops = %s has no effect with synthesis.method = %s (only gan and "
                    "aotgan synthesize crops: no /vertebrae/synth_label in the store)",
                    p.k.synth_crops == 1 ? "masks" : "full", p.synth);
    st = hv_stage_ctx_init(&sctx, table, &p.mopts, p.k.use_centroids, p.synth, p.pictures, NULL,
                           &rsyn, &rattn, p.k.grader == 3 ? "senet3d" : NULL);
    if (st != HV_OK) {
        hv_run_attn_close(&rattn);
        hv_run_synth_close(&rsyn);
        return st;
    }
    /* the plan reads the options in place: the stage finds its context */
    if (p.k.prepare_enabled) sctx.opts.user = &prep;

    hv_manifest *man = NULL;
    long *order = NULL;
    hv_split *split = NULL;
    hv_store *store = NULL;
    hv_journal *jr = NULL;
    hv_queue *q = NULL;
    int locked = 0;
    phase_a pa;
    memset(&pa, 0, sizeof pa);

    /* ---- phase A */
    if (rank == 0) st = phase_a_run(cfg, &p, &sctx, nranks, &pa, &man, &order, &locked);
    else lazy_barrier(comm);
    if (rank == 0) lazy_barrier(comm);
    st = bcast_status(comm, rank, st);
    if (st != HV_OK) goto done;
    MPI_Bcast(&pa, (int)sizeof pa, MPI_BYTE, 0, comm);
    if ((st = bcast_manifest(comm, rank, &man)) != HV_OK) goto done;
    if (rank != 0) {
        order = malloc((size_t)(pa.n_pending ? pa.n_pending : 1) * sizeof *order);
        if (!order) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    if (pa.n_pending > 0) MPI_Bcast(order, (int)pa.n_pending, MPI_LONG, 0, comm);
    out->attempt = pa.attempt;
    out->n_resumed = pa.n_resumed;

    /* the split: every rank reads the (small) file itself */
    {
        struct stat sb;
        int have_split = pa.split[0] && stat(pa.split, &sb) == 0;
        hv_status sst = have_split ? hv_io_split_read(pa.split, &split) : HV_OK;
        if (pa.split[0] && !have_split && p.k.split[0])
            sst = hv_error_set(HV_ERR_NOT_FOUND, "input.split: no file %s", pa.split);
        int bad = sst != HV_OK, anybad = 0;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm);
        if (anybad) {
            st = bad ? sst : hv_error_set(HV_ERR_IO, "another rank could not read the split %s", pa.split);
            goto done;
        }
    }

    /* ---- phase B: run.threads applies to the stages only (phase A's cohort
     * generation on rank 0 uses every core while the other ranks sleep) */
    if (p.k.threads > 0) omp_set_num_threads(p.k.threads);
    if ((st = hv_store_open_mpi(p.store, comm, &store)) != HV_OK) goto done_b;
    if ((st = hv_queue_create(comm, &q)) != HV_OK) goto done_b;
    if ((st = hv_journal_open(p.journal, p.k.shard_count > 1 ? p.k.shard_index : -1, rank,
                              sctx.n_stages, sctx.names, &jr)) != HV_OK)
        goto done_b;
    hv_log_info("rank %d of %d ready: %ld case(s) to run, %ld finished earlier", rank, nranks,
                pa.n_pending, pa.n_resumed);

    sctx.split = split;
    prep.split = split;
    int stopped = 0, fatal = 0;
    long my_cases = 0;
    double t_loop = hv_time_now(), last_progress = t_loop, t_prev_end = t_loop;
    double cpu_prev_end = cpu_seconds();
    hv_case_result r;
    memset(&r, 0, sizeof r);
    /* run.prefetch: the next case's files are read while this one computes
     * (hv_pipe_loader), so its position is taken from the queue one case
     * early; a loader that cannot start only costs the overlap */
    hv_pipe_loader *ld = NULL;
    if (p.k.prefetch && hv_pipe_loader_create(NULL, &ld) != HV_OK) {
        hv_log_warn("run.prefetch: %s; reading each case when it starts", hv_error_detail());
        hv_error_clear();
        ld = NULL;
    }
    sctx.loader = ld;
    long ahead = -2; /* the position taken early (-1: the stop mark), -2: none */
    for (;;) {
        if (hv_run_stop_requested() && !stopped) {
            hv_queue_raise_stop(q);
            hv_log_warn("stop requested: finishing the case in hand, then closing the store");
            if (ahead >= 0 && ahead < pa.n_pending)
                hv_pipe_loader_drop(ld, &man->cases[order[ahead]]); /* left pending */
            if (ahead >= 0) ahead = -1;
        }
        long pos = ahead;
        ahead = -2;
        if (pos == -2 && (st = hv_queue_next(q, &pos)) != HV_OK) {
            fatal = 1;
            break;
        }
        if (pos < 0) {
            stopped = 1;
            break;
        }
        if (pos >= pa.n_pending) break;
        long ci = order[pos];
        const hv_case *cs = &man->cases[ci];
        if (ld) {
            /* this case's reads (queued now unless they were a case ago),
             * then the next case's, which run while this one computes */
            hv_pipe_loader_prefetch(ld, cs);
            hv_error_clear(); /* held already: fine; otherwise take reads it */
            if ((st = hv_queue_next(q, &ahead)) != HV_OK) {
                fatal = 1;
                break;
            }
            if (ahead >= 0 && ahead < pa.n_pending &&
                hv_pipe_loader_prefetch(ld, &man->cases[order[ahead]]) != HV_OK) {
                hv_log_warn("case %s: not read ahead: %s", man->cases[order[ahead]].id,
                            hv_error_detail());
                hv_error_clear();
            }
        }
        hv_log_info("case %s: start (%ld/%ld in order)", cs->id, pos + 1, pa.n_pending);
        memset(&r, 0, sizeof r);
        hv_run_case_row(&r.c, cs);
        double tc = hv_time_now();
        hv_stage_run_case(&sctx, cs, (int)ci, &r);
        hv_pipe_loaded lt;
        hv_pipe_loader_last(ld, &lt);
        if (lt.cs != cs) memset(&lt, 0, sizeof lt); /* its load did not take (a bad case) */
        hv_pipe_loader_drop(ld, cs); /* a case whose load never took its files */
        test_case_delay();
        r.c.rank = rank;
        r.c.attempt = pa.attempt;
        hv_run_crashpoint("before-journal");
        double tj = hv_time_now();
        st = hv_journal_append(jr, &r);
        r.seconds[sctx.n_stages - 1] = hv_time_now() - tj; /* "store" */
        if (st != HV_OK) {
            fatal = 1;
            hv_case_result_clear(&r);
            break;
        }
        hv_run_crashpoint("after-journal");
        /* the store row carries the journal's own write time; the record in
         * the journal cannot (it is measured by writing it), so a case
         * restored from the journal shows 0 there (docs/hdf5-schema.md) */
        st = hv_store_put_case(store, ci, &r);
        if (st != HV_OK) {
            fatal = 1;
            hv_case_result_clear(&r);
            break;
        }
        hv_run_crashpoint("after-store");
        hv_queue_count(q, r.state == HV_CASE_FAILED);
        my_cases++;
        double dt = hv_time_now() - tc;
        if (r.state == HV_CASE_DONE) {
            /* the seconds of the stages that ran, and the store's, by the
             * names the store has */
            char tl[HV_STORE_MAX_STAGES * (HV_STORE_STAGE_NAME_MAX + 16)];
            size_t tn = 0;
            for (int k = 0; k < sctx.n_stages && tn < sizeof tl; k++) {
                if (k < sctx.n_stages - 1 && !(sctx.plan.active & (1u << k))) continue;
                tn += (size_t)snprintf(tl + tn, sizeof tl - tn, "%s%s %.3f", tn ? ", " : "",
                                       sctx.names[k], r.seconds[k]);
            }
            hv_log_info("case %s: done, %d vertebrae in %.2f s (%s)", cs->id, r.c.n_vert, dt, tl);
        } else {
            hv_log_warn("case %s: FAILED after %.2f s: %s", cs->id, dt, r.c.error);
        }
        {
            /* wall: this case's share of the rank's time (end of the last
             * case to end of this one); load: its files' read, ahead or not;
             * compute: the rest of the case, minus the wait for its files;
             * cpu: the process's CPU seconds over the same span (every
             * thread); rss: VmRSS after the case (bench/run/overlap_bench.sh
             * and tests/mpi/test_soak.sh read these lines) */
            double now = hv_time_now(), w = ld ? lt.wait_s : 0, cpu = cpu_seconds();
            double load = ld ? lt.load_s : r.seconds[0];
            hv_log_info("case %s: timing: wall %.3f s, load %.3f s (%s, waited %.3f s, both "
                        "files at once %.3f s), compute %.3f s, cpu %.3f s, rss %ld kB",
                        cs->id, now - t_prev_end, load, ld ? "read ahead" : "read in the case",
                        ld ? w : r.seconds[0], ld ? lt.overlap_s : 0.0,
                        dt - (ld ? w : r.seconds[0]), cpu - cpu_prev_end, rss_kb());
            t_prev_end = now;
            cpu_prev_end = cpu;
        }
        hv_case_result_clear(&r);
        double now = hv_time_now();
        if (rank == 0 && (now - last_progress >= p.k.progress_interval || pos + 1 >= pa.n_pending)) {
            long d = 0, f = 0;
            hv_queue_progress(q, &d, &f);
            double rate = (double)(d + f) / (now - t_loop); /* cases per second */
            char el[32], eta[32];
            fmt_dur(el, sizeof el, now - t_loop);
            fmt_dur(eta, sizeof eta, rate > 0 ? (double)(pa.n_pending - d - f) / rate : -1);
            hv_log_info("progress: %ld/%ld cases finished (%ld failed) this attempt, %ld earlier | "
                        "%.1f cases/min | elapsed %s | ETA %s",
                        d + f, pa.n_pending, f, pa.n_resumed, rate * 60, el, eta);
            last_progress = now;
        }
    }
    if (fatal) hv_log_error("rank %d stops: %s", rank, hv_error_detail());
    /* the loader's threads stop; a case taken early and not run stays
     * pending (the queue's stop mark, a fatal error) */
    hv_pipe_loader_free(ld);
    ld = NULL;
    sctx.loader = NULL;
    if (hv_run_stop_requested()) stopped = 1;
    hv_log_info("rank %d finished its share: %ld case(s) this attempt%s", rank, my_cases,
                stopped ? " (stopped by request)" : "");
    lazy_barrier(comm);
    {
        int flags[2] = {stopped, fatal}, any[2] = {0, 0};
        MPI_Allreduce(flags, any, 2, MPI_INT, MPI_MAX, comm);
        stopped = any[0];
        if (any[1] && !fatal)
            st = hv_error_set(HV_ERR_MPI, "another rank failed (its log says why); the run can be resumed");
        fatal = any[1];
    }
    out->interrupted = stopped && !fatal;
done_b:
    {
        hv_journal_close(jr);
        jr = NULL;
        hv_status cst = HV_OK;
        if (store) cst = hv_store_close(store);
        store = NULL;
        if (q) hv_queue_free(q);
        q = NULL;
        if (st == HV_OK) st = cst;
        int bad = st != HV_OK, anybad = 0;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm);
        if (anybad && !bad) st = hv_error_set(HV_ERR_MPI, "another rank failed; the run can be resumed");
        if (st != HV_OK) goto done;
    }

    /* ---- phase C (rank 0; the other ranks train SVM folds when asked) */
    hv_gather_team team = {comm, rank, nranks, 0};
    if (rank != 0 && nranks > 1) {
        hv_status tst = hv_gather_team_serve(&team);
        if (tst != HV_OK) hv_log_warn("gather: this rank's SVM folds failed: %s", hv_error_detail());
    }
    if (rank == 0) {
        hv_store *s = NULL;
        st = hv_store_open_serial(p.store, 1, &s);
        uint8_t *stt = NULL;
        hv_run_crow *rows = NULL;
        if (st == HV_OK)
            st = hv_store_set_attr_str(s, "/provenance", "compute_device", comp.desc);
        if (st == HV_OK && rsyn.model)
            st = hv_store_set_attr_str(s, "/provenance", "synth_model", rsyn.provenance);
        if (st == HV_OK && rattn.model)
            st = hv_store_set_attr_str(s, "/provenance", "attention_model", rattn.provenance);
        if (st == HV_OK && (p.n_img > 0 || sctx.attn_store == 2 || sctx.synth_crops > 0 ||
                              sctx.crop3d)) {
            /* the images of this attempt's cases, serially from the journals
             * (compressed: their file space cannot be allocated through
             * independent MPI-IO writes) */
            double ti = hv_time_now();
            long nimg = 0;
            hv_run_crashpoint("before-images");
            st = hv_resume_images(p.journal, &sctx, s, pa.attempt, &nimg);
            if (st == HV_OK)
                hv_log_info("images of %ld case(s) of this attempt written into the store in "
                            "%.2f s (rank 0, from the journals)", nimg, hv_time_now() - ti);
        }
        if (st == HV_OK) {
            size_t n = (size_t)hv_store_n_cases(s);
            stt = malloc(n ? n : 1);
            rows = malloc((n ? n : 1) * sizeof *rows);
            if (!stt || !rows) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            else st = hv_store_read_cases(s, rows, stt);
            out->n_cases = (long)n;
            for (size_t i = 0; st == HV_OK && i < n; i++) {
                if (stt[i] == HV_CASE_DONE) out->n_done++, out->n_vertebrae += rows[i].n_vert;
                else if (stt[i] == HV_CASE_FAILED) out->n_failed++;
                else out->n_pending++;
            }
            if (st == HV_OK && n != man->n)
                st = hv_error_set(HV_ERR_INTERNAL, "the store has %zu cases, the manifest %zu",
                                  n, man->n);
        }
        free(rows);
        char ended[32];
        hv_utc_now(ended);
        if (st == HV_OK && out->interrupted) {
            st = hv_store_set_attr_str(s, "/", "state", "interrupted");
        } else if (st == HV_OK && p.k.shard_count > 1) {
            /* one shard's view: its cases are finished, the others' pending;
             * grading is the unsharded gather run's job */
            st = hv_store_set_attr_str(s, "/", "state", "partial");
            if (st == HV_OK) st = hv_store_set_attr_str(s, "/provenance", "ended_utc", ended);
        } else if (st == HV_OK && out->n_pending > 0) {
            st = hv_error_set(HV_ERR_INTERNAL, "%ld case(s) still pending after the work loop",
                              out->n_pending);
        } else if (st == HV_OK) {
            hv_run_crashpoint("gather");
            hv_gather_opts go = {hv_run_config_get(cfg, "grader", "method"), p.k.folds,
                                 (unsigned)p.k.gseed, split, p.k.out_dir,
                                 hv_run_config_get(cfg, "grader", "solver"),
                                 (long)p.k.liblinear_above, &team,
                                 {p.k.se_width, p.k.se_blocks, p.k.se_batch, p.k.se_supcon_steps,
                                  p.k.se_cls_steps, 1 << p.k.se_shrink, p.k.se_lr_supcon,
                                  p.k.se_lr_cls, p.k.se_temperature, p.k.se_retrain}};
            hv_grader_result g;
            st = hv_gather_run(s, &go, &g);
            if (st == HV_OK) {
                snprintf(out->grader, sizeof out->grader, "%s", g.method);
                snprintf(out->solver, sizeof out->solver, "%s", g.solver);
                out->have_metrics = g.have_metrics;
                out->macro_f1 = g.m.macro_f1;
                out->accuracy = g.m.accuracy;
                out->kappa = g.m.kappa_linear;
                st = hv_store_set_attr_str(s, "/provenance", "ended_utc", ended);
            }
            if (st == HV_OK) st = hv_store_set_attr_str(s, "/", "state", "complete");
            if (st == HV_OK && p.k.prepare_enabled) {
                /* the training set: every done case's part, in case order */
                hv_run_crashpoint("prepare-merge");
                size_t ni = 0, nk = 0;
                st = hv_prepare_merge(&prep, man, stt, p.train, &ni, &nk);
                if (st == HV_OK) {
                    snprintf(out->train_path, sizeof out->train_path, "%s", p.train);
                    out->n_train_items = (long)ni;
                    out->n_train_skipped = (long)nk;
                    hv_log_info("prepare: %s: %zu training items, %zu vertebrae skipped",
                                p.train, ni, nk);
                }
            }
        }
        free(stt);
        if (s) {
            /* a failed close after a first error (a full disk fails both)
             * keeps the first error's text and adds the close's */
            char *first = st != HV_OK ? hv_strfmt("%s", hv_error_detail()) : NULL;
            hv_status cst = hv_store_close(s);
            if (st == HV_OK) st = cst;
            else if (cst != HV_OK && first) {
                char *second = hv_strfmt("%s", hv_error_detail());
                hv_error_set(st, "%s (then %s)", first, second ? second : "the store close failed");
                free(second);
            }
            free(first);
        }
        if (st == HV_OK && !out->interrupted && p.k.shard_count == 1) {
            st = hv_store_export(p.store, p.k.out_dir, 0, NULL, NULL, NULL);
            char *text = NULL;
            if (st == HV_OK) st = hv_store_describe(p.store, &text);
            if (st == HV_OK) {
                char *sp = hv_strfmt("%s/summary.md", p.k.out_dir);
                char *md = hv_strfmt(
                    "# healthivert run summary\n\n"
                    "Outputs in this folder: `store.h5` (schema v%d, docs/hdf5-schema.md), "
                    "`cases.csv`, `vertebrae.csv`, `grader_metrics.csv`%s, `confusion.png`, "
                    "`rhlv_by_grade.png`.\n\n```\n%s```\n",
                    HV_STORE_SCHEMA_VERSION,
                    !strcmp(out->grader, "svm")
                        ? ", `grader_folds.csv`, `svm_model.txt`, `grading_rows.csv`"
                    : !strcmp(out->grader, "senet3d")
                        ? ", `grader_folds.csv`, `senet3d_model.h5`, `grading_rows.csv`"
                        : "",
                    text);
                if (!sp || !md) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                else st = hv_file_write_atomic(sp, md, strlen(md), 1);
                free(sp);
                free(md);
            }
            free(text);
        }
    }
    if (rank == 0) hv_gather_team_release(&team); /* no SVM job this run */
    st = bcast_status(comm, rank, st);
    if (st != HV_OK) goto done;
    {
        hv_run_summary tmp = *out;
        MPI_Bcast(&tmp, (int)sizeof tmp, MPI_BYTE, 0, comm);
        tmp.interrupted = out->interrupted;
        *out = tmp;
    }
done:
    hv_run_attn_close(&rattn);
    hv_run_synth_close(&rsyn);
    if (locked) hv_store_lock_release(p.lock);
    snprintf(out->store_path, sizeof out->store_path, "%s", p.store);
    snprintf(out->out_dir, sizeof out->out_dir, "%s", p.k.out_dir);
    out->seconds = hv_time_now() - t_start;
    hv_io_split_free(split);
    hv_io_manifest_free(man);
    free(order);
    if (st == HV_OK && out->interrupted)
        return hv_error_set(HV_ERR_INTERRUPTED,
                            "stopped by request with %ld case(s) still to run; run the same "
                            "command again to resume", out->n_pending);
    return st;
}
