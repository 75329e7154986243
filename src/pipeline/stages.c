/*
 * stages.c: the default table of stages, and the one place where synthesis
 * methods and graders are registered by name.
 *
 * Each stage is a small function from the state's products to new products;
 * none knows who called it (runner, `measure`, `straighten`) or which stages
 * are switched on around it: hv_pipe_plan_make decided that. To add a stage,
 * add its function and one row to `table`; to add a synthesis method or a
 * grader, one row to `synths` or `graders` (its needs switch on the stages
 * it depends on, e.g. a learned synthesis needs HV_PIPE_CROPS).
 *
 * Behaviour kept from before the table (tests pin it): a case needs at least
 * two labelled vertebrae when need_neighbour is set; a spine-stage failure
 * never fails a case whose only use of it is the QC pictures; a truncated
 * vertebra (cut by the field of view) is not graded (-1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/pipeline.h"
#include "pipeline_internal.h"

void hv_pipe_opts_default(hv_pipe_opts *o)
{
    memset(o, 0, sizeof *o);
    hv_measure_opts_default(&o->measure);
    hv_spine_opts_default(&o->spine);
    o->use_centroids = 1;
    o->same_grid = 1;
    o->need_neighbour = 1;
    o->synth = "baseline";
    o->synth_fallback = 1;
    o->grader = "rule";
    o->pictures = HV_PIPE_PICTURES_NONE;
}

/* ------------------------------------------------------------- load */

static hv_status stage_load(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const hv_case *cs = s->cs;
    hv_status st;
    if (cs->status != HV_OK)
        return hv_error_set(cs->status, "%s", cs->problem ? cs->problem : "case is incomplete");
    if (!cs->mask_path) return hv_error_set(HV_ERR_NOT_FOUND, "no mask file");
    /* labels as int16 everywhere, so `measure` and `run` agree on every mask,
     * negative or out-of-range values included; mask, then CT, read here or
     * taken from the caller's loader (read ahead; same errors) */
    st = hv_pipe_load_volumes(s->loader, cs, &s->mask, &s->ct);
    if (st != HV_OK) return st;
    if (cs->ct_path) {
        if (o->same_grid) {
            st = hv_vol_check_same_grid(s->ct, s->mask, "CT", "mask");
            if (st != HV_OK) return hv_error_wrap(st, "%s", cs->ct_path);
        }
    }
    if (o->use_centroids && cs->centroid_path)
        return hv_io_centroids_read(cs->centroid_path, &s->ctd);
    return HV_OK;
}

/* ------------------------------------------------------- straighten, crop */

static hv_status stage_straighten(const hv_pipe_opts *o, hv_pipe_state *s)
{
    if (!s->ct) return hv_error_set(HV_ERR_NOT_FOUND, "the case has no CT to straighten");
    /* test hook (tests/mpi/test_qc.sh): HV_TEST_SPINE_FAIL=<case id> makes
     * this stage fail on that case, to check that the case still gets done */
    const char *hook = getenv("HV_TEST_SPINE_FAIL");
    if (hook && s->cs->id && !strcmp(hook, s->cs->id))
        return hv_error_set(HV_ERR_NUMERIC, "HV_TEST_SPINE_FAIL asked for a failure");
    return hv_spine_case_run(s->ct, s->mask, s->ctd, &o->spine, &s->spine);
}

/* One crop per vertebra of the straightened case, cranial first (NULL for a
 * vertebra without a body), several at once: each crop only reads the
 * straightened volumes. A vertebra that cannot be cropped gets NULL and a
 * warning; the others go on. */
static hv_status stage_crop(const hv_pipe_opts *o, hv_pipe_state *s)
{
    (void)o;
    const hv_spine_verts *vs = s->spine->verts;
    const long n = (long)vs->n;
    hv_status st = HV_OK;
    s->crops = calloc(n ? (size_t)n : 1, sizeof *s->crops);
    hv_status *sts = calloc(n ? (size_t)n : 1, sizeof *sts);
    char (*msg)[256] = calloc(n ? (size_t)n : 1, sizeof *msg);
    if (!s->crops || !sts || !msg) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory for %ld crops", n);
        goto done;
    }
    s->n_crops = (size_t)n;
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < n; k++) {
        if (!vs->v[k].has_body) continue;
        sts[k] = hv_spine_crop_make(s->spine, vs->v[k].label, &s->crops[k]);
        if (sts[k] != HV_OK) {
            snprintf(msg[k], sizeof msg[k], "%s", hv_error_detail());
            hv_error_clear();
        }
    }
    for (long k = 0; k < n; k++) {
        if (sts[k] == HV_OK) continue;
        if (sts[k] == HV_ERR_NOMEM) {
            st = hv_error_set(sts[k], "%s", msg[k]);
            goto done;
        }
        const char *name = hv_label_name(vs->v[k].label);
        hv_log_warn("case %s %s: no crop: %s", s->cs->id, name ? name : "?", msg[k]);
    }
