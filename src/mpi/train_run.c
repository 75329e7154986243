/*
 * train_run.c: `healthivert train` on MPI ranks (hv_train_execute): data
 * parallel training of the HealthiVert GAN with checkpoints, resume and
 * validation. Only what talks MPI and the policy of the loop are here; what
 * a step trains on, the metrics and the files are hv_train's (src/model,
 * hv/train.h), the step itself hv_model_gan_step.
 *
 * Data parallel: every rank holds the whole model and the training file's
 * tables (each reads the items of its share through the set's item cache,
 * train.item_cache_mb), runs its fixed share of each global batch
 * (hv_train_share) and hands the model a reducer that sums buffers over the
 * ranks with MPI_Allreduce(MPI_SUM); the model scales its gradients by
 * batch_local / batch_global, so the sum is the global batch's mean and every
 * rank applies the same update. Batches depend only on (seed, epoch, item),
 * so 1, 2 or 3 ranks train on the same items and reach the same weights up to
 * the order of float sums.
 *
 * Rank 0 alone writes: the output folder lock, checkpoint.h5 (every
 * train.checkpoint_every steps, at the end, and on SIGTERM/SIGUSR1: then the
 * exit is resumable, like `run`), val.csv, losses.csv, the curves and the
 * sample grids; validation runs on rank 0 while the others wait without
 * spinning. A checkpoint holds the weights and Adam state of the four
 * networks (hv_model_gan_save, atomic: a failed write leaves the last good
 * one) and our metadata: step, epoch, seed, the draw streams' key, the
 * results-changing config text and the whole config. Re-running the same
 * command resumes from it; a checkpoint of another config is refused with
 * the keys that differ, one of another width by the model's loader. No
 * checkpoint is written with a non-finite weight, and a non-finite loss
 * stops the training at that step with the terms named.
 *
 * Every rank must agree before any collective: after each fallible phase
 * the ranks exchange their status (agree()), and the first failing rank's
 * message becomes everyone's, so no rank waits in a reduction the others
 * left.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hv/train.h"
#include "run_internal.h"

#define CKPT_FORMAT "healthivert-train-checkpoint"
#define CKPT_VERSION "1"
#define LOSS_HEADER                                                                          \
    "step,epoch,lr,g_total,g_gan,g_l1,g_dice_fine,g_dice_coarse,g_edge,g_height,d1,d2,d3," \
    "seconds_per_step"

/* ------------------------------------------------------------ MPI helpers */

/* Test hook: HV_TEST_TRAIN_NAN_STEP=s puts a NaN into one input pixel of
 * rank 0's batch of step s (1-based: the step after which s steps would be
 * done), so that step's loss is non-finite (tests/train/test_train_bad.sh);
 * nothing happens unless it is set. */
static void test_nan_hook(int64_t step, hv_model_batch *b)
{
    const char *v = getenv("HV_TEST_TRAIN_NAN_STEP");
    if (!v || !*v || strtoll(v, NULL, 10) != step) return;
    hv_log_warn("HV_TEST_TRAIN_NAN_STEP: a NaN in the input at step %lld (test hook)",
                (long long)step);
    b->x[0] = NAN;
}

/* ------------------------------------------------------- checkpoint meta */

/* the GAN's own check, between the version and the config: the widths */
static hv_status gan_width_check(const char *path, void *ctx)
{
    const hv_train_opts *o = ctx;
    char cnum[32], ndf[32];
    hv_status st;
    if ((st = hv__train_meta_get(path, "cnum", cnum, sizeof cnum)) != HV_OK ||
        (st = hv__train_meta_get(path, "ndf", ndf, sizeof ndf)) != HV_OK)
        return st;
    if (atoi(cnum) != o->cnum || atoi(ndf) != o->ndf)
        return hv_error_set(HV_ERR_FORMAT,
                            "checkpoint %s holds networks of another width (cnum %s, ndf %s; this "
                            "config: train.cnum = %d, train.ndf = %d): use another train.output "
                            "or train.fresh = 1 to start over",
                            path, cnum, ndf, o->cnum, o->ndf);
    return HV_OK;
}

