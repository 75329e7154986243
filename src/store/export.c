/*
 * export.c: a store as tidy tables (cases.csv, vertebrae.csv,
 * grader_metrics.csv, grader_folds.csv) and, on demand, its QC pictures as
 * PNGs and its attention maps as NIfTI volumes and pictures
 * (hv_store_export).
 *
 * One row per case and per vertebra of a done case, numbers printed with 17
 * significant digits so that two exports are equal exactly when the doubles
 * are: the tests compare runs at different rank counts and after kills by
 * comparing these files byte for byte. The QC pictures are drawn here, not
 * stored drawn: the store keeps the CT and the label as separate channels
 * (the label stays usable as a mask) and the contour is painted at export.
 *
 * The attention maps (/vertebrae/cam) are drawn here the same way, with the
 * attention stage's own blend (hv_io_jet_overlay): the store keeps no CT
 * crop, only the QC pictures' two slices, so a map's slice can be laid
 * over CT only where that CT is stored, the QC picture's sagittal slice
 * (the crop's LR centre); any other slice is drawn alone, in JET, rather
 * than over the CT of another place.
 *
 * The gan's synthesized crops (/vertebrae/synth_label, synth_ct) and, with
 * synthesis.crops = full, the original crops beside them (orig_ct,
 * orig_label) are written as the u8 volumes they are, one NIfTI per crop
 * (export_synth),
 * and each synthesized vertebra gets a picture on the same terms as the
 * maps: the original CT the store holds is the QC picture's sagittal slice,
 * so the picture shows that slice, original beside synthesized, with both
 * targets' outlines, and only for a vertebra that has a QC picture.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/spine.h"
#include "store_internal.h"

/* Open DIR/NAME for writing under a temporary name (hv_atomic_open): a
 * table appears whole at its commit or not at all, so an export that fails
 * halfway never leaves a cut table that looks complete. */
static hv_status table_open(const char *dir, const char *name, hv_atomic_file **a, FILE **f)
{
    char *fn = hv_strfmt("%s/%s", dir, name);
    if (!fn) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    hv_status st = hv_atomic_open(fn, a, f);
    free(fn);
    return st;
}

/* Commit the table open in *a (and forget it: *a = NULL). */
static hv_status table_commit(hv_atomic_file **a)
{
    hv_status st = hv_atomic_commit(*a, 0);
    *a = NULL;
    return st;
}