done:
    free(sts);
    free(msg);
    return st;
}

/* ------------------------------------------------------------ measure */

static hv_status stage_measure(const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_measure_opts mo = o->measure;
    mo.centroids = s->ctd;
    hv_status st = hv_measure_spine(s->mask, s->ct, &mo, &s->m);
    if (st != HV_OK) return st;
    if (s->m->n == 0) return hv_error_set(HV_ERR_EMPTY, "the mask has no vertebra label");
    if (s->m->n == 1 && o->need_neighbour) {
        const char *name = hv_label_name(s->m->v[0].label);
        return hv_error_set(HV_ERR_EMPTY,
                            "only one vertebra (%s) is labelled: a pseudo-healthy estimate needs "
                            "at least one labelled neighbour",
                            name ? name : "?");
    }
    if (s->m->n > HV_PIPE_MAX_VERT)
        return hv_error_set(HV_ERR_LIMIT, "%zu vertebrae (at most %d)", s->m->n,
                            HV_PIPE_MAX_VERT);
    return HV_OK;
}

/* ---------------------------------------------------------- synthesize */

static hv_status synth_baseline(const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_measure_opts mo = o->measure;
    mo.centroids = s->ctd;
    return hv_measure_baseline(s->m, &mo);
}

/* The registered synthesis methods. */
static const hv_pipe_synth synths[] = {
    {"baseline",
     "healthy heights from the nearest undeformed neighbours, scaled by level size priors",
     0, 0, 0, synth_baseline},
    /* the crops (and so the spine) are the generator's input; the fallback
     * values come from the baseline, run first inside */
    {"gan",
     "the two-stage generator's pseudo-healthy vertebra (synthesis.model), measured with the "
     "original's rays; the baseline where it fails (flagged)",
     HV_PIPE_CROPS | HV_PIPE_SPINE, 1, 0, hv_pipe_synth_gan},
    /* the same steps, bands and fusion with AOT-GAN's generator (issue 15;
     * the model's kind is checked when it is opened) */
    {"aotgan",
     "AOT-GAN's inpainting generator trained as ours (synthesis.model, train.generator = "
     "aotgan), the band inpainted at the vertebra's own height; the baseline where it fails",
     HV_PIPE_CROPS | HV_PIPE_SPINE, 1, 0, hv_pipe_synth_gan},
    {"mask",
     "a pseudo-healthy label map made elsewhere, on the case's grid (measure --synth-mask)", 0,
     1, 1, hv_pipe_synth_mask},
};

static hv_status stage_synthesize(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const hv_pipe_synth *m = hv_pipe_synth_find(o->synth);
    if (!m) return HV_ERR_UNSUPPORTED;
    hv_status st = m->run(o, s);
    if (st != HV_OK) return st;
    /* spec section 9: column counts on straightened 1 mm crops, T = 0.7 as in
     * the reference's main; replaces heights and RHLV (a method that counts
     * on its own synthesized crops does it itself) */
    if (o->rhlv_reference && !m->own_reference) return hv_measure_reference_case(s->mask, s->ct, s->m, 0.7);
    return HV_OK;
}

static unsigned synthesize_needs(const hv_pipe_opts *o)
{
    const hv_pipe_synth *m = hv_pipe_synth_find(o->synth ? o->synth : "");
    hv_error_clear(); /* an unknown name is reported by hv_pipe_plan_make */
    return m ? m->needs : 0u;
}

/* -------------------------------------------------------------- grade */

static int grade_rule(const hv_pipe_opts *o, const hv_vert_measure *v)
{
    (void)o;
    return hv_measure_genant_vert(v);
}

static int grade_svm(const hv_pipe_opts *o, const hv_vert_measure *v)
{
    double x[3] = {v->rhlv[HV_REG_ANT], v->rhlv[HV_REG_MID], v->rhlv[HV_REG_POST]};
    return hv_svm_predict((const hv_svm_grader *)o->grader_model, x);
}

/* senet3d is trained on the cohort's crops at the end of a run (src/mpi/
 * gather.c): no case can be graded by it alone, so a case's own grade is
 * -1 (not graded) until then; its needs make the run straighten and crop
 * every case, whose boxes the store keeps (/vertebrae/crop3d). `measure
 * --grader senet3d:MODEL` uses the same needs and grades the crops with a
 * saved network after the pipeline (src/cli/cmd_measure.c). */
static int grade_cohort(const hv_pipe_opts *o, const hv_vert_measure *v)
{
    (void)o;
    (void)v;
    return -1;
}

/* The registered graders. */
static const hv_pipe_grader graders[] = {
    {"rule", "Genant rule on the largest of anterior, middle and posterior RHLV", 0, grade_rule,
     0},
    {"svm", "an SVM saved by `healthivert svm` (RHLV anterior, middle, posterior)", 1,
     grade_svm, 0},
    {"senet3d",
     "the 3-D SupCon-SENet, trained at the end of a run on each vertebra's 64^3 crop box "
     "(grader.method = senet3d; per case: not graded)",
     0, grade_cohort, HV_PIPE_CROPS | HV_PIPE_SPINE},
};