/* 1 when every value of the four networks is finite. */
static int weights_finite(hv_model_gan *m, char *bad, size_t cap)
{
    static const char *const net[4] = {"G", "D1", "D2", "D3"};
    for (int w = 0; w < 4; w++) {
        hv_nn_params *ps = hv_model_gan_params(m, w);
        if (ps && !hv__train_params_finite(ps, net[w], bad, cap)) return 0;
    }
    return 1;
}

typedef struct {
    const char *path, *dir;
    const char *cfgtext, *results_text;
    int seed, nranks, cnum, ndf;
    int64_t steps_per_epoch;
    const char *plane; /* "sagittal" | "coronal": the model file's /meta plane */
    const char *generator; /* "healthivert" | "aotgan": the model file's /meta generator */
} ckpt_ctx;

static hv_status ckpt_save(hv_model_gan *m, const ckpt_ctx *c, int64_t step)
{
    char bad[512];
    if (!weights_finite(m, bad, sizeof bad))
        return hv_error_set(HV_ERR_NUMERIC,
                            "step %lld: not writing a checkpoint with a non-finite weight (%s); "
                            "%s keeps the last good one",
                            (long long)step, bad, c->path);
    char s_step[32], s_epoch[32], s_seed[32], s_rng[200], s_ranks[16], s_cnum[16], s_ndf[16];
    snprintf(s_step, sizeof s_step, "%lld", (long long)step);
    snprintf(s_epoch, sizeof s_epoch, "%lld", (long long)(step / c->steps_per_epoch));
    snprintf(s_seed, sizeof s_seed, "%d", c->seed);
    snprintf(s_rng, sizeof s_rng,
             "xoshiro256** streams keyed by (seed %d, epoch, item); next draw: epoch %lld, "
             "batch %lld of the epoch; no carried state",
             c->seed, (long long)(step / c->steps_per_epoch),
             (long long)(step % c->steps_per_epoch));
    snprintf(s_ranks, sizeof s_ranks, "%d", c->nranks);
    snprintf(s_cnum, sizeof s_cnum, "%d", c->cnum);
    snprintf(s_ndf, sizeof s_ndf, "%d", c->ndf);
    const char *kv[] = {"format", CKPT_FORMAT, "version", CKPT_VERSION, "step", s_step,
                        "epoch", s_epoch, "seed", s_seed, "rng", s_rng, "ranks", s_ranks,
                        "cnum", s_cnum, "ndf", s_ndf, "plane", c->plane,
                        "generator", c->generator,
                        "results_config", c->results_text,
                        "config", c->cfgtext};
    hv_status st = hv_model_gan_save(m, c->path, kv, sizeof kv / sizeof kv[0] / 2);
    if (st != HV_OK) {
        char why[2048];
        hv__train_write_why(c->dir, why, sizeof why);
        return hv_error_wrap(st, "step %lld: checkpoint %s not written (the last good one is "
                                 "kept%s)",
                             (long long)step, c->path, why);
    }
    hv_log_info("checkpoint: step %s written to %s", s_step, c->path);
    return HV_OK;
}

/* ------------------------------------------------------------ losses.csv */

/* -------------------------------------------------------------- validation */

typedef struct {
    hv_train_valset vs;
    hv_train_valout vo;
    hv_train_val_row *rows;
    size_t n_rows, cap;
    char csv[1100], samples[1100];
    const char *out_dir;
    int grid;
} val_state;