static hv_status export_tables(const char *path, const char *dir)
{
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    double *secs = NULL;
    size_t nv = 0;
    FILE *f = NULL;
    hv_atomic_file *a = NULL;
    hv_status st = hv_mkdir_p(dir);
    if (st != HV_OK) return st;
    if ((st = hv_store_open_serial(path, 0, &s)) != HV_OK) return st;
    size_t nc = (size_t)s->n_cases, ns = (size_t)s->n_stages;
    if ((st = hv_store_read_tables(s, &cr, &stt, &secs, &vr, &nv)) != HV_OK) goto done;

    if ((st = table_open(dir, "cases.csv", &a, &f)) != HV_OK) goto done;
    fprintf(f, "case,status,n_vert,rank,attempt,error_code,error,ct_path,mask_path");
    /* one column per stage, named from the store (v1: its six fixed names) */
    for (size_t k = 0; k < ns; k++) fprintf(f, ",s_%s", s->stage_ptr[k]);
    fputc('\n', f);
    for (size_t i = 0; i < nc; i++) {
        hv_csv_put_str(f, cr[i].id);
        fprintf(f, ",%s,%d,%d,%d,%s,", hv_case_state_name(stt[i]), cr[i].n_vert, cr[i].rank,
                cr[i].attempt, cr[i].error_code ? hv_status_name((hv_status)cr[i].error_code) : "");
        hv_csv_put_str(f, cr[i].error);
        fputc(',', f);
        hv_csv_put_str(f, cr[i].ct_path);
        fputc(',', f);
        hv_csv_put_str(f, cr[i].mask_path);
        for (size_t k = 0; k < ns; k++) fprintf(f, ",%.6f", secs[i * ns + k]);
        fputc('\n', f);
    }
    if ((st = table_commit(&a)) != HV_OK) goto done;

    if ((st = table_open(dir, "vertebrae.csv", &a, &f)) != HV_OK) goto done;
    fprintf(f, "case,label,level,known_grade,split,grade_rule,grade_pred,flags,volume_ml,mean_hu,"
               "cx,cy,cz,h_ori_all,h_ori_ant,h_ori_mid,h_ori_post,h_syn_all,h_syn_ant,h_syn_mid,"
               "h_syn_post,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post,p_fracture,cam_mass_body,"
               "cam_max_slice\n");
    for (size_t i = 0; i < nv; i++) {
        const hv_run_vrow *v = &vr[i];
        char fl[256];
        hv_measure_flags_str(v->flags, fl, sizeof fl);
        hv_csv_put_str(f, cr[v->case_index].id);
        fprintf(f, ",%d,%.8s,%d,%s,%d,%d,%s", v->label, v->level, v->known_grade,
                v->split_set >= 0 ? hv_split_set_name((hv_split_set)v->split_set) : "",
                v->grade_rule, v->grade_pred, fl);
        const double *cols[] = {&v->volume_ml, &v->mean_hu};
        for (int k = 0; k < 2; k++) fputc(',', f), hv_csv_put_num(f, *cols[k]);
        for (int k = 0; k < 3; k++) fputc(',', f), hv_csv_put_num(f, v->centroid[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), hv_csv_put_num(f, v->h_ori[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), hv_csv_put_num(f, v->h_syn[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), hv_csv_put_num(f, v->rhlv[k]);
        fputc(',', f), hv_csv_put_num(f, v->p_fracture);
        fputc(',', f), hv_csv_put_num(f, v->cam_mass_body);
        fprintf(f, ",%d\n", v->cam_max_slice);
    }
    if ((st = table_commit(&a)) != HV_OK) goto done;

    hv_grader_result g;
    int present = 0;
    if ((st = hv_store_read_grader(s, &g, &present)) != HV_OK) goto done;
    if (present) {
        if ((st = table_open(dir, "grader_metrics.csv", &a, &f)) != HV_OK) goto done;
        fprintf(f, "method,evaluated_on,macro_f1,macro_precision,macro_recall,accuracy,kappa_linear,"
                   "n_folds,fold_mean_f1,fold_var_f1,fold_mean_precision,fold_var_precision,"
                   "fold_mean_recall,fold_var_recall,note\n");
        fprintf(f, "%s,%s,", g.method, g.evaluated_on);
        if (g.have_metrics) {
            hv_csv_put_num(f, g.m.macro_f1), fputc(',', f);
            hv_csv_put_num(f, g.m.macro_precision), fputc(',', f);
            hv_csv_put_num(f, g.m.macro_recall), fputc(',', f);
            hv_csv_put_num(f, g.m.accuracy), fputc(',', f);
            hv_csv_put_num(f, g.m.kappa_linear);
        } else {
            fputs(",,,,", f);
        }
        /* fold mean and population variance of macro F1, precision, recall
         * (hv_grader_result's order: F1, P, R, accuracy) */
        fprintf(f, ",%d,", g.n_folds);
        for (int q = 0; q < 3; q++) {
            if (g.n_folds) hv_csv_put_num(f, g.mean[q]);
            fputc(',', f);
            if (g.n_folds) hv_csv_put_num(f, g.var[q]);
            fputc(',', f);
        }
        hv_csv_put_str(f, g.note);
        fputc('\n', f);
        if (g.have_metrics) {
            fprintf(f, "\ntrue\\pred");
            for (int c = 0; c < g.m.n_classes; c++) fprintf(f, ",%d", g.m.classes[c]);
            fputc('\n', f);
            for (int r = 0; r < g.m.n_classes; r++) {
                fprintf(f, "%d", g.m.classes[r]);
                for (int c = 0; c < g.m.n_classes; c++) fprintf(f, ",%ld", g.m.confusion[r][c]);
                fputc('\n', f);
            }
        }
        if ((st = table_commit(&a)) != HV_OK) goto done;
        if (g.n_folds > 0) {
            if ((st = table_open(dir, "grader_folds.csv", &a, &f)) != HV_OK) goto done;
            fprintf(f, "fold,macro_f1,macro_precision,macro_recall,accuracy\n");
            for (int k = 0; k < g.n_folds; k++) {
                fprintf(f, "%d", k);
                for (int c = 0; c < 4; c++) fputc(',', f), hv_csv_put_num(f, g.fold_metrics[k][c]);
                fputc('\n', f);
            }
            if ((st = table_commit(&a)) != HV_OK) goto done;
        }
    }
done:
    if (a) hv_atomic_abort(a);
    free(secs);
    free(cr);
    free(stt);
    free(vr);
    hv_store_close(s);
    return st;
}

/* The n vertebra rows of case ci into rows (attention columns "no value"
 * where the store has none). */
static hv_status case_rows(hv_store *s, long ci, int n, hv_run_vrow *rows)
{
    for (int k = 0; k < n; k++) hv_run_vrow_attn_none(&rows[k]);
    hid_t vt = hv_store_vrow_type();
    hsize_t vstart = (hsize_t)ci * HV_RUN_MAX_VERT, vcnt = (hsize_t)n;
    hid_t vfs = H5Dget_space(s->verts), vms = H5Screate_simple(1, &vcnt, NULL);
    herr_t e = H5Sselect_hyperslab(vfs, H5S_SELECT_SET, &vstart, NULL, &vcnt, NULL);
    if (e >= 0) e = H5Dread(s->verts, vt, vms, vfs, H5P_DEFAULT, rows);
    H5Sclose(vms);
    H5Sclose(vfs);
    H5Tclose(vt);
    if (e < 0) return hv_error_set(HV_ERR_HDF5, "store: cannot read the vertebra rows");
    return HV_OK;
}

/* One view of a QC slot as RGB: the CT in grey, the target's contour (label
 * pixels with a 4-neighbour outside the label, or on the border) in red. */
static hv_status export_qc_png(const char *path, const char *dir, long *n_png)
{
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL, *slot = NULL;
    unsigned char *rgb = NULL;
    char *qdir = NULL, *fn = NULL;
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    if (s->qc < 0) goto done; /* images = none, or a store from before the QC pictures */
    size_t nc = (size_t)s->n_cases;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    slot = malloc(HV_RUN_QC_BYTES);
    rgb = malloc(plane * 3);
    qdir = hv_strfmt("%s/qc", dir);
    if (!cr || !stt || !slot || !rgb || !qdir) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_mkdir_p(qdir)) != HV_OK) goto done;
    for (size_t i = 0; i < nc && st == HV_OK; i++) {
        if (stt[i] != HV_CASE_DONE || cr[i].n_vert <= 0 || cr[i].n_vert > HV_RUN_MAX_VERT) continue;
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        const hsize_t vstart = (hsize_t)i * HV_RUN_MAX_VERT;
        if ((st = case_rows(s, (long)i, cr[i].n_vert, rows)) != HV_OK) {
            hv_error_wrap(st, "case %s", cr[i].id);
            break;
        }
        for (int k = 0; k < cr[i].n_vert && st == HV_OK; k++) {
            int any = 0;
            st = hv_store_read_qc(s, (long)vstart + k, slot, &any);
            if (st != HV_OK) {
                hv_error_wrap(st, "case %s", cr[i].id);
                break;
            }
            if (!any) continue; /* no picture: the spine stage failed there */
            for (int view = 0; view < HV_QC_VIEWS && st == HV_OK; view++) {
                const uint8_t *v0 = slot + (size_t)view * HV_QC_CHANNELS * plane;
                hv_io_paint_contours(rgb, 3 * HV_RUN_QC, v0 + HV_QC_CT * plane,
                                     v0 + HV_QC_LABEL * plane, HV_RUN_QC, HV_RUN_QC, 255);
                free(fn);
                fn = hv_strfmt("%s/%s_%.8s_%s.png", qdir, cr[i].id, rows[k].level,
                               view == HV_QC_SAG ? "sag" : "cor");
                if (!fn) {
                    st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                    break;
                }
                st = hv_io_png_write(fn, HV_RUN_QC, HV_RUN_QC, 3, rgb);
                if (st == HV_OK && n_png) (*n_png)++;
            }
        }
    }
done:
    free(fn);
    free(qdir);
    free(rgb);
    free(slot);
    free(cr);
    free(stt);
    hv_store_close(s);
    return st;
}

/* ------------------------------------------------------- attention maps */

/* The QC pictures and the maps share their sagittal grid: the QC slot's
 * sagittal view is the crop's LR slice HV_RUN_CAM_I / 2 (hv_spine_qc_slices:
 * the crop's LR centre), CT windowed as hv_spine_qc_grey, 256 x 256 like a
 * sagittal slice of the map (rows = k, cols = j; hv_spine_slice_extract). */
_Static_assert(HV_RUN_QC == HV_RUN_CAM_K && HV_RUN_QC == HV_RUN_CAM_J,
               "a QC picture and a map's sagittal slice no longer share their grid");
#define CAM_QC_SLICE (HV_RUN_CAM_I / 2)

/* The LR slice of the map's largest byte (the first in storage order, i
 * fastest, as hv_pipe_attn_summary picks it); -1 for an all-zero map. */
static int cam_max_slice(const uint8_t *u)
{
    int best = 0, arg = -1;
    for (size_t q = 0; q < HV_RUN_CAM_BYTES; q++)
        if (u[q] > best) {
            best = u[q];
            arg = (int)(q % HV_RUN_CAM_I);
        }
    return arg;
}

/* Sagittal slice i of the map (F32, crop layout) drawn in JET, over `grey`
 * (a QC CT slice, HV_RUN_QC x HV_RUN_QC) when given, alone otherwise, as
 * PNG `fn`. */
static hv_status cam_png(const char *fn, const hv_volume *map, int i, const uint8_t *grey,
                         float *m, uint8_t *rgb)
{
    hv_status st = hv_spine_slice_extract(map, HV_SPINE_SAGITTAL, i, m);
    if (st != HV_OK) return st;
    hv_io_jet_overlay(grey, m, (size_t)HV_RUN_QC * HV_RUN_QC, rgb);
    return hv_io_png_write(fn, HV_RUN_QC, HV_RUN_QC, 3, rgb);
}

/* The maps of a store with /vertebrae/cam (attention.store = full) under
 * DIR/cam, per vertebra that has one: <case>_<level>_cam.nii.gz (float32,
 * byte / 255, the store's crop layout) and, with `pictures`, the PNGs
 * docs/hdf5-schema.md ("Exports") describes. *n_cam counts the maps. */
static hv_status export_cam(const char *path, const char *dir, int pictures, long *n_cam)
{
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL, *u = NULL, *qc = NULL, *rgb = NULL;
    float *m = NULL;
    hv_volume *map = NULL;
    char *cdir = NULL, *fn = NULL;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    if (s->vol[HV_STORE_VOL_CAM] < 0) goto done; /* attention.store != full, or older */
    size_t nc = (size_t)s->n_cases;
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    if ((st = hv_vol_create(&map, dim, HV_DTYPE_F32, NULL)) != HV_OK) goto done;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    u = malloc(HV_RUN_CAM_BYTES);
    qc = malloc(HV_RUN_QC_BYTES);
    rgb = malloc(plane * 3);
    m = malloc(plane * sizeof *m);
    cdir = hv_strfmt("%s/cam", dir);
    if (!cr || !stt || !u || !qc || !rgb || !m || !cdir) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_mkdir_p(cdir)) != HV_OK) goto done;
    hv_nifti_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.datatype = 16; /* NIFTI_TYPE_FLOAT32 */
    wo.descrip = "healthivert Grad-CAM++ from the store (byte/255, crop layout)";
    for (size_t i = 0; i < nc && st == HV_OK; i++) {
        if (stt[i] != HV_CASE_DONE || cr[i].n_vert <= 0 || cr[i].n_vert > HV_RUN_MAX_VERT) continue;
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        if ((st = case_rows(s, (long)i, cr[i].n_vert, rows)) != HV_OK) {
            hv_error_wrap(st, "case %s", cr[i].id);
            break;
        }
        for (int k = 0; k < cr[i].n_vert && st == HV_OK; k++) {
            const long slot = (long)i * HV_RUN_MAX_VERT + k;
            int present = 0;
            if ((st = hv_store_read_cam(s, slot, u, &present)) != HV_OK) break;
            if (!present) continue; /* no map: the classifier gave none there */
            float *f = map->data;
            for (size_t q = 0; q < HV_RUN_CAM_BYTES; q++) f[q] = (float)u[q] / 255.0f;
            free(fn);
            fn = hv_strfmt("%s/%s_%.8s_cam.nii.gz", cdir, cr[i].id, rows[k].level);
            if (!fn) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            if ((st = hv_io_nifti_write(fn, map, &wo)) != HV_OK) break;
            if (n_cam) (*n_cam)++;
            if (!pictures) continue;
            /* the CT the store holds: the QC picture's sagittal slice */
            int have_qc = 0;
            if (s->qc >= 0 && (st = hv_store_read_qc(s, slot, qc, &have_qc)) != HV_OK) break;
            const uint8_t *ct =
                have_qc ? qc + ((size_t)HV_QC_SAG * HV_QC_CHANNELS + HV_QC_CT) * plane : NULL;
            int ms = rows[k].cam_max_slice;
            if (ms < 0 || ms >= HV_RUN_CAM_I) ms = cam_max_slice(u);
            free(fn);
            fn = hv_strfmt("%s/%s_%.8s_cam.png", cdir, cr[i].id, rows[k].level);
            if (!fn) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            /* the max slice over its CT only where the store holds that CT */
            if ((st = cam_png(fn, map, ms, ms == CAM_QC_SLICE ? ct : NULL, m, rgb)) != HV_OK) break;
            if (!ct) continue;
            free(fn);
            fn = hv_strfmt("%s/%s_%.8s_cam_qc.png", cdir, cr[i].id, rows[k].level);
            if (!fn) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            st = cam_png(fn, map, CAM_QC_SLICE, ct, m, rgb);
        }
        if (st != HV_OK) hv_error_wrap(st, "case %s: its attention maps", cr[i].id);
    }
