/*
 * describe.c: `inspect`: a store as human-readable text (hv_store_describe)
 * and its check against the schema (hv_store_validate).
 *
 * The validator checks every rule docs/hdf5-schema.md states: objects,
 * types (member for member, against the same compound types the writer
 * uses), shapes, value ranges and cross-references (a vertebra row's case is
 * a done case, its level matches its label, RHLV agrees with its heights).
 * It collects every problem rather than stopping at the first, because a
 * person repairing or reporting a store wants the whole list; the first 50
 * are printed with a count of the rest. Both read only through the store's
 * own readers, opened serially and read-only: inspecting a store never
 * changes it.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

hv_status hv_store_describe(const char *path, char **text)
{
    *text = NULL;
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    double *secs = NULL;
    size_t nv = 0;
    sbuf b = {0};
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    size_t nc = (size_t)s->n_cases, ns = (size_t)s->n_stages;
    if ((st = hv_store_read_tables(s, &cr, &stt, &secs, &vr, &nv)) != HV_OK) goto done;

    char *state = hv_h5_read_attr_str(s->file, "state");
    hid_t prov = H5Gopen2(s->file, "provenance", H5P_DEFAULT);
    char *ver = prov >= 0 ? hv_h5_read_attr_str(prov, "version") : NULL;
    char *rev = prov >= 0 ? hv_h5_read_attr_str(prov, "git_revision") : NULL;
    char *t0 = prov >= 0 ? hv_h5_read_attr_str(prov, "started_utc") : NULL;
    char *t1 = prov >= 0 ? hv_h5_read_attr_str(prov, "ended_utc") : NULL;
    char *sm = prov >= 0 && H5Aexists(prov, "synth_model") > 0
                   ? hv_h5_read_attr_str(prov, "synth_model")
                   : NULL;
    char *am = prov >= 0 && H5Aexists(prov, "attention_model") > 0
                   ? hv_h5_read_attr_str(prov, "attention_model")
                   : NULL;
    long ranks = 0, attempt = 0;
    if (prov >= 0) {
        hv_h5_read_attr_long(prov, "ranks", &ranks);
        hv_h5_read_attr_long(prov, "attempt", &attempt);
        H5Gclose(prov);
    }
    sb_add(&b, "store:          %s\n", path);
    sb_add(&b, "schema:         healthivert-store v%d\n", s->version);
    sb_add(&b, "state:          %s\n", state ? state : "?");
    sb_add(&b, "written by:     healthivert %s (git %s), %ld rank(s), attempt %ld\n",
           ver ? ver : "?", rev ? rev : "?", ranks, attempt);
    sb_add(&b, "started/ended:  %s / %s\n", t0 ? t0 : "?", t1 && *t1 ? t1 : "(not ended)");
    if (sm) {
        size_t nfb = 0;
        for (size_t i = 0; i < nv; i++) nfb += (vr[i].flags & HV_MEAS_SYNTH_FALLBACK) != 0;
        /* the provenance of an AOT-GAN model names its width so (issue 15) */
        sb_add(&b, "synthesis:      %s, %s\n", strstr(sm, "AOT-GAN width") ? "aotgan" : "gan", sm);
        sb_add(&b, "gan fallbacks:  %zu of %zu vertebrae (flag synth_fallback; the log says why)\n",
               nfb, nv);
    }
    if (am) {
        size_t nmap = 0;
        for (size_t i = 0; i < nv; i++) nmap += !isnan(vr[i].p_fracture);
        sb_add(&b, "attention:      classifier %s\n", am);
        sb_add(&b, "attention maps: %zu of %zu vertebrae have p_fracture%s\n", nmap, nv,
               s->has_vol[HV_STORE_VOL_CAM] ? "; maps in /vertebrae/cam" : "");
    }
    if (s->has_vol[HV_STORE_VOL_SYNTH_LABEL] || s->has_vol[HV_STORE_VOL_SYNTH_CT])
        sb_add(&b, "synth crops:    /vertebrae/synth_label%s%s (synthesis.crops = %s; a vertebra "
               "flagged synth_fallback has an all-zero slot)\n",
               s->has_vol[HV_STORE_VOL_SYNTH_CT] ? ", /vertebrae/synth_ct" : "",
               s->has_vol[HV_STORE_VOL_ORIG_CT] && s->has_vol[HV_STORE_VOL_ORIG_LABEL]
                   ? ", the original crops /vertebrae/orig_ct, orig_label"
                   : "",
               s->has_vol[HV_STORE_VOL_SYNTH_CT] ? "full" : "masks");
    if (s->has_vol[HV_STORE_VOL_CROP3D])
        sb_add(&b, "crop3d:         /vertebrae/crop3d (grader.method = senet3d: a 64^3 box of "
               "each vertebra's straightened crop)\n");
    free(am);
    free(sm);
    free(state);
    free(ver);
    free(rev);
    free(t0);
    free(t1);
    long cnt[3] = {0, 0, 0};
    double sec[HV_STORE_MAX_STAGES] = {0};
    for (size_t i = 0; i < nc; i++) {
        if (stt[i] <= 2) cnt[stt[i]]++;
        if (stt[i] == HV_CASE_DONE)
            for (size_t k = 0; k < ns; k++) sec[k] += secs[i * ns + k];
    }
    sb_add(&b, "cases:          %zu total, %ld done, %ld failed, %ld pending\n", nc, cnt[1], cnt[2],
           cnt[0]);
    sb_add(&b, "vertebrae:      %zu (in done cases)\n", nv);
    if (cnt[1] > 0) {
        /* by the store's own stage names, never by position */
        sb_add(&b, "seconds/case:  ");
        for (size_t k = 0; k < ns; k++)
            sb_add(&b, " %s %.3f", s->stage_ptr[k], sec[k] / (double)cnt[1]);
        sb_add(&b, "\n");
    }
    /* vertebrae by level and predicted (else rule) grade */
    if (nv > 0) {
        sb_add(&b, "\nvertebrae by level and grade (%s):\n",
               vr[0].grade_pred >= 0 ? "predicted by the grader" : "Genant rule");
        sb_add(&b, "  level      g0    g1    g2    g3   n/a\n");
        for (int lab = 1; lab <= 28; lab++) {
            long c[5] = {0};
            int any = 0;
            for (size_t i = 0; i < nv; i++) {
                if (vr[i].label != lab) continue;
                int g = vr[i].grade_pred >= 0 ? vr[i].grade_pred : vr[i].grade_rule;
                c[(g >= 0 && g <= 3) ? g : 4]++;
                any = 1;
            }
            if (any)
                sb_add(&b, "  %-6s %5ld %5ld %5ld %5ld %5ld\n", hv_label_name(lab) ? hv_label_name(lab) : "?",
                       c[0], c[1], c[2], c[3], c[4]);
        }
    }
    if (cnt[2] > 0) {
        long bykind[HV_STATUS_COUNT + 1] = {0};
        for (size_t i = 0; i < nc; i++)
            if (stt[i] == HV_CASE_FAILED)
                bykind[cr[i].error_code > 0 && cr[i].error_code < HV_STATUS_COUNT ? cr[i].error_code
                                                                                : HV_STATUS_COUNT]++;
        sb_add(&b, "\nfailures by kind:");
        const char *sep = " ";
        for (int k = 1; k <= HV_STATUS_COUNT; k++)
            if (bykind[k]) {
                sb_add(&b, "%s%ld %s", sep, bykind[k],
                       k < HV_STATUS_COUNT ? hv_status_name((hv_status)k) : "unknown");
                sep = ", ";
            }
        sb_add(&b, "\nfailures:\n");
        long shown = 0;
        for (size_t i = 0; i < nc; i++) {
            if (stt[i] != HV_CASE_FAILED) continue;
            if (shown++ < 100) sb_add(&b, "  %-16s %s\n", cr[i].id, cr[i].error);
        }
        if (shown > 100) sb_add(&b, "  ... and %ld more (cases.csv lists every one)\n", shown - 100);
    }
    hv_grader_result g;
    int present = 0;
    if ((st = hv_store_read_grader(s, &g, &present)) != HV_OK) goto done;
    if (present) {
        sb_add(&b, "\ngrader:         %s%s%s%s%s%s\n", g.method, *g.solver ? " (solver " : "",
               g.solver, *g.solver ? ")" : "", *g.note ? " — " : "", g.note);
        if (g.have_metrics) {
            sb_add(&b, "metrics (%s): macro-F1 %.4f, precision %.4f, recall %.4f, accuracy %.4f, "
                       "linear kappa %.4f\n",
                   g.evaluated_on, g.m.macro_f1, g.m.macro_precision, g.m.macro_recall,
                   g.m.accuracy, g.m.kappa_linear);
            sb_add(&b, "confusion [true rows x predicted columns]:\n       ");
            for (int c = 0; c < g.m.n_classes; c++) sb_add(&b, " %5d", g.m.classes[c]);
            sb_add(&b, "\n");
            for (int r = 0; r < g.m.n_classes; r++) {
                sb_add(&b, "  %5d", g.m.classes[r]);
                for (int c = 0; c < g.m.n_classes; c++) sb_add(&b, " %5ld", g.m.confusion[r][c]);
                sb_add(&b, "\n");
            }
        }
        if (g.n_folds > 0)
            sb_add(&b, "folds: %d, mean macro-F1 %.4f (variance %.5f)\n", g.n_folds, g.mean[0],
                   g.var[0]);
    } else {
        sb_add(&b, "\ngrader:         (not run yet)\n");
    }
    if (b.oom) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    *text = b.p;
    b.p = NULL;