static hv_status val_add(val_state *v, int64_t step, int64_t epoch, const char *method,
                         const hv_train_metrics *m)
{
    if (v->n_rows == v->cap) {
        size_t nc = v->cap ? 2 * v->cap : 16;
        hv_train_val_row *r = realloc(v->rows, nc * sizeof *r);
        if (!r) return hv_error_set(HV_ERR_NOMEM, "validation: out of memory");
        v->rows = r;
        v->cap = nc;
    }
    hv_train_val_row *r = &v->rows[v->n_rows++];
    memset(r, 0, sizeof *r);
    r->step = step;
    r->epoch = epoch;
    snprintf(r->method, sizeof r->method, "%s", method);
    r->m = *m;
    return HV_OK;
}

/* Rank 0: one validation of the network at `step` (with the baselines when
 * first): row, CSV, curves and the sample grid. */
static hv_status validate(val_state *v, hv_model_gan *m, int64_t batch_local, int64_t step,
                          int64_t epoch, int baselines)
{
    hv_status st = HV_OK;
    hv_train_metrics met;
    if (baselines) {
        if ((st = hv_train_val_copy_input(&v->vs, &v->vo)) != HV_OK) return st;
        if ((st = hv_train_val_metrics(&v->vs, &v->vo, &met)) != HV_OK) return st;
        if ((st = val_add(v, step, epoch, "copy_input", &met)) != HV_OK) return st;
        hv_log_info("validation baseline 'copy the input': band L1 %.4f, PSNR %.2f dB, SSIM %.4f, "
                    "Dice %.4f, height error %.2f %%",
                    met.band_l1, met.psnr, met.ssim, met.dice, met.height_err_pct);
    }
    double t0 = hv_time_now();
    hv_model_gan_set_reducer(m, NULL, NULL); /* rank 0 alone: nothing to sum */
    st = hv_train_val_infer(m, batch_local, &v->vs, &v->vo);
    if (st == HV_OK) st = hv_train_val_metrics(&v->vs, &v->vo, &met);
    if (st == HV_OK) st = val_add(v, step, epoch, "network", &met);
    if (st == HV_OK) st = hv_train_val_write(v->csv, v->rows, v->n_rows);
    if (st == HV_OK) st = hv_train_val_plot(v->out_dir, v->rows, v->n_rows);
    if (st == HV_OK) {
        char *g = hv_strfmt("%s/step-%08lld.png", v->samples, (long long)step);
        st = g ? hv_train_val_grid(g, &v->vs, &v->vo, v->grid)
               : hv_error_set(HV_ERR_NOMEM, "out of memory");
        free(g);
    }
    if (st != HV_OK) return hv_error_wrap(st, "validation at step %lld", (long long)step);
    hv_log_info("validation at step %lld%s (%zu items, %.1f s): band L1 %.4f, PSNR %.2f dB, "
                "SSIM %.4f, Dice %.4f (best %.4f at segmentation threshold %.2f), height error "
                "%.2f %%",
                (long long)step, step == 0 ? " (untrained)" : "", met.n, hv_time_now() - t0,
                met.band_l1, met.psnr, met.ssim, met.dice, met.dice_best, met.seg_threshold,
                met.height_err_pct);
    return HV_OK;
}

/* ------------------------------------------------------------------ execute */

