/*
 * cls_train_run.c: `healthivert train-classifier` on MPI ranks
 * (hv_train_cls_execute): data parallel training of the fracture classifier
 * (issue 13) with checkpoints, resume and validation. The policy is the
 * GAN's (train_run.c) and its MPI pieces are shared with it
 * (train_common.c): every rank holds the model and the training file, runs
 * its fixed share of each global batch (hv_train_share), and sums gradients
 * and batch-norm statistics over the ranks (hv__train_mpi_sum); batches
 * depend only on (seed, epoch, list position), so 1, 2 or 3 ranks and a
 * resumed run reach the same weights up to the order of float sums.
 *
 * Rank 0 alone writes: the lock, checkpoint.h5 (every checkpoint_every
 * steps, at the end, and on SIGTERM/SIGINT/SIGUSR1, then exit 75), val.csv with
 * its curves, losses.csv, and the model file classifier.h5
 * (hv_model_classifier_save_file_meta: /params, /meta kind = classifier,
 * width, threshold, source, step, total_steps) from the checkpoint's weights
 * at the end, and also at a stop, after its checkpoint, with /meta stopped
 * saying so: a training stopped by a time limit still leaves a model to
 * look at, which nobody takes for a finished one, and the finished run
 * overwrites it. A model file that cannot be written at a stop is a warning
 * (the checkpoint is what the resume needs; the exit stays 75); weights
 * with a NaN are never written (ckpt_save refuses them first, and then
 * neither file is written). A checkpoint holds weights, running statistics and Adam
 * state (group /C), the step and the results-changing config; one of
 * another config is refused naming the keys (classifier.fresh = 1 or
 * --fresh starts over). Validation runs on rank 0 while the others sleep.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/train.h"
#include "run_internal.h"

#define CKPT_FORMAT "healthivert-classifier-checkpoint"
#define CKPT_VERSION "1"
#define LOSS_HEADER "step,epoch,loss,seconds_per_step"

typedef struct {
    const hv_train_cls_opts *o;
    const char *path, *cfgtext, *results_text;
    int nranks;
    int64_t steps_per_epoch;
} ckpt_ctx;

/* Test hook: HV_TEST_CLS_NAN_STOP_STEP=s: after step s, rank 0 puts a NaN
 * into the first value of the first parameter and asks for a stop, as a
 * SIGTERM at that step would (tests/train/test_cls_stop.sh: a stop with a
 * non-finite weight writes neither the checkpoint nor the model file);
 * nothing happens unless it is set. */
static void test_nan_stop_hook(hv_train_cls *m, int64_t step)
{
    const char *v = getenv("HV_TEST_CLS_NAN_STOP_STEP");
    if (!v || !*v || strtoll(v, NULL, 10) != step) return;
    hv_nn_params *ps = hv_train_cls_params(m);
    hv_nn_param *p = hv_nn_params_size(ps) ? hv_nn_params_at(ps, 0) : NULL;
    size_t n = p ? (size_t)hv_nn_param_numel(p) : 0;
    float *d = n ? malloc(n * sizeof *d) : NULL;
    if (d && hv_nn_param_get(p, d, n) == HV_OK) {
        d[0] = NAN;
        if (hv_nn_param_set(p, d, n) == HV_OK) {
            hv_log_warn("HV_TEST_CLS_NAN_STOP_STEP: a NaN in %s and a stop at step %lld (test "
                        "hook)", hv_nn_param_name(p), (long long)step);
            hv_run_request_stop();
        }
    }
    free(d);
}

