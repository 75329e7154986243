/*
 * cohort.c: write a phantom cohort in the reference layout.
 *
 *   outdir/raw/<id>/<id>.nii.gz       int16 HU
 *   outdir/raw/<id>/<id>_msk.nii.gz   uint8 VerSe labels (intent: label)
 *   outdir/raw/<id>/<id>.json         VerSe centroids in the mask's voxels
 *   outdir/split.json                 train/val/test by case, Genant grades
 *   outdir/ground_truth.csv           one row per vertebra
 *
 * Cases are independent, so they run in an OpenMP loop over case indices;
 * each thread renders with the inner loops serial (no nested parallelism).
 * Every file's bytes depend only on (options, case index): models come from
 * per-case RNG streams, the noise from a hash of the world position, the
 * centroids from exact integer sums, and the cohort-level files are written
 * after the loop in case order. Each file is written under a temporary name
 * and renamed (the io layer does this), so an interrupted run leaves either
 * the old file or the new one, never half of one.
 */
#include "hv/phantom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/io.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct case_result {
    int n_vert;
    hv_phantom_vert *vert;  /* owned copy of the case's ground truth */
    hv_status st;
    char *err;              /* owned: the failure detail              */
} case_result;

/* Centre of mass of each label in voxel coordinates, exact integer sums. */
static hv_status centroids_from_mask(const hv_volume *mk, const hv_phantom_case *c, hv_centroids *out)
{
    int64_t sum[32][3];
    int64_t cnt[32];
    memset(sum, 0, sizeof sum);
    memset(cnt, 0, sizeof cnt);
    const uint8_t *d = mk->data;
    for (int64_t k = 0; k < mk->dim[2]; k++)
        for (int64_t j = 0; j < mk->dim[1]; j++) {
            size_t row = hv_vol_idx(mk, 0, j, k);
            for (int64_t i = 0; i < mk->dim[0]; i++) {
                uint8_t l = d[row + (size_t)i];
                if (!l || l >= 32) continue;
                cnt[l]++;
                sum[l][0] += i;
                sum[l][1] += j;
                sum[l][2] += k;
            }
        }
    hv_affine_axcodes((const double(*)[4])mk->affine, out->direction);
    out->n = 0;
    out->items = calloc((size_t)c->n_vert, sizeof *out->items);
    if (!out->items) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    /* labels ascending (the vertebrae are stored top to bottom = ascending) */
    for (int v = 0; v < c->n_vert; v++) {
        int l = c->vert[v].label;
        if (l <= 0 || l >= 32 || cnt[l] == 0) continue;
        hv_centroid *ce = &out->items[out->n++];
        ce->label = l;
        ce->x = (double)sum[l][0] / (double)cnt[l];
        ce->y = (double)sum[l][1] / (double)cnt[l];
        ce->z = (double)sum[l][2] / (double)cnt[l];
    }
    return HV_OK;
}

static const char *orient_name(hv_phantom_orient o)
{
    switch (o) {
    case HV_PHANTOM_RAS: return "RAS";
    case HV_PHANTOM_LPS: return "LPS";
    case HV_PHANTOM_PIR: return "PIR";
    case HV_PHANTOM_OBLIQUE: return "oblique";
    }
    return "?";
}

static hv_status write_case(const hv_phantom_opts *o, const char *outdir, int index, case_result *res)
{
    hv_phantom_case *c = NULL;
    char *dir = NULL, *path = NULL;
    hv_centroids ctd;
    memset(&ctd, 0, sizeof ctd);
    hv_status st = hv_phantom_case_make(o, index, &c);
    if (st != HV_OK) goto done;
    st = hv_phantom_case_render(o, c);
    if (st != HV_OK) goto done;
    dir = hv_strfmt("%s/raw/%s", outdir, c->id);
    if (!dir) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = hv_mkdir_p(dir);
    if (st != HV_OK) goto done;

    char descrip[80];
    snprintf(descrip, sizeof descrip, "healthivert phantom seed=%llu case=%d %s", (unsigned long long)o->seed,
             index, orient_name(o->orientation));
    hv_nifti_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.descrip = descrip;
    wo.gzip_level = 1;
    path = hv_strfmt("%s/%s.nii.gz", dir, c->id);
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = hv_io_nifti_write(path, c->ct, &wo);
    if (st != HV_OK) goto done;
    free(path);
    wo.intent_label = 1;
    path = hv_strfmt("%s/%s_msk.nii.gz", dir, c->id);
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = hv_io_nifti_write(path, c->mask, &wo);
    if (st != HV_OK) goto done;
    free(path);
    st = centroids_from_mask(c->mask, c, &ctd);
    if (st != HV_OK) goto done;
    path = hv_strfmt("%s/%s.json", dir, c->id);
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (ctd.n > 0) st = hv_io_centroids_write(path, &ctd);
    else hv_log_warn("phantom %s: no vertebra inside the grid; no centroid file", c->id);
    if (st != HV_OK) goto done;

    res->vert = malloc((size_t)c->n_vert * sizeof *res->vert);
    if (!res->vert) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(res->vert, c->vert, (size_t)c->n_vert * sizeof *res->vert);
    res->n_vert = c->n_vert;
done:
    if (st != HV_OK) hv_error_wrap(st, "phantom case %d", index);
    free(ctd.items);
    free(path);
    free(dir);
    hv_phantom_case_free(c);
    return st;
}

/* Sets by case: each block of four consecutive cases holds two train, one
 * val and one test case in a seeded order, so proportions stay ~50/25/25 and
 * adding cases never moves earlier ones. */