done:
    free(fn);
    free(cdir);
    free(m);
    free(rgb);
    free(qc);
    free(u);
    free(cr);
    free(stt);
    hv_vol_free(map);
    hv_store_close(s);
    return st;
}

/* ---------------------------------------------- synthesized vertebrae */

/* The picture of a synthesized vertebra (<case>_<level>_qc.png): two
 * panels of the QC picture's sagittal grid (LR slice CAM_QC_SLICE, row 0
 * cranial, column 0 anterior) side by side, SYNTH_QC_GAP black columns
 * between them, then a two-line caption strip (hv_io_png_write_captioned). */
#define SYNTH_QC_GAP 4
#define SYNTH_QC_W (2 * HV_RUN_QC + SYNTH_QC_GAP)
/* the synthesized target's outline; the original target's in the red of
 * the QC pictures' target contour (hv_io_paint_contours) */
static const uint8_t SYNTH_EDGE[3] = {40, 200, 255}, ORIG_EDGE[3] = {255, 40, 40};

/* LR slice CAM_QC_SLICE of u8 crop `vol` on the QC grid into out
 * (HV_RUN_QC x HV_RUN_QC bytes): the stored bytes, or with mask 1 whether
 * the voxel holds `label` (1) or not (0). m: a float plane to work in. */
