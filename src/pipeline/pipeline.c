/*
 * pipeline.c: plans and runs a table of stages on one case (hv/pipeline.h).
 *
 * The plan is made once per run, not per case: which rows run depends only on
 * the options and on what the caller wants, so a run of 100,000 cases checks
 * the table once and every case then only walks the active rows. Walking the
 * table backwards from the wanted products switches on exactly the stages
 * something downstream asks for; walking it forwards then checks that every
 * active stage's needs are made by an earlier active stage, so a table whose
 * order is wrong is refused before the first case instead of failing every
 * case with the same message.
 *
 * A required product is one the caller wants or an active stage needs: its
 * stage failing fails the case, with the stage's name in front of the reason
 * ("load: 0007_ct.nii.gz: not a NIfTI file"). A product that is only used
 * (the crops behind the QC pictures) is optional: its stage failing is a
 * warning, and the stages after it see the product missing and do without.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/pipeline.h"
#include "pipeline_internal.h"

void hv_pipe_state_init(hv_pipe_state *s, const hv_case *cs)
{
    memset(s, 0, sizeof *s);
    s->cs = cs;
    s->failed_stage = -1;
}

void hv_pipe_state_clear(hv_pipe_state *s)
{
    for (size_t i = 0; i < s->n_crops; i++) hv_spine_crop_free(s->crops[i]);
    free(s->crops);
    hv_spine_case_free(s->spine);
    hv_measure_spine_free(s->m);
    hv_io_centroids_free(s->ctd);
    hv_vol_free(s->ct);
    hv_vol_free(s->mask);
    free(s->img);
    free(s->qc);
    for (size_t i = 0; i < s->n_syn; i++) {
        if (s->syn_labels) hv_vol_free(s->syn_labels[i]);
        if (s->syn_ct) hv_vol_free(s->syn_ct[i]);
    }
    free(s->syn_labels);
    free(s->syn_ct);
    hv_pipe_attention_clear(s);
    if (s->extra && s->extra_free) s->extra_free(s->extra);
    const hv_case *cs = s->cs;
    struct hv_pipe_loader *l = s->loader;
    hv_pipe_state_init(s, cs);
    s->loader = l;
}

const hv_spine_crop *hv_pipe_crop_find(const hv_pipe_state *s, int label)
{
    for (size_t i = 0; i < s->n_crops; i++)
        if (s->crops[i] && s->crops[i]->label == label) return s->crops[i];
    return NULL;
}

/* Names of the products in `bits`, "a, b" (for messages). */
static const char *product_names(unsigned bits, char *buf, size_t cap)
{
    static const char *const names[] = {"volumes", "spine",  "crops",  "attention",
                                        "heights", "synth",  "grades", "pictures"};
    size_t len = 0;
    buf[0] = 0;
    for (unsigned b = 0; b < 32 && len + 1 < cap; b++) {
        if (!(bits & (1u << b))) continue;
        char one[24];
        if (b < sizeof names / sizeof names[0]) snprintf(one, sizeof one, "%s", names[b]);
        else snprintf(one, sizeof one, "extra%u", b - 16);
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", one);
        if (n < 0) break;
        len += (size_t)n < cap - len ? (size_t)n : cap - len - 1;
    }
    return buf;
}

static int name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 23) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

static unsigned stage_needs(const hv_pipe_stage *st, const hv_pipe_opts *o)
{
    return st->needs | (st->method_needs ? st->method_needs(o) : 0u);
}