static unsigned grade_needs(const hv_pipe_opts *o)
{
    const hv_pipe_grader *g = hv_pipe_grader_find(o->grader ? o->grader : "");
    hv_error_clear(); /* an unknown name is reported by hv_pipe_plan_make */
    return g ? g->needs : 0u;
}

static hv_status stage_grade(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const hv_pipe_grader *g = hv_pipe_grader_find(o->grader);
    if (!g) return HV_ERR_UNSUPPORTED;
    for (size_t i = 0; i < s->m->n; i++) {
        hv_vert_measure *v = &s->m->v[i];
        /* part of it is outside the image: its heights are not its own */
        v->grade = (v->flags & HV_MEAS_TRUNCATED) ? -1 : g->grade(o, v);
    }
    return HV_OK;
}

/* ------------------------------------------------------------ attention */

static int attention_on(const hv_pipe_opts *o) { return o->attention_model != NULL; }

/* ------------------------------------------------------------- pictures */

static int pictures_on(const hv_pipe_opts *o) { return o->pictures != HV_PIPE_PICTURES_NONE; }

/* ---------------------------------------------------------------- table */

static const hv_pipe_stage table[] = {
    {"load", "read and check the mask, the CT and the centroid file", 0, 0, HV_PIPE_VOLUMES,
     NULL, NULL, stage_load},
    {"straighten", "straighten the spine along its body centres, de-pedicle", HV_PIPE_VOLUMES,
     0, HV_PIPE_SPINE, NULL, NULL, stage_straighten},
    {"crop", "one 64 x 256 x 256 crop per vertebra of the straightened spine", HV_PIPE_SPINE, 0,
     HV_PIPE_CROPS, NULL, NULL, stage_crop},
    {"attention",
     "Grad-CAM++ map and fracture probability per crop (attention.model; spec 7)",
     HV_PIPE_CROPS, 0, HV_PIPE_ATTENTION, attention_on, NULL, hv_pipe_attention_run},
    {"measure", "heights and height maps of every labelled vertebra", HV_PIPE_VOLUMES, 0,
     HV_PIPE_HEIGHTS, NULL, NULL, stage_measure},
    {"synthesize", "pseudo-healthy heights and RHLV (synthesis.method)", HV_PIPE_HEIGHTS,
     HV_PIPE_ATTENTION, HV_PIPE_SYNTH, NULL, synthesize_needs, stage_synthesize},
    {"grade", "a Genant grade per vertebra (grader)", HV_PIPE_SYNTH, 0, HV_PIPE_GRADES, NULL,
     grade_needs, stage_grade},
    {"pictures", "height-loss planes and QC slices per vertebra (output.images)",
     HV_PIPE_SYNTH, HV_PIPE_CROPS, HV_PIPE_PICTURES, pictures_on, NULL, hv_pipe_pictures_run},
};

static const hv_pipe_table default_table = {table, (int)(sizeof table / sizeof table[0])};

const hv_pipe_table *hv_pipe_default(void) { return &default_table; }

/* ----------------------------------------------------------- registries */

#define FIND(arr, name, kind, what)                                                                 \
    do {                                                                                        \
        for (size_t i_ = 0; i_ < sizeof arr / sizeof arr[0]; i_++)                              \
            if (name && !strcmp(arr[i_].name, name)) return &arr[i_];                           \
        char have_[128];                                                                        \
        hv_pipe_##kind##_names(have_, sizeof have_);                                            \
        hv_error_set(HV_ERR_UNSUPPORTED, "%s '%s' is not available (this build has: %s)", what,  \
                     name ? name : "", have_);                                                  \
        return NULL;                                                                            \
    } while (0)

#define NAMES(arr, buf, cap)                                                                    \
    do {                                                                                        \
        size_t len_ = 0;                                                                        \
        if (cap) buf[0] = 0;                                                                    \
        for (size_t i_ = 0; i_ < sizeof arr / sizeof arr[0] && len_ + 1 < cap; i_++) {          \
            int n_ = snprintf(buf + len_, cap - len_, "%s%s", i_ ? ", " : "", arr[i_].name);    \
            if (n_ < 0) break;                                                                  \
            len_ += (size_t)n_ < cap - len_ ? (size_t)n_ : cap - len_ - 1;                      \
        }                                                                                       \
        return buf;                                                                             \
    } while (0)

const hv_pipe_synth *hv_pipe_synth_find(const char *name) { FIND(synths, name, synth, "synthesis method"); }
const hv_pipe_grader *hv_pipe_grader_find(const char *name) { FIND(graders, name, grader, "grader"); }
char *hv_pipe_synth_names(char *buf, size_t cap) { NAMES(synths, buf, cap); }
char *hv_pipe_grader_names(char *buf, size_t cap) { NAMES(graders, buf, cap); }