static hv_status crop_qc_slice(const hv_volume *vol, int mask, int label, float *m, uint8_t *out)
{
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    hv_status st = hv_spine_slice_extract(vol, HV_SPINE_SAGITTAL, CAM_QC_SLICE, m);
    if (st != HV_OK) return st;
    for (size_t q = 0; q < plane; q++)
        out[q] = mask ? (uint8_t)(label > 0 && m[q] == (float)label) : (uint8_t)m[q];
    return HV_OK;
}

/* The picture `fn` of a synthesized vertebra of target `label`: left the
 * QC picture's sagittal CT (qc: its slot), right LR slice 32 of the
 * synthesized CT crop `ct` (NULL: synthesis.crops = masks, the QC CT
 * again); on both the QC picture's label channel outlined in ORIG_EDGE,
 * then the synthesized label crop `lab`'s voxels of `label` on slice 32
 * outlined in SYNTH_EDGE (on top where the two meet). m, syn, right and
 * rgb: work buffers (a float plane, two byte planes, the panels' RGB). */
static hv_status synth_qc_png(const char *fn, const uint8_t *qc, const hv_volume *lab,
                              const hv_volume *ct, int label, float *m, uint8_t *syn,
                              uint8_t *right, uint8_t *rgb)
{
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    const uint8_t *v0 = qc + (size_t)HV_QC_SAG * HV_QC_CHANNELS * plane;
    hv_status st = crop_qc_slice(lab, 1, label, m, syn);
    if (st == HV_OK && ct) st = crop_qc_slice(ct, 0, 0, m, right);
    if (st != HV_OK) return st;
    const uint8_t *grey[2] = {v0 + HV_QC_CT * plane, ct ? right : v0 + HV_QC_CT * plane};
    const int stride = 3 * SYNTH_QC_W;
    memset(rgb, 0, (size_t)stride * HV_RUN_QC);
    for (int p = 0; p < 2; p++) {
        uint8_t *o = rgb + (size_t)p * (HV_RUN_QC + SYNTH_QC_GAP) * 3;
        for (int y = 0; y < HV_RUN_QC; y++)
            for (int x = 0; x < HV_RUN_QC; x++)
                memset(o + (size_t)y * stride + 3 * (size_t)x, grey[p][(size_t)y * HV_RUN_QC + x],
                       3);
        hv_io_paint_outline(o, stride, v0 + HV_QC_LABEL * plane, HV_RUN_QC, HV_RUN_QC, ORIG_EDGE);
        hv_io_paint_outline(o, stride, syn, HV_RUN_QC, HV_RUN_QC, SYNTH_EDGE);
    }
    const int x1 = HV_RUN_QC + SYNTH_QC_GAP + 4;
    const hv_io_caption cap[4] = {
        {0, 4, NULL, "original CT (sagittal, LR 32)"},
        {0, x1, NULL, ct ? "synthesized CT" : "original CT (no synthesized CT stored)"},
        {1, 4, SYNTH_EDGE, "synthesized label"},
        {1, x1, ORIG_EDGE, "original label"},
    };
    return hv_io_png_write_captioned(fn, SYNTH_QC_W, HV_RUN_QC, rgb, cap, 4);
}

