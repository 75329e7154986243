/*
 * train_validate.c: `healthivert train CONFIG --validate-model FILE`
 * (hv_train_validate_model): one validation of a finished generator (a
 * model file: the shipped ones, an export, a converted .pth) on the val
 * items of the training file the config names, with the metrics a training
 * writes to val.csv, and nothing written.
 *
 * Why: a model file carries only the generator, so nothing re-measures it
 * on data once its training folder is gone; and the Dice-best segmentation
 * threshold (val.csv's seg_threshold, for synthesis.seg_threshold) must be
 * chosen on val items, never on the cases being evaluated. The validation
 * is the training's own: the same val items at the centre of their slice
 * ranges (hv_train_valset_make over the config's plan and sampling), the
 * same inference (hv_train_val_infer) and metrics (hv_train_val_metrics),
 * so the numbers compare with a training's val.csv rows. One process: the
 * validation of a training runs on rank 0 alone too.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "hv/train.h"
#include "run_internal.h"

hv_status hv_train_validate_model(const hv_run_config *cfg, MPI_Comm comm, const char *model_path,
                                  hv_train_val_row *rows)
{
    int nranks = 1;
    MPI_Comm_size(comm, &nranks);
    memset(rows, 0, 2 * sizeof *rows);
    if (nranks != 1)
        return hv_error_set(HV_ERR_ARG, "--validate-model runs in one process (got %d ranks): "
                            "start it without mpiexec", nranks);
    hv_train_opts o;
    hv_status st = hv_run_config_fill(cfg, &o, sizeof o);
    if (st != HV_OK) return st;
    if ((st = hv_file_check_regular(model_path, "--validate-model")) != HV_OK) return st;
    hv_mpi_compute comp;
    if ((st = hv_mpi_compute_open(o.device, comm, &comp)) != HV_OK) return st;

    hv_model_trainset *ts = NULL;
    hv_train_plan plan;
    memset(&plan, 0, sizeof plan);
    hv_train_valset vs;
    memset(&vs, 0, sizeof vs);
    hv_train_valout vo;
    memset(&vo, 0, sizeof vo);
    hv_nn_backend *be = NULL;
    hv_model_gan *gan = NULL;
    /* the tables (the plan needs the train split's too); volumes of the
     * val items only, read one at a time through the item cache
     * (train.item_cache_mb) and dropped once their slices are cut */
    st = hv_model_trainset_open_meta(o.file, (1u << HV_MODEL_SPLIT_TRAIN) |
                                     (1u << HV_MODEL_SPLIT_VAL), &ts);
    if (st != HV_OK) {
        hv_error_wrap(st, "train.file");
        goto done;
    }
    if ((st = hv_train_plan_make(ts, &o, o.file, &plan)) != HV_OK) goto done;
    if (plan.n_val == 0) {
        st = hv_error_set(HV_ERR_ARG, "train.file %s: no val items of the plane and grades the "
                          "config selects: nothing to validate on", o.file);
        goto done;
    }
    hv_model_sample_opts so;
    hv_train_sample_opts(&o, &so);
    hv_model_trainset_set_budget(ts, (size_t)o.item_cache_mb << 20);
    st = hv_train_valset_make(ts, &plan, &so, &vs);
    for (size_t k = 0; k < plan.n_val; k++) hv_model_trainset_release(ts, plan.val[k]);
    if (st != HV_OK ||
        (st = hv_train_valout_alloc(&vo, vs.all.n, 256, 256)) != HV_OK)
        goto done;
    hv_model_gan_opts go;
    hv_train_gan_opts(&o, o.batch, &go);
    hv_rng rng;
    hv_rng_seed(&rng, (uint64_t)o.seed, 0); /* the generator's values are the file's */
    if ((st = hv_mpi_compute_backend(&comp, &be)) != HV_OK ||
        (st = hv_model_gan_create(&go, be, &rng, &gan)) != HV_OK)
        goto done;
    char plane[64] = "";
    if ((st = hv_model_gan_load_generator(gan, model_path, plane, sizeof plane)) != HV_OK) {
        hv_error_wrap(st, "--validate-model (train.cnum = %d)", o.cnum);
        goto done;
    }
    const char *want = o.plane == HV_SPINE_CORONAL ? "coronal" : "sagittal";
    if (strcmp(plane, want)) {
        st = hv_error_set(HV_ERR_ARG, "--validate-model %s is a %s model (/meta plane) and "
                          "train.plane is %s: its val items would be the other plane's",
                          model_path, plane, want);
        goto done;
    }
    hv_log_info("validating %s (%s, cnum %d) on %zu val items of %s; compute: %s", model_path,
                plane, o.cnum, plan.n_val, o.file, comp.desc);
    if ((st = hv_train_val_copy_input(&vs, &vo)) != HV_OK ||
        (st = hv_train_val_metrics(&vs, &vo, &rows[0].m)) != HV_OK)
        goto done;
    snprintf(rows[0].method, sizeof rows[0].method, "copy_input");
    if ((st = hv_train_val_infer(gan, o.batch, &vs, &vo)) != HV_OK ||
        (st = hv_train_val_metrics(&vs, &vo, &rows[1].m)) != HV_OK)
        goto done;
    snprintf(rows[1].method, sizeof rows[1].method, "model");
done:
    hv_model_gan_free(gan);
    hv_nn_backend_free(be);
    hv_train_valout_free(&vo);
    hv_train_valset_free(&vs);
    hv_train_plan_free(&plan);
    hv_model_trainset_free(ts);
    return st;
}