static hv_status ckpt_save(hv_train_cls *m, const ckpt_ctx *c, int64_t step)
{
    char bad[512];
    if (!hv__train_params_finite(hv_train_cls_params(m), NULL, bad, sizeof bad))
        return hv_error_set(HV_ERR_NUMERIC, "step %lld: not writing a checkpoint with a non-finite "
                            "weight (%s); %s keeps the last good one", (long long)step, bad, c->path);
    char s_step[32], s_epoch[32], s_seed[32], s_thr[16], s_ranks[16];
    snprintf(s_step, sizeof s_step, "%lld", (long long)step);
    snprintf(s_epoch, sizeof s_epoch, "%lld", (long long)(step / c->steps_per_epoch));
    snprintf(s_seed, sizeof s_seed, "%d", c->o->seed);
    snprintf(s_thr, sizeof s_thr, "%d", c->o->threshold);
    snprintf(s_ranks, sizeof s_ranks, "%d", c->nranks);
    const char *kv[] = {"format", CKPT_FORMAT, "version", CKPT_VERSION, "step", s_step,
                        "epoch", s_epoch, "seed", s_seed, "threshold", s_thr, "ranks", s_ranks,
                        "results_config", c->results_text, "config", c->cfgtext};
    hv_status st = hv_train_cls_save(m, c->path, kv, sizeof kv / sizeof kv[0] / 2);
    if (st != HV_OK) {
        char why[2048];
        hv__train_write_why(c->o->output, why, sizeof why);
        return hv_error_wrap(st, "step %lld: checkpoint %s not written (the last good one is "
                                 "kept%s)", (long long)step, c->path, why);
    }
    hv_log_info("checkpoint: step %s written to %s", s_step, c->path);
    return HV_OK;
}

/* The model file: the weights and running statistics of checkpoint ckpt
 * (group /C) written by hv_model_classifier_save_file_meta (atomic; /meta
 * kind, width, threshold, source naming the step and seed, step,
 * total_steps, and with `stopped` the marker /meta stopped). */
static hv_status export_model(const char *ckpt, const char *path, int width, int threshold,
                              int64_t step, int64_t total, int seed, int stopped)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 0, 0);
    hv_status st = hv_nn_params_create(&ps);
    if (st == HV_OK) st = hv_model_classifier_params(ps, width, &rng);
    if (st == HV_OK) {
        const char *g[1] = {"C"};
        hv_nn_params *p1[1] = {ps};
        st = hv_nn_checkpoint_load_groups(ckpt, 1, g, p1, NULL);
    }
    if (st == HV_OK) {
        char src[200], s_step[32], s_total[32], s_stop[200];
        snprintf(src, sizeof src, "healthivert train-classifier: step %lld%s, seed %d",
                 (long long)step, stopped ? " (stopped before the end)" : "", seed);
        snprintf(s_step, sizeof s_step, "%lld", (long long)step);
        snprintf(s_total, sizeof s_total, "%lld", (long long)total);
        snprintf(s_stop, sizeof s_stop,
                 "written at a stop (SIGTERM/SIGINT/SIGUSR1) at step %lld of %lld: not a finished "
                 "training", (long long)step, (long long)total);
        const char *kv[] = {"step", s_step, "total_steps", s_total, "stopped", s_stop};
        st = hv_model_classifier_save_file_meta(ps, width, threshold, src, kv, stopped ? 3 : 2,
                                                path);
    }
    hv_nn_params_free(ps);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "exporting the classifier to %s", path);
}

/* Rank 0 at a stop, after the checkpoint of `step` was written: the model
 * file from it, marked stopped. A failure is a warning only: the checkpoint
 * is there and the resume needs nothing else (the exit stays 75). */
static int export_at_stop(const char *ckpt, const char *path, const hv_train_cls_opts *o,
                          int64_t step, int64_t total)
{
    hv_status st = export_model(ckpt, path, o->width, o->threshold, step, total, o->seed, 1);
    if (st != HV_OK) {
        hv_log_warn("stopped at step %lld of %lld: the model file was not written (%s); %s "
                    "holds the step and resuming goes on from it",
                    (long long)step, (long long)total, hv_error_detail(), ckpt);
        return 0;
    }
    hv_log_warn("stopped at step %lld of %lld: model %s written from the checkpoint's weights, "
                "marked in /meta as stopped at step %lld (not a finished training); the same "
                "command resumes and the finished run overwrites it",
                (long long)step, (long long)total, path, (long long)step);
    return 1;
}

typedef struct {
    hv_train_cls_row *rows;
    size_t n, cap;
    char csv[1100];
    const char *dir;
} val_state;