/* The synthesized crops of a store with /vertebrae/synth_label (and
 * synth_ct, orig_ct, orig_label) under DIR/synth, per vertebra whose slot
 * holds one: <case>_<level>_label.nii.gz, _ct.nii.gz, _orig_ct.nii.gz and
 * _orig_label.nii.gz (uint8, the store's bytes in its crop layout, identity
 * affine). *n counts the files.
 * With `pictures`, also <case>_<level>_qc.png (synth_qc_png) for a
 * vertebra with a synthesized label crop and a QC picture: the store holds
 * the original CT of that slice only there. */
static hv_status export_synth(const char *path, const char *dir, int pictures, long *n)
{
    static const struct {
        int w;
        const char *suffix, *descrip;
    } out[4] = {{HV_STORE_VOL_SYNTH_LABEL, "label", "healthivert gan label crop from the store"},
                {HV_STORE_VOL_SYNTH_CT, "ct", "healthivert gan CT crop from the store"},
                {HV_STORE_VOL_ORIG_CT, "orig_ct", "healthivert original CT crop from the store"},
                {HV_STORE_VOL_ORIG_LABEL, "orig_label",
                 "healthivert original target label crop from the store"}};
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL, *qc = NULL, *syn = NULL, *right = NULL, *rgb = NULL;
    float *m = NULL;
    hv_volume *vol[4] = {NULL, NULL, NULL, NULL};
    char *sdir = NULL, *fn = NULL;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    if (s->vol[HV_STORE_VOL_SYNTH_LABEL] < 0 && s->vol[HV_STORE_VOL_SYNTH_CT] < 0)
        goto done; /* synthesis.crops = none, or an older store */
    pictures = pictures && s->qc >= 0 && s->vol[HV_STORE_VOL_SYNTH_LABEL] >= 0;
    size_t nc = (size_t)s->n_cases;
    const int64_t dim[3] = {HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K};
    for (int o = 0; o < 4; o++)
        if ((st = hv_vol_create(&vol[o], dim, HV_DTYPE_U8, NULL)) != HV_OK) goto done;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    sdir = hv_strfmt("%s/synth", dir);
    if (pictures) {
        qc = malloc(HV_RUN_QC_BYTES);
        syn = malloc(plane);
        right = malloc(plane);
        rgb = malloc((size_t)SYNTH_QC_W * HV_RUN_QC * 3);
        m = malloc(plane * sizeof *m);
    }
    if (!cr || !stt || !sdir || (pictures && (!qc || !syn || !right || !rgb || !m))) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_mkdir_p(sdir)) != HV_OK) goto done;
    hv_nifti_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.datatype = 2; /* NIFTI_TYPE_UINT8 */
    for (size_t i = 0; i < nc && st == HV_OK; i++) {
        if (stt[i] != HV_CASE_DONE || cr[i].n_vert <= 0 || cr[i].n_vert > HV_RUN_MAX_VERT) continue;
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        if ((st = case_rows(s, (long)i, cr[i].n_vert, rows)) != HV_OK) {
            hv_error_wrap(st, "case %s", cr[i].id);
            break;
        }
        for (int k = 0; k < cr[i].n_vert && st == HV_OK; k++) {
            const long slot = (long)i * HV_RUN_MAX_VERT + k;
            int have[4] = {0, 0, 0, 0};
            for (int o = 0; o < 4 && st == HV_OK; o++) {
                if (s->vol[out[o].w] < 0) continue;
                st = hv_store_read_vol(s, out[o].w, slot, vol[o]->data, &have[o]);
                if (st != HV_OK || !have[o]) continue; /* none: the vertebra fell back */
                free(fn);
                fn = hv_strfmt("%s/%s_%.8s_%s.nii.gz", sdir, cr[i].id, rows[k].level,
                               out[o].suffix);
                if (!fn) {
                    st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                    break;
                }
                wo.descrip = out[o].descrip;
                if ((st = hv_io_nifti_write(fn, vol[o], &wo)) == HV_OK && n) (*n)++;
            }
            if (st != HV_OK || !pictures || !have[0]) continue;
            int have_qc = 0;
            if ((st = hv_store_read_qc(s, slot, qc, &have_qc)) != HV_OK || !have_qc) continue;
            free(fn);
            fn = hv_strfmt("%s/%s_%.8s_qc.png", sdir, cr[i].id, rows[k].level);
            if (!fn) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            st = synth_qc_png(fn, qc, vol[0], have[1] ? vol[1] : NULL, rows[k].label, m, syn,
                              right, rgb);
        }
        if (st != HV_OK) hv_error_wrap(st, "case %s: its synthesized crops", cr[i].id);
    }