hv_status hv_train_execute(const hv_run_config *cfg, MPI_Comm comm, hv_train_summary *out)
{
    int rank = 0, nranks = 1;
    hv__train_ranks(comm, &rank, &nranks);
    memset(out, 0, sizeof *out);
    double t_start = hv_time_now();

    hv_train_opts o;
    hv_mpi_compute comp; /* where the network trains (compute.c) */
    hv__train_dir dir;
    hv_status st = hv_run_config_fill(cfg, &o, sizeof o);
    if (st == HV_OK)
        st = hv__train_begin("train", o.file, o.output, o.batch, o.threads, o.device, comm,
                             nranks, &comp, &dir);
    if (st != HV_OK) return st;
    const char *ckpt = dir.ckpt, *losses = dir.losses;
    snprintf(out->out_dir, sizeof out->out_dir, "%s", o.output);

    hv_model_trainset *ts = NULL;
    hv_train_plan plan;
    memset(&plan, 0, sizeof plan);
    hv_model_batch batch;
    memset(&batch, 0, sizeof batch);
    hv_nn_backend *be = NULL;
    hv_model_gan *gan = NULL;
    size_t *perm = NULL;
    hv_sbuf lossbuf = {0};
    val_state vst;
    memset(&vst, 0, sizeof vst);
    MPI_Comm rcomm = comm;

    /* 1. the training file, read by every rank; refused before any work.
     * Its tables only: the volumes (8 MiB an item, 12 with a CAM) are read
     * through the set's item cache when used, at most train.item_cache_mb
     * of them kept: each step this rank's share of the batch, and on rank 0
     * the healthy val items once, until their fixed slices are cut (then
     * dropped); the fractured items are never read. */
    hv_model_sample_opts so;
    hv_train_sample_opts(&o, &so);
    st = hv_model_trainset_open_meta(o.file, (1u << HV_MODEL_SPLIT_TRAIN) |
                                     (1u << HV_MODEL_SPLIT_VAL), &ts);
    if (st != HV_OK) hv_error_wrap(st, "train.file");
    if (st == HV_OK) st = hv_train_plan_make(ts, &o, o.file, &plan);
    if (st == HV_OK)
        hv__train_cache_begin(ts, "train", o.item_cache_mb, plan.n_train,
                              o.val_every > 0 ? plan.n_val : 0, rank);
    if (st == HV_OK && rank == 0 && o.val_every > 0) {
        st = hv_train_valset_make(ts, &plan, &so, &vst.vs);
        for (size_t k = 0; k < plan.n_val; k++) hv_model_trainset_release(ts, plan.val[k]);
    }
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
    int64_t first = 0, count = 0;
    hv_train_share(o.batch, nranks, rank, &first, &count);
    hv_log_info("rank %d of %d: items [%lld, %lld) of each global batch of %d", rank, nranks,
                (long long)first, (long long)(first + count), o.batch);

    /* 2. rank 0: the output folder, its lock and what an earlier attempt left; the
     * GAN's checkpoint must also hold networks of this config's widths */
    st = hv__train_dir_prepare(&dir, cfg, comm, rank, nranks, "train", o.output, o.fresh,
                               CKPT_FORMAT, CKPT_VERSION, gan_width_check, &o);
    if (st == HV_OK) st = hv__train_past_end(&dir, "train", "max_steps", plan.total_steps);
    if (st != HV_OK) goto done;

    /* 3. the model on every rank: the same seed gives the same weights */
    {
        hv_model_gan_opts go;
        hv_train_gan_opts(&o, count, &go);
        hv_rng rng;
        hv_rng_seed(&rng, (uint64_t)o.seed, 0);
        st = hv_mpi_compute_backend(&comp, &be);
        if (st == HV_OK) st = hv_model_gan_create(&go, be, &rng, &gan);
        if (st == HV_OK && dir.resume) {
            st = hv_model_gan_load(gan, ckpt);
            if (st != HV_OK) hv_error_wrap(st, "resuming from %s", ckpt);
        }
        if (st == HV_OK) st = hv_model_batch_alloc(&batch, count, 256, 256, o.band_rows);
        if (st == HV_OK && !(perm = malloc(plan.n_train * sizeof *perm)))
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
    }
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
    if (nranks > 1) hv_model_gan_set_reducer(gan, hv__train_mpi_sum, &rcomm);

    int64_t step = dir.resume ? dir.step : 0;
    out->step_start = step;
    out->total_steps = plan.total_steps;
    out->steps_per_epoch = plan.steps_per_epoch;
    out->n_train = (long)plan.n_train;
    out->n_val = (long)plan.n_val;
    out->resumed = dir.resume;
    ckpt_ctx cc = {ckpt, o.output, dir.cfgtext, dir.results, o.seed, nranks, o.cnum, o.ndf,
                   plan.steps_per_epoch, o.plane == HV_SPINE_CORONAL ? "coronal" : "sagittal",
                   hv_model_generator_kind_name(o.generator)};

    /* 4. rank 0: validation set, tables of an earlier attempt, first validation */
    if (rank == 0) {
        hv_log_info("training: %zu healthy train items (%lld steps of %d per epoch), %zu val "
                    "items; %d rank%s (%lld items each step here); steps %lld..%lld%s; "
                    "compute: %s",
                    plan.n_train, (long long)plan.steps_per_epoch, o.batch, plan.n_val, nranks,
                    nranks == 1 ? "" : "s", (long long)count, (long long)step,
                    (long long)plan.total_steps,
                    dir.resume ? " (resumed from the checkpoint)" : "", comp.desc);
        vst.out_dir = o.output;
        vst.grid = o.val_grid;
        snprintf(vst.csv, sizeof vst.csv, "%s/val.csv", o.output);
        snprintf(vst.samples, sizeof vst.samples, "%s/samples", o.output);
        st = hv__train_csv_keep(losses, LOSS_HEADER, step, &lossbuf);
        if (st == HV_OK && o.val_every > 0) {
            /* a resume keeps the rows up to its checkpoint; a new start none
             * (a val.csv without a checkpoint is from an attempt killed before
             * its first checkpoint) */
            if (dir.resume) st = hv_train_val_read(vst.csv, step, &vst.rows, &vst.n_rows);
            vst.cap = vst.n_rows;
            if (st == HV_OK) st = hv_mkdir_p(vst.samples);
            if (st == HV_OK) st = hv_train_valout_alloc(&vst.vo, vst.vs.all.n, 256, 256);
            if (st == HV_OK && step == 0) st = validate(&vst, gan, count, 0, 0, 1);
        }
        if (nranks > 1) hv_model_gan_set_reducer(gan, hv__train_mpi_sum, &rcomm);
    } else {
        hv__train_wait_all(comm);
    }
    if (rank == 0) hv__train_wait_all(comm);
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;

    /* 5. the steps */
    int64_t last_ckpt = step, last_val = step, epoch_lr = -1;
    double t_loop = hv_time_now(), last_progress = 0, t_step = 0;
    int64_t steps_here = 0;
    hv_model_gan_losses L;
    memset(&L, 0, sizeof L);
    int stopped = 0;
    while (step < plan.total_steps) {
        int64_t epoch = step / plan.steps_per_epoch;
        double lr = o.lr * hv_model_lr_linear(epoch, o.n_epochs, o.n_epochs_decay);
        if (epoch != epoch_lr) {
            hv_model_gan_set_lr(gan, lr);
            epoch_lr = epoch;
        }
        double ts0 = hv_time_now();
        st = hv_train_batch_fill(ts, &plan, &so, (uint64_t)o.seed, step, first, count, perm, &batch);
        if (st == HV_OK && rank == 0) test_nan_hook(step + 1, &batch);
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        st = hv_model_gan_step(gan, &batch, &L);
        if (st != HV_OK)
            hv_error_wrap(st, "step %lld of %lld (epoch %lld): training stopped, no checkpoint "
                              "written for it (%s keeps step %lld)",
                          (long long)step + 1, (long long)plan.total_steps, (long long)epoch, ckpt,
                          (long long)last_ckpt);
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        step++;
        steps_here++;
        t_step = hv_time_now() - ts0;
        hv_run_crashpoint("train-step");

        if (rank == 0 && (step % o.log_every == 0 || step == plan.total_steps)) {
            hv_sbuf_printf(&lossbuf, "%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f\n",
                           (long long)step, (long long)epoch, lr, L.g_total, L.g_gan, L.g_l1,
                           L.g_dice_fine, L.g_dice_coarse, L.g_edge, L.g_height, L.d1, L.d2, L.d3,
                           t_step);
            st = hv__train_text_write(losses, &lossbuf);
        }
        double now = hv_time_now();
        if (rank == 0 && (now - last_progress >= o.progress_interval || step == plan.total_steps)) {
            double rate = (now - t_loop) / (double)steps_here; /* seconds per step */
            char el[32], eta[32];
            hv__train_fmt_dur(el, sizeof el, now - t_start);
            hv__train_fmt_dur(eta, sizeof eta, rate * (double)(plan.total_steps - step));
            hv_log_info("step %lld/%lld (epoch %lld, lr %.3g) | G %.4g [gan %.3g l1 %.4g dice %.3g/%.3g "
                        "edge %.3g height %.3g] D %.3f/%.3f/%.3f | %.2f s/step | elapsed %s | ETA %s",
                        (long long)step, (long long)plan.total_steps, (long long)epoch, lr,
                        L.g_total, L.g_gan, L.g_l1, L.g_dice_fine, L.g_dice_coarse, L.g_edge,
                        L.g_height, L.d1, L.d2, L.d3, rate, el, eta);
            last_progress = now;
        }
        int flags[1] = {hv_run_stop_requested()}, any[1] = {0};
        MPI_Allreduce(flags, any, 1, MPI_INT, MPI_MAX, comm);
        stopped = any[0];
        int end = step == plan.total_steps;
        int do_val = o.val_every > 0 && (step % o.val_every == 0 || end) && !stopped;
        int do_ckpt = step % o.checkpoint_every == 0 || end || stopped;
        if (rank == 0) {
            if (st == HV_OK && do_val) {
                st = validate(&vst, gan, count, step, epoch, 0);
                last_val = step;
            }
            if (st == HV_OK && do_ckpt) st = ckpt_save(gan, &cc, step);
            if (nranks > 1) hv_model_gan_set_reducer(gan, hv__train_mpi_sum, &rcomm);
        }
        if (do_val || do_ckpt) hv__train_wait_all(comm); /* the others sleep while rank 0 writes */
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        if (do_ckpt) {
            last_ckpt = step;
            hv_run_crashpoint("train-checkpoint");
        }
        if (stopped) break;
    }
    (void)last_val;
    hv__train_cache_end(ts);
    out->step_end = step;
    out->interrupted = stopped && step < plan.total_steps;
    {
        double l[10] = {L.g_total, L.g_gan, L.g_l1, L.g_dice_fine, L.g_dice_coarse,
                        L.g_edge, L.g_height, L.d1, L.d2, L.d3};
        memcpy(out->losses, l, sizeof l);
    }
    for (size_t i = 0; rank == 0 && i < vst.n_rows; i++) {
        const hv_train_metrics *m = &vst.rows[i].m;
        double v[6] = {(double)m->n, m->band_l1, m->psnr, m->ssim, m->dice, m->height_err_pct};
        if (!strcmp(vst.rows[i].method, "copy_input")) memcpy(out->copy_input, v, sizeof v);
        else if (vst.rows[i].step == 0) memcpy(out->untrained, v, sizeof v);
        else memcpy(out->last, v, sizeof v);
        out->have_val = 1;
    }
done:
    hv__train_dir_release(&dir);
    out->seconds = hv_time_now() - t_start;
    hv_sbuf_free(&lossbuf);
    hv_train_valset_free(&vst.vs);
    hv_train_valout_free(&vst.vo);
    free(vst.rows);
    free(perm);
    hv_model_batch_free(&batch);
    hv_model_gan_free(gan);
    hv_nn_backend_free(be);
    hv_train_plan_free(&plan);
    hv_model_trainset_free(ts);
    if (st == HV_OK && out->interrupted)
        return hv_error_set(HV_ERR_INTERRUPTED,
                            "stopped by request at step %lld of %lld (checkpoint written); run the "
                            "same command again to resume",
                            (long long)out->step_end, (long long)out->total_steps);
    return st;
}
