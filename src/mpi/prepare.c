/*
 * prepare.c: the `prepare` stage (the GAN's training set, issue 11) and the
 * merge of its per-case parts (docs/model.md, "Training set file").
 *
 * The stage is one more row of the pipeline table (HV_PIPE_EXTRA0, needs the
 * crops), added by the runner when prepare.enabled = 1, so `healthivert
 * prepare` is `healthivert run` with this row: the same manifest, work
 * queue, journal, kill/resume and store. Per case it writes every cropped
 * vertebra (windowed CT truncated to u8, de-pedicled labels, the known grade,
 * the case's split and the grades of all its labels) into
 * <output.dir>/prepare/<case>.h5, atomically; a vertebra without a crop, or
 * touching the field of view (prepare.skip_fov), is recorded in the part as
 * skipped with the reason. The journal then says the case is done; after
 * the last case rank 0 merges the parts of the done cases, in case order,
 * into the training file. Parts are self-contained, so the merged file does
 * not depend on which rank wrote which part, nor on the rank count.
 *
 * Known grades and the split come from the run's split (input.split, the
 * manifest's grades, or the phantom cohort's split.json, which holds the
 * phantom's true grades); a case the split does not name is
 * HV_MODEL_SPLIT_NONE with unknown grades.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "run_internal.h"

/* Remove "<name>.tmp<pid>" files a killed writer left in `dir` (all of
 * them when prefix is NULL, else those starting with prefix). */
static void remove_tmp(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *t = strstr(e->d_name, ".h5.tmp");
        if (!t || (prefix && strncmp(e->d_name, prefix, strlen(prefix)))) continue;
        char *p = hv_strfmt("%s/%s", dir, e->d_name);
        if (p && remove(p) == 0) hv_log_info("prepare: removed %s (left by a killed writer)", p);
        free(p);
    }
    if (d) closedir(d);
}

void hv_prepare_clean(const hv_prepare_ctx *pc, const char *train)
{
    remove_tmp(pc->parts, NULL);
    char *dir = hv_strdup(train);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : train;
    if (slash) *slash = 0;
    remove_tmp(slash ? (dir[0] ? dir : "/") : ".", base);
    free(dir);
}

hv_status hv_prepare_part_path(const hv_prepare_ctx *pc, const char *case_id, char *buf,
                               size_t cap)
{
    hv_status st = hv_file_name_check(case_id, "case id");
    if (st != HV_OK) return st;
    int n = snprintf(buf, cap, "%s/%s.h5", pc->parts, case_id);
    if (n < 0 || (size_t)n >= cap)
        return hv_error_set(HV_ERR_LIMIT, "prepare: part path of case %s too long", case_id);
    return HV_OK;
}

/* The case's split: the set of its first entry in the split file. */
static hv_model_split case_split(const hv_split *sp, const char *id)
{
    for (size_t i = 0; sp && i < sp->n; i++)
        if (!strcmp(sp->items[i].case_id, id)) return (hv_model_split)sp->items[i].set;
    return HV_MODEL_SPLIT_NONE;
}

/* A crop's Grad-CAM++ map as the training file keeps it (spec 7: the map
 * * 255 cast to uint8, what the reference loaded): truncated, like the
 * store's /vertebrae/cam. A crop the stage gave no map (the classifier's
 * output was not finite) gets zeros, the reference's value on slices
 * without a stored map, i.e. an all-ones HGAM input; the log says so. */
static hv_status cam_u8(const hv_pipe_attn *a, const hv_spine_crop *cr, const char *id,
                        hv_volume **out)
{
    const hv_volume *cam = a ? a->cam : NULL;
    hv_status st = hv_vol_create(out, cam ? cam->dim : cr->ct->dim, HV_DTYPE_U8,
                                 cam ? cam->affine : cr->ct->affine);
    if (st != HV_OK) return st;
    uint8_t *o = (*out)->data;
    if (!cam) {
        memset(o, 0, (*out)->nvox);
        hv_log_warn("case %s %s: no attention map (the classifier's output was not finite): "
                    "its training item gets a zero map", id,
                    hv_label_name(cr->label) ? hv_label_name(cr->label) : "?");
        return HV_OK;
    }
    const float *f = cam->data;
    for (size_t q = 0; q < cam->nvox; q++) {
        double x = (double)f[q] * 255.0;
        o[q] = !(x > 0) ? 0 : x >= 255 ? 255 : (uint8_t)x;
    }
    return HV_OK;
}