done:
    free(b.p);
    free(cr);
    free(stt);
    free(vr);
    free(secs);
    hv_store_close(s);
    return st;
}

/* --------------------------------------------------------------- validate */

static int check_dims(hid_t d, int rank, const hsize_t *want)
{
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8];
    int r = H5Sget_simple_extent_ndims(sp);
    int ok = r == rank && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0;
    for (int i = 0; ok && i < rank; i++) ok = dims[i] == want[i];
    H5Sclose(sp);
    return ok;
}

/* The file type must equal ours member for member (names, offsets, types). */
static int check_type(hid_t d, hid_t want)
{
    hid_t ft = H5Dget_type(d);
    int ok = H5Tequal(ft, want) > 0;
    H5Tclose(ft);
    return ok;
}

static int finite_or_nan_ok(double x)
{
    return !isinf(x);
}

hv_status hv_store_validate(const char *path, char **report)
{
    if (report) *report = NULL;
    sbuf b = {0};
    long nprob = 0;
#define PROBLEM(...)                                                           \
    do {                                                                       \
        if (nprob < 50) sb_add(&b, __VA_ARGS__);                               \
        nprob++;                                                               \
    } while (0)
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    double *secs = NULL;
    hid_t ct = -1, vt = hv_store_vrow_type(), et = hv_store_status_type();
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) {
        PROBLEM("cannot open: %s\n", hv_error_detail());
        goto finish;
    }
    ct = s->version == 1 ? hv_store_crow_v1_type() : hv_store_crow_type();
    char *schema = hv_h5_read_attr_str(s->file, "schema");
    if (!schema || strcmp(schema, "healthivert-store")) PROBLEM("/@schema is not 'healthivert-store'\n");
    free(schema);
    char *state = hv_h5_read_attr_str(s->file, "state");
    int complete = state && !strcmp(state, "complete");
    if (!state || (strcmp(state, "running") && strcmp(state, "interrupted") &&
                   strcmp(state, "partial") && !complete))
        PROBLEM("/@state is '%s' (running, interrupted, partial or complete)\n",
                state ? state : "(absent)");
    free(state);
    long mv = 0, isz = 0;
    if (!hv_h5_read_attr_long(s->file, "max_vert", &mv) || mv != HV_RUN_MAX_VERT)
        PROBLEM("/@max_vert is %ld (want %d)\n", mv, HV_RUN_MAX_VERT);
    if (!hv_h5_read_attr_long(s->file, "img_size", &isz) || isz != HV_RUN_IMG)
        PROBLEM("/@img_size is %ld (want %d)\n", isz, HV_RUN_IMG);
    if (s->n_img != 0 && s->n_img != 1 && s->n_img != 3) PROBLEM("/@n_img is %d\n", s->n_img);
    hid_t prov = H5Gopen2(s->file, "provenance", H5P_DEFAULT);
    if (prov < 0) {
        PROBLEM("/provenance is missing\n");
    } else {
        static const char *sa[] = {"config", "version", "git_revision", "hdf5_version",
                                   "mpi_library", "started_utc", "ended_utc", "input_root"};
        for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++) {
            char *v = hv_h5_read_attr_str(prov, sa[i]);
            if (!v) PROBLEM("/provenance/@%s is missing or not a string\n", sa[i]);
            else if (complete && !strcmp(sa[i], "ended_utc") && !*v)
                PROBLEM("complete store without /provenance/@ended_utc\n");
            free(v);
        }
        long r = 0;
        if (!hv_h5_read_attr_long(prov, "ranks", &r) || r < 1) PROBLEM("/provenance/@ranks is %ld\n", r);
        if (!hv_h5_read_attr_long(prov, "attempt", &r) || r < 1) PROBLEM("/provenance/@attempt is %ld\n", r);
        H5Gclose(prov);
    }
    hsize_t n = (hsize_t)s->n_cases, nvs = n * HV_RUN_MAX_VERT;
    if (!check_type(s->cases, ct)) PROBLEM("/cases/table has an unexpected type\n");
    if (!check_type(s->status, et)) PROBLEM("/cases/status has an unexpected type\n");
    {
        /* v4 always has the attention columns; v3 and older may lack them */
        hid_t vt0 = hv_store_vrow_type_noattn();
        if (s->version >= 4 && !check_type(s->verts, vt))
            PROBLEM("/vertebrae/table has an unexpected type (v4: with the attention "
                    "columns)\n");
        else if (!check_type(s->verts, vt) && !check_type(s->verts, vt0))
            PROBLEM("/vertebrae/table has an unexpected type\n");
        H5Tclose(vt0);
    }
    if (!check_dims(s->status, 1, &n)) PROBLEM("/cases/status length differs from /cases/table\n");
    if (!check_dims(s->verts, 1, &nvs)) PROBLEM("/vertebrae/table is not %d slots per case\n", HV_RUN_MAX_VERT);
    if (s->version > 1) {
        /* the stage names were checked when the store was opened */
        hsize_t dsec[2] = {n, (hsize_t)s->n_stages};
        if (!check_type(s->seconds, H5T_IEEE_F64LE)) PROBLEM("/cases/seconds is not float64\n");
        if (!check_dims(s->seconds, 2, dsec))
            PROBLEM("/cases/seconds is not %llu x %d (cases x stages in /cases/stage_names)\n",
                    (unsigned long long)n, s->n_stages);
        hid_t dn = H5Dopen2(s->file, "cases/stage_names", H5P_DEFAULT), nt = hv_store_stage_name_type();
        if (dn < 0 || !check_type(dn, nt))
            PROBLEM("/cases/stage_names is not strings of %d bytes\n", HV_STORE_STAGE_NAME_MAX);
        if (dn >= 0) H5Dclose(dn);
        H5Tclose(nt);
    }
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        /* the crop volumes: one u8 crop per vertebra slot */
        if (s->vol[w] < 0) continue;
        const char *vn = hv_store_vol_name(w);
        int64_t vd[3];
        hv_store_vol_dims(w, vd);
        hsize_t dc[4] = {nvs, (hsize_t)vd[2], (hsize_t)vd[1], (hsize_t)vd[0]};
        if (!check_dims(s->vol[w], 4, dc))
            PROBLEM("/vertebrae/%s is not %d slots per case of %d x %d x %d\n", vn,
                    HV_RUN_MAX_VERT, (int)vd[2], (int)vd[1], (int)vd[0]);
        if (!check_type(s->vol[w], H5T_STD_U8LE)) PROBLEM("/vertebrae/%s is not uint8\n", vn);
    }
    if (s->vol[HV_STORE_VOL_SYNTH_CT] >= 0 && s->vol[HV_STORE_VOL_SYNTH_LABEL] < 0)
        PROBLEM("/vertebrae/synth_ct without /vertebrae/synth_label (synthesis.crops = full "
                "keeps both)\n");
    for (int w = HV_STORE_VOL_ORIG_CT; w <= HV_STORE_VOL_ORIG_LABEL; w++)
        if (s->vol[w] >= 0 && s->vol[HV_STORE_VOL_SYNTH_CT] < 0)
            PROBLEM("/vertebrae/%s without /vertebrae/synth_ct (synthesis.crops = full keeps "
                    "the original crops beside the synthesized ones)\n",
                    hv_store_vol_name(w));
    if (s->images >= 0) {
        hsize_t d4[4] = {nvs, (hsize_t)s->n_img, HV_RUN_IMG, HV_RUN_IMG};
        if (!check_dims(s->images, 4, d4)) PROBLEM("/images/planes has unexpected dimensions\n");
    }
    if (s->qc >= 0 && s->version >= 3) {
        hid_t qt = hv_store_qc_png_type();
        if (!check_dims(s->qc, 1, &nvs)) PROBLEM("/images/qc is not %d slots per case\n", HV_RUN_MAX_VERT);
        if (!check_type(s->qc, qt)) PROBLEM("/images/qc is not variable-length uint8 (PNG bytes)\n");
        H5Tclose(qt);
    } else if (s->qc >= 0) {
        hsize_t d5[5] = {nvs, HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
        if (!check_dims(s->qc, 5, d5)) PROBLEM("/images/qc has unexpected dimensions\n");
        if (!check_type(s->qc, H5T_STD_U8LE)) PROBLEM("/images/qc is not uint8\n");
    } else if (H5Lexists(s->file, "images/qc", H5P_DEFAULT) > 0) {
        PROBLEM("/images/qc present although /@n_img = 0\n");
    }
    if (nprob) goto finish;

    size_t nc = (size_t)n, ns = (size_t)s->n_stages;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    secs = malloc((nc ? nc : 1) * ns * sizeof *secs);
    if (!cr || !stt || !secs) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto finish;
    }
    if (hv_store_read_cases(s, cr, stt) != HV_OK) {
        PROBLEM("cannot read the cases: %s\n", hv_error_detail());
        goto finish;
    }
    if (hv_store_read_seconds(s, secs) != HV_OK) {
        PROBLEM("cannot read the per-stage seconds: %s\n", hv_error_detail());
        goto finish;
    }
    long done_n = 0;
    for (size_t i = 0; i < nc; i++) {
        const hv_run_crow *c = &cr[i];
        if (!memchr(c->id, 0, sizeof c->id) || !c->id[0]) PROBLEM("case %zu: empty id\n", i);
        if (i > 0 && strcmp(cr[i - 1].id, c->id) >= 0)
            PROBLEM("case %zu: ids not strictly increasing ('%s' after '%s')\n", i, c->id, cr[i - 1].id);
        if (stt[i] > 2) {
            PROBLEM("case %s: status %u\n", c->id, stt[i]);
            continue;
        }
        if (complete && stt[i] == HV_CASE_PENDING) PROBLEM("case %s: pending in a complete store\n", c->id);
        if (stt[i] == HV_CASE_DONE) {
            done_n++;
            if (c->n_vert < 1 || c->n_vert > HV_RUN_MAX_VERT) PROBLEM("case %s: done with n_vert %d\n", c->id, c->n_vert);
            if (c->error[0]) PROBLEM("case %s: done but has an error text\n", c->id);
            int bad_k = -1;
            if (c->n_vert >= 1 && c->n_vert <= HV_RUN_MAX_VERT &&
                hv_store_qc_check_case(s, (long)i, c->n_vert, &bad_k) != HV_OK)
                PROBLEM("case %s: %s\n", c->id, hv_error_detail());
            else if (bad_k >= 0)
                PROBLEM("case %s: /images/qc slot %d is not an 8-bit grey %dx%d PNG\n", c->id,
                        bad_k, HV_STORE_QC_PNG_W, HV_STORE_QC_PNG_H);
        }
        if (stt[i] == HV_CASE_FAILED) {
            if (!c->error[0]) PROBLEM("case %s: failed without a reason\n", c->id);
            if (c->error_code <= 0 || c->error_code >= HV_STATUS_COUNT)
                PROBLEM("case %s: failed with error_code %d\n", c->id, c->error_code);
            if (c->n_vert != 0) PROBLEM("case %s: failed but n_vert %d\n", c->id, c->n_vert);
        }
        if (stt[i] != HV_CASE_PENDING) {
            if (c->rank < 0) PROBLEM("case %s: finished without a rank\n", c->id);
            if (c->attempt < 1) PROBLEM("case %s: finished without an attempt\n", c->id);
            for (size_t k = 0; k < ns; k++) {
                double x = secs[i * ns + k];
                if (!(x >= 0) || isinf(x))
                    PROBLEM("case %s: seconds[%s] = %g\n", c->id, s->stage_ptr[k], x);
            }
        }
    }
    size_t nv = 0;
    if (hv_store_read_vertebrae(s, &vr, &nv) != HV_OK) {
        PROBLEM("cannot read the vertebrae: %s\n", hv_error_detail());
        goto finish;
    }
    int graded = H5Lexists(s->file, "grader", H5P_DEFAULT) > 0;
    int32_t prev_case = -1, kk = 0; /* the row's slot within its case */
    for (size_t i = 0; i < nv; i++) {
        const hv_run_vrow *v = &vr[i];
        kk = v->case_index == prev_case ? kk + 1 : 0;
        prev_case = v->case_index;
        if (v->case_index < 0 || (size_t)v->case_index >= nc || stt[v->case_index] != HV_CASE_DONE) {
            PROBLEM("vertebra row %zu: case_index %d is not a done case\n", i, v->case_index);
            continue;
        }
        const char *id = cr[v->case_index].id;
        /* the synthesized crops and the original ones beside them: a crop
         * exactly where the gan synthesized (no synth_fallback flag), an
         * empty slot where it fell back */
        for (int w = HV_STORE_VOL_SYNTH_LABEL; w < HV_STORE_N_VOL; w++) {
            if (s->vol[w] < 0 || w == HV_STORE_VOL_CROP3D) continue;
            int written = 0;
            long slot = (long)v->case_index * HV_RUN_MAX_VERT + kk;
            if (hv_store_vol_written(s, w, slot, &written) != HV_OK) {
                PROBLEM("case %s %s: %s\n", id, v->level, hv_error_detail());
                continue;
            }
            int fb = (v->flags & HV_MEAS_SYNTH_FALLBACK) != 0;
            if (written == fb)
                PROBLEM("case %s %s: /vertebrae/%s %s\n", id, v->level, hv_store_vol_name(w),
                        fb ? "holds a crop although the vertebra is flagged synth_fallback"
                           : "holds no crop although the vertebra is not flagged synth_fallback");
        }
        if (!hv_label_name(v->label) || strncmp(v->level, hv_label_name(v->label), sizeof v->level))
            PROBLEM("case %s: label %d with level '%.8s'\n", id, v->label, v->level);
        if (i > 0 && vr[i - 1].case_index == v->case_index &&
            !(hv_label_order(vr[i - 1].label) < hv_label_order(v->label)))
            PROBLEM("case %s: vertebrae not in cranio-caudal order at %s\n", id, v->level);
        if (v->known_grade < -1 || v->known_grade > 3) PROBLEM("case %s %s: known_grade %d\n", id, v->level, v->known_grade);
        if (v->split_set < -1 || v->split_set > 2) PROBLEM("case %s %s: split_set %d\n", id, v->level, v->split_set);
        if (v->grade_rule < -1 || v->grade_rule > 3) PROBLEM("case %s %s: grade_rule %d\n", id, v->level, v->grade_rule);
        if (v->grade_pred < -1 || v->grade_pred > 3) PROBLEM("case %s %s: grade_pred %d\n", id, v->level, v->grade_pred);
        if (complete && graded && v->grade_pred < 0 && v->grade_rule >= 0)
            PROBLEM("case %s %s: graded store without a prediction\n", id, v->level);
        /* the attention columns: NaN / -1 or in range */
        if (!isnan(v->p_fracture) && !(v->p_fracture >= 0 && v->p_fracture <= 1))
            PROBLEM("case %s %s: p_fracture %g outside [0, 1]\n", id, v->level, v->p_fracture);
        if (!isnan(v->cam_mass_body) && !(v->cam_mass_body >= 0 && v->cam_mass_body <= 1))
            PROBLEM("case %s %s: cam_mass_body %g outside [0, 1]\n", id, v->level,
                    v->cam_mass_body);
        if (v->cam_max_slice < -1 || v->cam_max_slice > 1023)
            PROBLEM("case %s %s: cam_max_slice %d\n", id, v->level, v->cam_max_slice);
        int all_nan = 1; /* over anterior, middle, posterior: what the rule grades */
        for (int g = 0; g < HV_REG_COUNT; g++) {
            if (!finite_or_nan_ok(v->h_ori[g]) || !finite_or_nan_ok(v->h_syn[g]) || !finite_or_nan_ok(v->rhlv[g]))
                PROBLEM("case %s %s: infinite height or RHLV\n", id, v->level);
            if (!isnan(v->h_ori[g]) && v->h_ori[g] < 0) PROBLEM("case %s %s: negative height\n", id, v->level);
            if (g != HV_REG_ALL && !isnan(v->rhlv[g])) all_nan = 0;
            /* RHLV is (syn - ori) / syn, stored as computed */
            if (!isnan(v->rhlv[g]) && !isnan(v->h_syn[g]) && !isnan(v->h_ori[g]) && v->h_syn[g] > 0 &&
                fabs(v->rhlv[g] - (v->h_syn[g] - v->h_ori[g]) / v->h_syn[g]) > 1e-9)
                PROBLEM("case %s %s: rhlv[%d] disagrees with its heights\n", id, v->level, g);
        }
        if (all_nan && !(v->flags & (HV_MEAS_SMALL | HV_MEAS_NO_SYNTH | HV_MEAS_EMPTY_REGION)))
            PROBLEM("case %s %s: no RHLV and no flag saying why\n", id, v->level);
        if ((v->grade_rule >= 0) != !all_nan)
            PROBLEM("case %s %s: rule grade %d with%s RHLV\n", id, v->level, v->grade_rule, all_nan ? "out" : "");
    }
    if (graded) {
        hv_grader_result g;
        int present;
        if (hv_store_read_grader(s, &g, &present) != HV_OK) {
            PROBLEM("/grader: %s\n", hv_error_detail());
        } else {
            if (strcmp(g.method, "svm") && strcmp(g.method, "rule") &&
                strcmp(g.method, "senet3d"))
                PROBLEM("/grader/@method is '%s'\n", g.method);
            /* "" also for an svm grader of a store older than the attribute */
            if (*g.solver && (strcmp(g.method, "svm") ||
                              (strcmp(g.solver, "libsvm") && strcmp(g.solver, "liblinear"))))
                PROBLEM("/grader/@solver is '%s' with method '%s'\n", g.solver, g.method);
            if (g.have_metrics) {
                long tot = 0;
                for (int a = 0; a < g.m.n_classes; a++)
                    for (int c = 0; c < g.m.n_classes; c++) {
                        if (g.m.confusion[a][c] < 0) PROBLEM("/grader/confusion has a negative count\n");
                        tot += g.m.confusion[a][c];
                    }
                if (tot < 1) PROBLEM("/grader/confusion is empty\n");
                if (!(g.m.macro_f1 >= 0 && g.m.macro_f1 <= 1)) PROBLEM("/grader/@macro_f1 = %g\n", g.m.macro_f1);
                if (!(g.m.accuracy >= 0 && g.m.accuracy <= 1)) PROBLEM("/grader/@accuracy = %g\n", g.m.accuracy);
            }
        }
    } else if (complete && done_n > 0) {
        PROBLEM("complete store without /grader\n");
    }
finish:
    free(cr);
    free(stt);
    free(vr);
    free(secs);
    if (ct >= 0) H5Tclose(ct);
    H5Tclose(vt);
    H5Tclose(et);
    hv_store_close(s);
    if (nprob > 50) sb_add(&b, "... and %ld more problems\n", nprob - 50);
    if (report) {
        *report = b.p;
        b.p = NULL;
    }
    free(b.p);
    if (st == HV_ERR_NOMEM) return st;
    if (nprob) return hv_error_set(HV_ERR_FORMAT, "%s: %ld schema problem(s)", path, nprob);
    return HV_OK;
#undef PROBLEM
}