static hv_split_set case_set(uint64_t seed, int index)
{
    static const hv_split_set block[4] = {HV_SPLIT_TRAIN, HV_SPLIT_TRAIN, HV_SPLIT_VAL, HV_SPLIT_TEST};
    int perm[4] = {0, 1, 2, 3};
    hv_rng r;
    hv_rng_seed(&r, seed, 0x5B17000000ull + (uint64_t)(index / 4));
    for (int i = 3; i > 0; i--) {
        int j = (int)hv_rng_below(&r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return block[perm[index % 4]];
}

static hv_status write_split(const hv_phantom_opts *o, const char *outdir, const case_result *res, int n_cases)
{
    hv_split s = {0, NULL};
    char *path = NULL;
    hv_status st = HV_OK;
    size_t total = 0;
    for (int i = 0; i < n_cases; i++) total += (size_t)res[i].n_vert;
    s.items = calloc(total ? total : 1, sizeof *s.items);
    if (!s.items) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_cases; i++) {
        hv_split_set set = case_set(o->seed, i);
        for (int v = 0; v < res[i].n_vert; v++) {
            hv_split_entry *e = &s.items[s.n];
            e->case_id = hv_strfmt("ph%04d", i);
            if (!e->case_id) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                goto done;
            }
            s.n++;
            e->label = res[i].vert[v].label;
            e->grade = res[i].vert[v].grade;
            e->set = set;
        }
    }
    path = hv_strfmt("%s/split.json", outdir);
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = hv_io_split_write(path, &s);
done:
    for (size_t i = 0; i < s.n; i++) free(s.items[i].case_id);
    free(s.items);
    free(path);
    return st;
}

static hv_status write_csv(const char *outdir, const case_result *res, int n_cases)
{
    hv_status st = HV_OK;
    char *path = hv_strfmt("%s/ground_truth.csv", outdir);
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    if (!path) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_atomic_open(path, &a, &f)) != HV_OK) goto done;
    fprintf(f, "case,label,level,grade,type,loss,healthy_ant_mm,healthy_mid_mm,healthy_post_mm,"
               "observed_ant_mm,observed_mid_mm,observed_post_mm,center_x,center_y,center_z,"
               "axis_x,axis_y,axis_z,depth_mm,width_mm,truncated\n");
    for (int i = 0; i < n_cases; i++)
        for (int v = 0; v < res[i].n_vert; v++) {
            /* "+ 0.0" turns -0.0 into 0.0, so a zero prints as "0.0000" */
            hv_phantom_vert q = res[i].vert[v];
            const hv_phantom_vert *p = &q;
            for (int k = 0; k < 3; k++) {
                q.center[k] += 0.0;
                q.axis[k] += 0.0;
            }
            const char *lvl = hv_label_name(p->label);
            fprintf(f,
                    "ph%04d,%d,%s,%d,%s,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.6f,%.6f,%.6f,"
                    "%.4f,%.4f,%d\n",
                    i, p->label, lvl ? lvl : "?", p->grade, hv_fracture_type_name(p->type), p->loss,
                    p->healthy_mm[0], p->healthy_mm[1], p->healthy_mm[2], p->observed_mm[0], p->observed_mm[1],
                    p->observed_mm[2], p->center[0], p->center[1], p->center[2], p->axis[0], p->axis[1],
                    p->axis[2], p->depth_mm, p->width_mm, p->truncated);
        }
    st = hv_atomic_commit(a, 0);
    a = NULL;
done:
    hv_atomic_abort(a);
    free(path);
    return st;
}

hv_status hv_phantom_cohort_write(const hv_phantom_opts *o, const char *outdir, int n_cases,
                                  hv_progress_fn progress, void *user)
{
    if (!o || !outdir || !*outdir) return hv_error_set(HV_ERR_ARG, "phantom cohort: missing options or folder");
    if (n_cases < 1) return hv_error_set(HV_ERR_ARG, "phantom cohort: %d cases (need at least 1)", n_cases);
    hv_phantom_case *probe = NULL;
    hv_status st = hv_phantom_case_make(o, 0, &probe); /* validates the options up front */
    hv_phantom_case_free(probe);
    if (st != HV_OK) return st;
    char *raw = hv_strfmt("%s/raw", outdir);
    if (!raw) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    st = hv_mkdir_p(raw);
    free(raw);
    if (st != HV_OK) return hv_error_wrap(st, "phantom cohort '%s'", outdir);
    case_result *res = calloc((size_t)n_cases, sizeof *res);
    if (!res) return hv_error_set(HV_ERR_NOMEM, "out of memory");

    long done_count = 0;
    int failed = 0; /* once set, remaining cases are skipped */
    double t0 = hv_time_now();
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n_cases; i++) {
        int skip;
#pragma omp atomic read
        skip = failed;
        if (skip) continue;
        res[i].st = write_case(o, outdir, i, &res[i]);
        if (res[i].st != HV_OK) {
            res[i].err = hv_strdup(hv_error_detail());
#pragma omp atomic write
            failed = 1;
        }
#pragma omp critical(hv_phantom_progress)
        {
            done_count++;
            if (progress) progress(user, done_count, n_cases);
        }
    }
    for (int i = 0; i < n_cases && st == HV_OK; i++)
        if (res[i].st != HV_OK)
            st = hv_error_set(res[i].st, "%s", res[i].err ? res[i].err : "phantom case failed");
    if (st == HV_OK) st = write_split(o, outdir, res, n_cases);
    if (st == HV_OK) st = write_csv(outdir, res, n_cases);
    if (st == HV_OK)
        hv_log_debug("phantom: %d cases written to %s in %.2f s", n_cases, outdir, hv_time_now() - t0);
    for (int i = 0; i < n_cases; i++) {
        free(res[i].vert);
        free(res[i].err);
    }
    free(res);
    if (st != HV_OK) return hv_error_wrap(st, "phantom cohort '%s'", outdir);
    return HV_OK;
}