/* Rank 0: one validation at `step`: a row, val.csv, the curves. */
static hv_status validate(val_state *v, hv_train_cls *m, hv_model_trainset *ts,
                          const hv_train_cls_plan *p, int threshold, int64_t step, int64_t epoch)
{
    double t0 = hv_time_now();
    if (v->n == v->cap) {
        size_t nc = v->cap ? 2 * v->cap : 16;
        hv_train_cls_row *r = realloc(v->rows, nc * sizeof *r);
        if (!r) return hv_error_set(HV_ERR_NOMEM, "validation: out of memory");
        v->rows = r;
        v->cap = nc;
    }
    hv_train_cls_row *r = &v->rows[v->n];
    memset(r, 0, sizeof *r);
    r->step = step;
    r->epoch = epoch;
    hv_train_cls_set_reducer(m, NULL, NULL); /* inference graph: rank 0 alone anyway */
    hv_status st = hv_train_cls_validate(m, ts, p, threshold, NULL, &r->m);
    if (st == HV_OK) v->n++;
    if (st == HV_OK) st = hv_train_cls_val_write(v->csv, v->rows, v->n);
    if (st == HV_OK) st = hv_train_cls_val_plot(v->dir, v->rows, v->n);
    if (st != HV_OK) return hv_error_wrap(st, "validation at step %lld", (long long)step);
    hv_log_info("validation at step %lld%s (%zu vertebrae, %zu fractures, %.1f s): AUC %.4f, "
                "sensitivity %.4f, specificity %.4f, recall by grade %.3f/%.3f/%.3f/%.3f, "
                "cross entropy %.4f",
                (long long)step, step == 0 ? " (untrained)" : "", r->m.n, r->m.n_pos,
                hv_time_now() - t0, r->m.auc, r->m.sensitivity, r->m.specificity,
                r->m.recall[0], r->m.recall[1], r->m.recall[2], r->m.recall[3], r->m.loss);
    return HV_OK;
}

static void summary_values(const hv_train_cls_metrics *m, double v[9])
{
    double x[9] = {(double)m->n, m->auc, m->sensitivity, m->specificity, m->recall[0],
                   m->recall[1], m->recall[2], m->recall[3], m->loss};
    memcpy(v, x, sizeof x);
}