static hv_status stage_prepare(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const hv_prepare_ctx *pc = o->user;
    const hv_spine_verts *vs = s->spine->verts;
    const char *id = s->cs->id;
    hv_status st = HV_OK;
    char path[1300];
    hv_model_train_item *items = calloc(vs->n ? vs->n : 1, sizeof *items);
    hv_model_train_skip *skip = calloc(vs->n ? vs->n : 1, sizeof *skip);
    hv_volume **ct8 = calloc(vs->n ? vs->n : 1, sizeof *ct8);
    hv_volume **cam8 = calloc(vs->n ? vs->n : 1, sizeof *cam8);
    /* the attention stage ran (attention.model set): every item gets its map */
    const int with_cam = (s->have & HV_PIPE_ATTENTION) != 0;
    int8_t grades[32];
    size_t ni = 0, nk = 0;
    if (!pc) return hv_error_set(HV_ERR_INTERNAL, "prepare: no context");
    if (!items || !skip || !ct8 || !cam8) {
        st = hv_error_set(HV_ERR_NOMEM, "prepare: out of memory");
        goto done;
    }
    if ((st = hv_prepare_part_path(pc, id, path, sizeof path)) != HV_OK) goto done;
    const hv_model_split split = case_split(pc->split, id);
    for (int l = 0; l < 32; l++) {
        long k = pc->split ? hv_io_split_find(pc->split, id, l) : -1;
        grades[l] = (int8_t)(k >= 0 ? pc->split->items[k].grade : -1);
    }
    for (size_t v = 0; v < vs->n; v++) {
        const hv_spine_vert *sv = &vs->v[v];
        const hv_spine_crop *cr = hv_pipe_crop_find(s, sv->label);
        const char *why = NULL;
        if (!cr) why = sv->has_body ? "no crop (the crop failed; the run log says why)"
                                    : "no crop: no vertebral body found";
        else if (pc->skip_fov && (sv->flags & HV_SPINE_FLAG_FOV))
            why = "cut by the field of view (touches the volume border; prepare.skip_fov)";
        else if (sv->label < 1 || sv->label > 31) why = "label outside 1..31";
        if (why) {
            skip[nk++] = (hv_model_train_skip){id, sv->label, why};
            hv_log_info("case %s %s: not a training item: %s", id,
                        hv_label_name(sv->label) ? hv_label_name(sv->label) : "?", why);
            continue;
        }
        if ((st = hv_model_trainset_ct_u8(cr->ct, &ct8[ni])) != HV_OK) goto done;
        if (with_cam && (st = cam_u8(hv_pipe_attn_find(s, sv->label), cr, id, &cam8[ni])) != HV_OK)
            goto done;
        items[ni] = (hv_model_train_item){id, sv->label, grades[sv->label], split, grades,
                                          ct8[ni], cr->labels, cam8[ni]};
        ni++;
    }
    hv_run_crashpoint("prepare-part");
    st = hv_model_trainset_write(path, items, ni, skip, nk, id, pc->band_rows);
done:
    for (size_t i = 0; ct8 && i < vs->n; i++) hv_vol_free(ct8[i]);
    for (size_t i = 0; cam8 && i < vs->n; i++) hv_vol_free(cam8[i]);
    free(ct8);
    free(cam8);
    free(items);
    free(skip);
    return st;
}

const hv_pipe_stage hv_prepare_stage = {
    "prepare", "the GAN's training set: every cropped vertebra into output.dir/prepare/<case>.h5",
    HV_PIPE_CROPS, HV_PIPE_ATTENTION, HV_PIPE_EXTRA0, NULL, NULL, stage_prepare};

hv_status hv_prepare_table(const hv_pipe_table *t, hv_pipe_stage *rows, hv_pipe_table *out)
{
    if (t->n + 1 > HV_PIPE_MAX_STAGES)
        return hv_error_set(HV_ERR_LIMIT, "prepare: %d stages and prepare: at most %d", t->n,
                            HV_PIPE_MAX_STAGES);
    memcpy(rows, t->stage, (size_t)t->n * sizeof *rows);
    rows[t->n] = hv_prepare_stage;
    out->stage = rows;
    out->n = t->n + 1;
    return HV_OK;
}

hv_status hv_prepare_merge(const hv_prepare_ctx *pc, const hv_manifest *man,
                           const uint8_t *state, const char *out, size_t *n_items,
                           size_t *n_skipped)
{
    hv_status st = HV_OK;
    char **paths = calloc(man->n ? man->n : 1, sizeof *paths);
    size_t np = 0;
    if (!paths) return hv_error_set(HV_ERR_NOMEM, "prepare: out of memory");
    for (size_t i = 0; i < man->n && st == HV_OK; i++) {
        if (state[i] != HV_CASE_DONE) continue;
        char path[1300];
        if ((st = hv_prepare_part_path(pc, man->cases[i].id, path, sizeof path)) != HV_OK) break;
        st = hv_model_trainset_part_check(path, man->cases[i].id);
        if (st != HV_OK) {
            hv_error_wrap(st, "prepare: case %s is done but its training part is not usable "
                          "(run again with --set run.fresh=1)", man->cases[i].id);
            break;
        }
        if (!(paths[np++] = hv_strdup(path))) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
    }
    if (st == HV_OK) {
        hv_log_info("prepare: merging %zu case parts into %s", np, out);
        st = hv_model_trainset_merge((const char *const *)paths, np, out, n_items, n_skipped);
    }
    for (size_t i = 0; i < np; i++) free(paths[i]);
    free(paths);
    return st;
}