done:
    free(fn);
    free(sdir);
    free(m);
    free(rgb);
    free(right);
    free(syn);
    free(qc);
    free(cr);
    free(stt);
    for (int o = 0; o < 4; o++) hv_vol_free(vol[o]);
    hv_store_close(s);
    return st;
}

hv_status hv_store_export(const char *path, const char *dir, unsigned what, long *n_png,
                          long *n_cam, long *n_synth)
{
    if (n_png) *n_png = 0;
    if (n_cam) *n_cam = 0;
    if (n_synth) *n_synth = 0;
    hv_status st = export_tables(path, dir);
    if (st == HV_OK && (what & HV_STORE_EXPORT_QC)) st = export_qc_png(path, dir, n_png);
    if (st == HV_OK && (what & HV_STORE_EXPORT_CAM))
        st = export_cam(path, dir, (what & HV_STORE_EXPORT_QC) != 0, n_cam);
    if (st == HV_OK && (what & HV_STORE_EXPORT_SYNTH))
        st = export_synth(path, dir, (what & HV_STORE_EXPORT_QC) != 0, n_synth);
    return st;
}

hv_status hv_store_export_csv(const char *path, const char *dir)
{
    return hv_store_export(path, dir,
                           HV_STORE_EXPORT_QC | HV_STORE_EXPORT_CAM | HV_STORE_EXPORT_SYNTH, NULL,
                           NULL, NULL);
}