hv_status hv_train_cls_execute(const hv_run_config *cfg, MPI_Comm comm, hv_train_cls_summary *out)
{
    int rank = 0, nranks = 1;
    hv__train_ranks(comm, &rank, &nranks);
    memset(out, 0, sizeof *out);
    double t_start = hv_time_now();

    hv_train_cls_opts o;
    hv_mpi_compute comp; /* where the network trains (compute.c) */
    hv__train_dir dir;
    hv_status st = hv_run_config_fill(cfg, &o, sizeof o);
    if (st == HV_OK)
        st = hv__train_begin("classifier", o.file, o.output, o.batch, o.threads, o.device, comm,
                             nranks, &comp, &dir);
    if (st != HV_OK) return st;
    const char *ckpt = dir.ckpt, *losses = dir.losses;
    snprintf(out->out_dir, sizeof out->out_dir, "%s", o.output);
    snprintf(out->model, sizeof out->model, "%s/classifier.h5", o.output);

    hv_model_trainset *ts = NULL;
    hv_train_cls_plan plan;
    memset(&plan, 0, sizeof plan);
    hv_nn_backend *be = NULL;
    hv_train_cls *m = NULL;
    size_t *list = NULL;
    float *x = NULL, *y = NULL;
    hv_sbuf lossbuf = {0};
    val_state vst;
    memset(&vst, 0, sizeof vst);
    MPI_Comm rcomm = comm;
    int model_at_stop = 0; /* rank 0: classifier.h5 written at a stop */

    /* 1. the training file, read by every rank; refused before any work.
     * Its tables only: the volumes (8 MiB an item, 12 with a CAM) are read
     * through the set's item cache when used, at most
     * classifier.item_cache_mb of them kept: each step this rank's share of
     * the batch, and on rank 0 each validation's items. */
    st = hv_model_trainset_open_meta(o.file, (1u << HV_MODEL_SPLIT_TRAIN) |
                                     (1u << HV_MODEL_SPLIT_VAL), &ts);
    if (st != HV_OK) hv_error_wrap(st, "classifier.file");
    if (st == HV_OK) st = hv_train_cls_plan_make(ts, &o, o.file, &plan);
    if (st == HV_OK)
        hv__train_cache_begin(ts, "classifier", o.item_cache_mb, plan.n_train,
                              o.val_every > 0 ? plan.n_val : 0, rank);
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
    int64_t first = 0, count = 0;
    hv_train_share(o.batch, nranks, rank, &first, &count);

    /* 2. rank 0: the output folder, its lock and what an earlier attempt left */
    st = hv__train_dir_prepare(&dir, cfg, comm, rank, nranks, "classifier", o.output, o.fresh,
                               CKPT_FORMAT, CKPT_VERSION, NULL, NULL);
    if (st == HV_OK) st = hv__train_past_end(&dir, "classifier", "steps", plan.total_steps);
    if (st != HV_OK) goto done;
    const int resume = dir.resume;

    /* 3. the model on every rank: the same seed gives the same weights */
    {
        hv_rng rng;
        hv_rng_seed(&rng, (uint64_t)o.seed, 0);
        st = hv_mpi_compute_backend(&comp, &be);
        if (st == HV_OK)
            st = hv_train_cls_create(o.width, count, o.batch, HV_MODEL_CAM_COUNT, o.lr, o.beta1,
                                     o.beta2, &rng, be, &m);
        if (st == HV_OK && resume && (st = hv_train_cls_load(m, ckpt)) != HV_OK)
            hv_error_wrap(st, "resuming from %s", ckpt);
        list = malloc((size_t)plan.epoch_len * sizeof *list);
        x = malloc((size_t)count * 256 * 256 * sizeof *x);
        y = malloc((size_t)count * sizeof *y);
        if (st == HV_OK && (!list || !x || !y)) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
    }
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
    if (nranks > 1) hv_train_cls_set_reducer(m, hv__train_mpi_sum, &rcomm);

    int64_t step = resume ? dir.step : 0;
    out->step_start = step;
    out->total_steps = plan.total_steps;
    out->steps_per_epoch = plan.steps_per_epoch;
    out->n_train = (long)plan.n_train;
    out->n_pos = (long)plan.n_pos;
    out->n_neg = (long)plan.n_neg;
    out->n_unknown = (long)(plan.n_unknown_train + plan.n_unknown_val);
    out->n_val = (long)plan.n_val;
    out->resumed = resume;
    ckpt_ctx cc = {&o, ckpt, dir.cfgtext, dir.results, nranks, plan.steps_per_epoch};

    /* 4. rank 0: tables of an earlier attempt, the untrained validation */
    if (rank == 0) {
        hv_log_info("classifier training: %zu train items (%zu fractures at grade >= %d, %zu "
                    "not; %zu of unknown grade skipped), balance %s: %lld per epoch, %lld steps "
                    "of %d; %zu val items; %d rank%s; steps %lld..%lld%s; compute: %s",
                    plan.n_train, plan.n_pos, o.threshold, plan.n_neg, plan.n_unknown_train,
                    o.balance ? "sample" : "none", (long long)plan.epoch_len,
                    (long long)plan.steps_per_epoch, o.batch, plan.n_val, nranks,
                    nranks == 1 ? "" : "s", (long long)step, (long long)plan.total_steps,
                    resume ? " (resumed from the checkpoint)" : "", comp.desc);
        vst.dir = o.output;
        snprintf(vst.csv, sizeof vst.csv, "%s/val.csv", o.output);
        st = hv__train_csv_keep(losses, LOSS_HEADER, step, &lossbuf);
        if (st == HV_OK && o.val_every > 0) {
            if (resume) st = hv_train_cls_val_read(vst.csv, step, &vst.rows, &vst.n);
            vst.cap = vst.n;
            if (st == HV_OK && step == 0) st = validate(&vst, m, ts, &plan, o.threshold, 0, 0);
        }
        if (nranks > 1) hv_train_cls_set_reducer(m, hv__train_mpi_sum, &rcomm);
        hv__train_wait_all(comm);
    } else {
        hv__train_wait_all(comm);
    }
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;

    /* 5. the steps */
    int64_t last_ckpt = step;
    double t_loop = hv_time_now(), last_progress = 0, loss = NAN;
    int64_t steps_here = 0;
    int stopped = 0;
    while (step < plan.total_steps) {
        int64_t epoch = step / plan.steps_per_epoch;
        double ts0 = hv_time_now();
        st = hv_train_cls_batch_fill(ts, &plan, &o, step, first, count, list, x, y, NULL);
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        st = hv_train_cls_step(m, x, y, &loss, NULL);
        if (st != HV_OK)
            hv_error_wrap(st, "step %lld of %lld (epoch %lld): training stopped, no checkpoint "
                              "written for it (%s keeps step %lld)",
                          (long long)step + 1, (long long)plan.total_steps, (long long)epoch, ckpt,
                          (long long)last_ckpt);
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        step++;
        steps_here++;
        double t_step = hv_time_now() - ts0;
        hv_run_crashpoint("train-step");

        if (rank == 0 && (step % o.log_every == 0 || step == plan.total_steps)) {
            hv_sbuf_printf(&lossbuf, "%lld,%lld,%.7g,%.4f\n", (long long)step, (long long)epoch,
                           loss, t_step);
            st = hv__train_text_write(losses, &lossbuf);
        }
        double now = hv_time_now();
        if (rank == 0 && (now - last_progress >= o.progress_interval || step == plan.total_steps)) {
            double rate = (now - t_loop) / (double)steps_here;
            char el[32], eta[32];
            hv__train_fmt_dur(el, sizeof el, now - t_start);
            hv__train_fmt_dur(eta, sizeof eta, rate * (double)(plan.total_steps - step));
            hv_log_info("step %lld/%lld (epoch %lld) | cross entropy %.4f | %.2f s/step | "
                        "elapsed %s | ETA %s",
                        (long long)step, (long long)plan.total_steps, (long long)epoch, loss, rate,
                        el, eta);
            last_progress = now;
        }
        if (rank == 0) test_nan_stop_hook(m, step);
        int flag = hv_run_stop_requested(), any = 0;
        MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, comm);
        stopped = any;
        int end = step == plan.total_steps;
        int do_val = o.val_every > 0 && (step % o.val_every == 0 || end) && !stopped;
        int do_ckpt = step % o.checkpoint_every == 0 || end || stopped;
        if (rank == 0) {
            if (st == HV_OK && do_val)
                st = validate(&vst, m, ts, &plan, o.threshold, step, epoch);
            if (st == HV_OK && do_ckpt) {
                st = ckpt_save(m, &cc, step);
                if (st != HV_OK && stopped && !end)
                    hv_log_warn("stopped at step %lld of %lld: the model file %s is not written "
                                "either (%s)", (long long)step, (long long)plan.total_steps,
                                out->model, hv_error_detail());
            }
            if (st == HV_OK && end) {
                st = export_model(ckpt, out->model, o.width, o.threshold, step, plan.total_steps,
                                  o.seed, 0);
                if (st == HV_OK) hv_log_info("model: %s", out->model);
            } else if (st == HV_OK && stopped) {
                model_at_stop = export_at_stop(ckpt, out->model, &o, step, plan.total_steps);
            }
            if (nranks > 1) hv_train_cls_set_reducer(m, hv__train_mpi_sum, &rcomm);
        }
        if (do_val || do_ckpt) hv__train_wait_all(comm);
        if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
        if (do_ckpt) {
            last_ckpt = step;
            hv_run_crashpoint("train-checkpoint");
        }
        if (stopped) break;
    }
    /* a finished training run again: the model file is written anyway */
    if (rank == 0 && step == plan.total_steps && steps_here == 0 && access(ckpt, R_OK) == 0)
        st = export_model(ckpt, out->model, o.width, o.threshold, step, plan.total_steps,
                          o.seed, 0);
    if ((st = hv__train_agree(comm, rank, nranks, st)) != HV_OK) goto done;
    hv__train_cache_end(ts);
    out->step_end = step;
    out->loss = loss;
    out->interrupted = stopped && step < plan.total_steps;
    for (size_t i = 0; rank == 0 && i < vst.n; i++) {
        if (vst.rows[i].step == 0) summary_values(&vst.rows[i].m, out->untrained);
        summary_values(&vst.rows[i].m, out->last);
        out->last_val_step = vst.rows[i].step;
        out->have_val = 1;
    }
done:
    hv__train_dir_release(&dir);
    out->seconds = hv_time_now() - t_start;
    hv_sbuf_free(&lossbuf);
    free(vst.rows);
    free(list);
    free(x);
    free(y);
    hv_train_cls_free(m);
    hv_nn_backend_free(be);
    hv_train_cls_plan_free(&plan);
    hv_model_trainset_free(ts);
    if (st == HV_OK && out->interrupted)
        return hv_error_set(HV_ERR_INTERRUPTED,
                            "stopped by request at step %lld of %lld (checkpoint written%s); "
                            "run the same command again to resume",
                            (long long)out->step_end, (long long)out->total_steps,
                            model_at_stop ? ", and classifier.h5 marked as stopped" : "");
    return st;
}
