/*
 * stage.c: one manifest case through the pipeline, into the store's rows.
 *
 * The stages themselves are the pipeline's (src/pipeline, hv/pipeline.h);
 * this file only turns the runner's configuration into pipeline options and
 * a plan, and a finished case state into the fixed-layout rows the journal
 * and the store keep (hv/store.h): one case row, one row per vertebra, the
 * pictures, and the seconds of every table row by name. A case that cannot
 * be processed does not abort anything: it comes back failed with the stage
 * and the reason ("load: <file>: not a NIfTI file"), which the runner
 * records.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "run_internal.h"

hv_status hv_stage_ctx_init(hv_stage_ctx *ctx, const hv_pipe_table *t,
                            const hv_measure_opts *mo, int use_centroids, const char *synth,
                            int pictures, const hv_split *split, const hv_run_synth *rs,
                            const hv_run_attn *ra, const char *grader)
{
    memset(ctx, 0, sizeof *ctx);
    hv_pipe_opts_default(&ctx->opts);
    ctx->opts.measure = *mo;
    ctx->opts.use_centroids = use_centroids;
    ctx->opts.synth = synth;
    ctx->opts.pictures = pictures;
    if (rs && rs->model) {
        ctx->opts.synth_model = rs->model;
        ctx->opts.synth_fallback = rs->fallback;
        ctx->opts.synth_nifti_dir = rs->nifti_dir[0] ? rs->nifti_dir : NULL;
        ctx->opts.synth_crops = rs->crops;
        ctx->synth_crops = rs->crops;
        ctx->synth_provenance = rs->provenance;
    }
    if (grader) {
        /* a grader that reads the crops (senet3d, trained at gather): its
         * needs switch on straighten and crop, and the store keeps a box
         * of every crop for it */
        const hv_pipe_grader *g = hv_pipe_grader_find(grader);
        if (!g) return HV_ERR_UNSUPPORTED;
        ctx->opts.grader = g->name;
        ctx->crop3d = (g->needs & HV_PIPE_CROPS) != 0;
    }
    unsigned want = HV_PIPE_GRADES | HV_PIPE_PICTURES | HV_PIPE_ALL_EXTRA;
    if (ra && ra->model) {
        /* the maps are wanted (the store's columns), not only used by the
         * gan: a crop the classifier fails on is NaN, the stage failing as
         * a whole fails the case */
        ctx->opts.attention_model = ra->model;
        ctx->attn_provenance = ra->provenance;
        ctx->attn_store = ra->store;
        want |= HV_PIPE_ATTENTION;
    }
    ctx->split = split;
    if (t->n + 1 > HV_STORE_MAX_STAGES)
        return hv_error_set(HV_ERR_LIMIT, "%d pipeline stages and the store's own: at most %d",
                            t->n, HV_STORE_MAX_STAGES);
    /* the store keeps the per-case grades of the rule and, after gather, the
     * trained grader's; the run wants grades and, when configured, pictures
     * (and whatever stages added to the table make) */
    hv_status st = hv_pipe_plan_make(t, &ctx->opts, want, &ctx->plan);
    if (st != HV_OK) return st;
    ctx->n_stages = t->n + 1;
    for (int i = 0; i < t->n; i++) ctx->names[i] = t->stage[i].name;
    ctx->names[t->n] = "store";
    return HV_OK;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= cap) {
        /* keep the tail: for paths and messages the end is the useful part */
        src += n - (cap - 4);
        snprintf(dst, cap, "...%s", src);
    } else {
        memcpy(dst, src, n + 1);
    }
}

static void vertebra_row(const hv_stage_ctx *ctx, const hv_case *cs, int case_index,
                         const hv_vert_measure *v, const hv_pipe_attn *attn, hv_run_vrow *row)
{
    memset(row, 0, sizeof *row);
    row->case_index = case_index;
    row->label = v->label;
    copy_str(row->level, sizeof row->level, hv_label_name(v->label));
    row->known_grade = -1;
    row->split_set = -1;
    if (ctx->split) {
        long k = hv_io_split_find(ctx->split, cs->id, v->label);
        if (k >= 0) {
            row->known_grade = ctx->split->items[k].grade;
            row->split_set = (int32_t)ctx->split->items[k].set;
        }
    }
    /* the rule on every vertebra, truncated ones too (the store's contract:
     * the flags say which to trust); the grade stage's -1 for truncated
     * vertebrae is for the per-case reports */
    row->grade_rule = hv_measure_genant_vert(v);
    row->grade_pred = -1;
    row->flags = v->flags;
    row->volume_ml = v->volume_ml;
    row->mean_hu = v->mean_hu;
    for (int d = 0; d < 3; d++) row->centroid[d] = v->centroid[d];
    for (int g = 0; g < HV_REG_COUNT; g++) {
        row->h_ori[g] = v->h_ori[g];
        row->h_syn[g] = v->h_syn[g];
        row->rhlv[g] = v->rhlv[g];
    }
    hv_run_vrow_attn_none(row);
    if (attn && ctx->attn_store > 0 && attn->cam) {
        row->p_fracture = attn->p_fracture;
        row->cam_mass_body = attn->mass_in_body;
        row->cam_max_slice = attn->max_slice;
    }
}