hv_status hv_pipe_plan_make(const hv_pipe_table *t, const hv_pipe_opts *o, unsigned want,
                            hv_pipe_plan *out)
{
    memset(out, 0, sizeof *out);
    if (!t || !o || t->n < 1)
        return hv_error_set(HV_ERR_ARG, "pipeline: no table or no options");
    if (t->n > HV_PIPE_MAX_STAGES)
        return hv_error_set(HV_ERR_LIMIT, "pipeline: %d stages (at most %d)", t->n,
                            HV_PIPE_MAX_STAGES);
    for (int i = 0; i < t->n; i++) {
        const hv_pipe_stage *st = &t->stage[i];
        if (!name_ok(st->name) || !st->run)
            return hv_error_set(HV_ERR_ARG,
                                "pipeline: stage %d has no run function or a bad name ('%s'; "
                                "a-z, 0-9 and _, at most 23)",
                                i, st->name ? st->name : "(null)");
        for (int j = 0; j < i; j++)
            if (!strcmp(t->stage[j].name, st->name))
                return hv_error_set(HV_ERR_ARG, "pipeline: two stages are called '%s'", st->name);
    }
    /* methods named by the options exist (their needs feed the plan) */
    if (!hv_pipe_synth_find(o->synth ? o->synth : "")) return HV_ERR_UNSUPPORTED;
    const hv_pipe_grader *g = hv_pipe_grader_find(o->grader ? o->grader : "");
    if (!g) return HV_ERR_UNSUPPORTED;
    if (g->needs_model && !o->grader_model)
        return hv_error_set(HV_ERR_ARG, "pipeline: grader '%s' needs a model", g->name);
    if (o->synth && (!strcmp(o->synth, "gan") || !strcmp(o->synth, "aotgan")) && !o->synth_model)
        return hv_error_set(HV_ERR_ARG, "pipeline: synthesis 'gan' needs a model "
                            "(synthesis.model, measure --model)");
    if (o->synth && !strcmp(o->synth, "mask") && !o->synth_mask)
        return hv_error_set(HV_ERR_ARG, "pipeline: synthesis 'mask' needs a pseudo-healthy "
                            "label map (measure --synth-mask)");

    /* backwards: switch on what something downstream asks for; a stage
     * making a required product makes its needs required too, while what a
     * stage only uses, and what an optional stage needs, stays optional */
    unsigned wanted = want, required = want, active = 0;
    for (int i = t->n - 1; i >= 0; i--) {
        const hv_pipe_stage *st = &t->stage[i];
        if (st->enabled && !st->enabled(o)) continue;
        if (!(st->produces & wanted)) continue;
        active |= 1u << i;
        unsigned nd = stage_needs(st, o);
        wanted |= nd | st->uses;
        if (st->produces & required) required |= nd;
    }
    /* forwards: every active stage's needs come from an earlier active one */
    unsigned made = 0;
    for (int i = 0; i < t->n; i++) {
        if (!(active & (1u << i))) continue;
        const hv_pipe_stage *st = &t->stage[i];
        unsigned missing = stage_needs(st, o) & ~made;
        if (missing) {
            char nb[128], who[160] = "";
            product_names(missing, nb, sizeof nb);
            for (int j = 0; j < t->n; j++)
                if (t->stage[j].produces & missing) {
                    snprintf(who, sizeof who, " (stage '%s' makes it%s)", t->stage[j].name,
                             j > i ? ", but comes later"
                                   : " but is switched off by the options");
                    break;
                }
            return hv_error_set(HV_ERR_ARG, "pipeline: stage '%s' needs %s, which no earlier "
                                "stage makes%s", st->name, nb, who);
        }
        made |= st->produces;
    }
    out->t = t;
    out->o = o;
    out->active = active;
    /* a wanted product whose stage the options switch off is not made */
    out->required = required & made;
    return HV_OK;
}

hv_status hv_pipe_run(const hv_pipe_plan *p, hv_pipe_state *s)
{
    const hv_pipe_table *t = p->t;
    const char *id = s->cs && s->cs->id ? s->cs->id : "?";
    s->failed_stage = -1;
    for (int i = 0; i < t->n; i++) {
        s->seconds[i] = 0;
        if (!(p->active & (1u << i))) continue;
        const hv_pipe_stage *st = &t->stage[i];
        const int hard = (st->produces & p->required) != 0;
        unsigned missing = stage_needs(st, p->o) & ~s->have;
        hv_status rc;
        if (missing) {
            /* an optional stage before it failed (else the case would have),
             * and its warning said so: skip quietly unless this one's
             * products are required */
            if (!hard) continue;
            char nb[128];
            rc = hv_error_set(HV_ERR_EMPTY, "no %s (an earlier stage failed)",
                              product_names(missing, nb, sizeof nb));
            s->failed_stage = i;
            return hv_error_wrap(rc, "%s", st->name);
        }
        double t0 = hv_time_now();
        hv_error_clear();
        rc = st->run(p->o, s);
        s->seconds[i] = hv_time_now() - t0;
        if (rc == HV_OK) {
            s->have |= st->produces;
            continue;
        }
        const char *det = hv_error_detail();
        size_t ls = strlen(st->name);
        if (!hard) {
            char nb[128];
            hv_log_warn("case %s: stage %s failed, going on without its %s: %s", id, st->name,
                        product_names(st->produces, nb, sizeof nb), det);
            hv_error_clear();
            continue;
        }
        /* the module may already have said where ("measure: ...") */
        if (strncmp(det, st->name, ls) || det[ls] != ':') hv_error_wrap(rc, "%s", st->name);
        s->failed_stage = i;
        return rc;
    }
    return HV_OK;
}

char *hv_pipe_timings(const hv_pipe_plan *p, const hv_pipe_state *s, char *buf, size_t cap)
{
    size_t len = 0;
    if (!cap) return buf;
    buf[0] = 0;
    for (int i = 0; i < p->t->n && len + 1 < cap; i++) {
        if (!(p->active & (1u << i))) continue;
        int n = snprintf(buf + len, cap - len, "%s%s %.3f", len ? ", " : "", p->t->stage[i].name,
                         s->seconds[i]);
        if (n < 0) break;
        len += (size_t)n < cap - len ? (size_t)n : cap - len - 1;
    }
    return buf;
}