/* The deflated chunks z[i] (len[i] bytes; NULL/0: none) of the n
 * vertebrae's volume w packed into r->vol_z[w] and r->vol_z_len[w]; frees
 * every z[i]. st: the status so far (on an error nothing is packed). */
static hv_status pack_vols(hv_case_result *r, int w, size_t n, uint8_t **z, const size_t *len,
                           hv_status st)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += len[i];
    if (st == HV_OK && !(r->vol_z[w] = malloc(total ? total : 1)))
        st = hv_error_set(HV_ERR_NOMEM, "out of memory for /vertebrae/%s", hv_store_vol_name(w));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (st == HV_OK && len[i]) memcpy(r->vol_z[w] + off, z[i], len[i]);
        off += len[i];
        r->vol_z_len[w][i] = (uint32_t)len[i];
        free(z[i]);
    }
    if (st != HV_OK) {
        free(r->vol_z[w]);
        r->vol_z[w] = NULL;
        hv_error_wrap(st, "/vertebrae/%s", hv_store_vol_name(w));
    }
    return st;
}

/* Crop volume w of the n vertebrae (vols[i]: vertebra i's, NULL: none)
 * deflated into their store chunks here, on the rank that made them
 * (hv_store_cam_encode for the F32 maps, hv_store_crop_encode for the u8
 * crops), into r->vol_z[w] and r->vol_z_len[w]. */
static hv_status encode_vols(hv_case_result *r, int w, size_t n, const hv_volume *const *vols)
{
    uint8_t *z[HV_RUN_MAX_VERT] = {NULL};
    size_t len[HV_RUN_MAX_VERT] = {0};
    hv_status st = HV_OK;
    if (n > HV_RUN_MAX_VERT) return hv_error_set(HV_ERR_ARG, "%zu vertebrae", n);
    for (size_t i = 0; i < n && st == HV_OK; i++) {
        if (!vols[i]) continue;
        st = w == HV_STORE_VOL_CAM ? hv_store_cam_encode(vols[i], &z[i], &len[i])
                                   : hv_store_vol_encode(w, vols[i], &z[i], &len[i]);
    }
    return pack_vols(r, w, n, z, len, st);
}

/* The original crops beside the synthesized ones (synthesis.crops = full):
 * for every vertebra with a synthesized CT crop, its input crop's CT as
 * synth_ct is made (hv_model_trainset_ct_u8: the crops' 0..255 truncated)
 * and the target's de-pedicled body (the vertebra's label value where the
 * crop's labels hold it, 0 elsewhere), each deflated into
 * /vertebrae/orig_ct and orig_label's chunk at once, so one vertebra's
 * volumes are in memory at a time. */
static hv_status encode_orig(hv_case_result *r, const hv_pipe_state *s, size_t n)
{
    uint8_t *z[2][HV_RUN_MAX_VERT] = {{NULL}};
    size_t len[2][HV_RUN_MAX_VERT] = {{0}};
    hv_volume *ct8 = NULL, *lab8 = NULL;
    hv_status st = HV_OK;
    if (n > HV_RUN_MAX_VERT) return hv_error_set(HV_ERR_ARG, "%zu vertebrae", n);
    for (size_t i = 0; i < n && i < s->n_syn && st == HV_OK; i++) {
        if (!s->syn_ct || !s->syn_ct[i]) continue;
        const int label = s->m->v[i].label;
        const hv_spine_crop *cr = hv_pipe_crop_find(s, label);
        if (!cr || !cr->ct || !cr->labels) {
            st = hv_error_set(HV_ERR_ARG, "vertebra %d has a synthesized crop but no crop", label);
            break;
        }
        if ((st = hv_model_trainset_ct_u8(cr->ct, &ct8)) != HV_OK) break;
        if ((st = hv_vol_create(&lab8, cr->labels->dim, HV_DTYPE_U8, cr->labels->affine)) != HV_OK)
            break;
        uint8_t *o = lab8->data;
        const uint8_t *l8 = cr->labels->dtype == HV_DTYPE_U8 ? cr->labels->data : NULL;
        for (size_t q = 0; q < lab8->nvox; q++)
            o[q] = (l8 ? l8[q] == label : lrint(hv_vol_get(cr->labels, q)) == label)
                       ? (uint8_t)label
                       : 0;
        st = hv_store_crop_encode(ct8, &z[0][i], &len[0][i]);
        if (st == HV_OK) st = hv_store_crop_encode(lab8, &z[1][i], &len[1][i]);
        hv_vol_free(ct8);
        hv_vol_free(lab8);
        ct8 = lab8 = NULL;
    }
    hv_vol_free(ct8);
    hv_vol_free(lab8);
    hv_status s1 = pack_vols(r, HV_STORE_VOL_ORIG_CT, n, z[0], len[0], st);
    hv_status s2 = pack_vols(r, HV_STORE_VOL_ORIG_LABEL, n, z[1], len[1], s1);
    return s2;
}

void hv_stage_run_case(const hv_stage_ctx *ctx, const hv_case *cs, int case_index,
                       hv_case_result *r)
{
    hv_pipe_state s;
    hv_pipe_state_init(&s, cs);
    s.loader = ctx->loader;
    r->state = HV_CASE_FAILED;
    r->n_img = 0;
    r->img = NULL;
    r->qc = NULL;
    memset(r->vol_z, 0, sizeof r->vol_z);
    memset(r->vol_z_len, 0, sizeof r->vol_z_len);
    r->c.n_vert = 0;
    r->c.error[0] = 0;
    r->c.error_code = 0;
    for (int i = 0; i < HV_STORE_MAX_STAGES; i++) r->seconds[i] = 0;
    hv_error_clear();

    hv_status st = hv_pipe_run(&ctx->plan, &s);
    for (int i = 0; i < ctx->plan.t->n; i++) r->seconds[i] = s.seconds[i];
    if (st != HV_OK) {
        copy_str(r->c.error, sizeof r->c.error, hv_error_detail());
        r->c.error_code = (int32_t)st;
        goto done;
    }
    for (size_t i = 0; i < s.m->n; i++)
        vertebra_row(ctx, cs, case_index, &s.m->v[i],
                     (s.have & HV_PIPE_ATTENTION) ? hv_pipe_attn_find(&s, s.m->v[i].label) : NULL,
                     &r->v[i]);
    r->c.n_vert = (int32_t)s.m->n;
    {
        /* the crop volumes the store keeps: attention.store = full's maps,
         * synthesis.crops' synthesized label (masks) and CT (full) crops
         * with (full) the original crops they replace, grader senet3d's
         * boxes; a vertebra without one (no map; a gan fallback) gets
         * length 0, an all-zero slot */
        const hv_volume *vols[HV_RUN_MAX_VERT];
        hv_volume *boxes[HV_RUN_MAX_VERT] = {NULL};
        const size_t n = s.m->n;
        for (int w = 0; w < HV_STORE_N_VOL && st == HV_OK; w++) {
            int want = w == HV_STORE_VOL_CAM ? ctx->attn_store == 2 && (s.have & HV_PIPE_ATTENTION)
                       : w == HV_STORE_VOL_SYNTH_LABEL ? ctx->synth_crops >= 1
                       : w == HV_STORE_VOL_SYNTH_CT    ? ctx->synth_crops >= 2
                       : w == HV_STORE_VOL_CROP3D      ? ctx->crop3d && (s.have & HV_PIPE_CROPS)
                       : w == HV_STORE_VOL_ORIG_CT     ? ctx->synth_crops >= 2
                                                       : 0; /* orig_label: with orig_ct */
            if (!want) continue;
            if (w == HV_STORE_VOL_ORIG_CT) {
                st = encode_orig(r, &s, n);
                continue;
            }
            if (w == HV_STORE_VOL_CROP3D) {
                /* the box of the vertebra's crop (by label: the crops
                 * follow the straightened case's vertebrae, not s.m's);
                 * none for a vertebra without a crop */
                for (size_t i = 0; i < n && i < HV_RUN_MAX_VERT && st == HV_OK; i++) {
                    for (size_t c = 0; c < s.n_crops; c++) {
                        if (!s.crops[c] || s.crops[c]->label != s.m->v[i].label) continue;
                        st = hv_spine_crop_box(s.crops[c], HV_RUN_BOX, &boxes[i]);
                        break;
                    }
                    vols[i] = boxes[i];
                }
                if (st == HV_OK) st = encode_vols(r, w, n, vols);
                for (size_t i = 0; i < n && i < HV_RUN_MAX_VERT; i++) hv_vol_free(boxes[i]);
                continue;
            }
            for (size_t i = 0; i < n && i < HV_RUN_MAX_VERT; i++) {
                const hv_pipe_attn *a = w == HV_STORE_VOL_CAM
                                            ? hv_pipe_attn_find(&s, s.m->v[i].label)
                                            : NULL;
                vols[i] = w == HV_STORE_VOL_CAM ? (a ? a->cam : NULL)
                          : i >= s.n_syn        ? NULL
                          : w == HV_STORE_VOL_SYNTH_LABEL ? (s.syn_labels ? s.syn_labels[i] : NULL)
                                                          : (s.syn_ct ? s.syn_ct[i] : NULL);
            }
            st = encode_vols(r, w, n, vols);
        }
        if (st != HV_OK) {
            for (int w = 0; w < HV_STORE_N_VOL; w++) {
                free(r->vol_z[w]);
                r->vol_z[w] = NULL;
            }
            copy_str(r->c.error, sizeof r->c.error, hv_error_detail());
            r->c.error_code = (int32_t)st;
            r->c.n_vert = 0;
            goto done;
        }
    }
    if (s.have & HV_PIPE_PICTURES) {
        r->n_img = s.n_img;
        r->img = s.img;
        r->qc = s.qc;
        s.img = NULL;
        s.qc = NULL;
    }
    r->state = HV_CASE_DONE;
done:
    hv_pipe_state_clear(&s);
}
