/*
 * test_pipeline.c: the stage table's plan and run (hv/pipeline.h).
 *
 * Plans: which rows of the default table run for what a caller wants, worked
 * out by hand from the table in stages.c (load, straighten, crop, attention,
 * measure, synthesize, grade, pictures) and its needs/uses (attention on
 * only with a classifier; synthesize uses its maps); tables that must be
 * refused (bad order, duplicate names, too many rows, unknown methods).
 * Runs: a table of counting stages shows that an inactive stage is never
 * called, a required stage's failure fails the case with its name in front,
 * an optional stage's failure does not, and a stage whose optional input
 * is missing is skipped. Last, one phantom case through the default table
 * with pictures: crops for every measured vertebra, truth grades of the
 * phantom's fractured vertebrae, seconds only for the rows that ran.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/phantom.h"
#include "hv/pipeline.h"
#include "hv_test.h"

enum { LOAD, STRAIGHTEN, CROP, ATTN, MEASURE, SYNTH, GRADE, PICTURES, N_DEFAULT };
#define BIT(i) (1u << (i))

static int row_of(const hv_pipe_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->stage[i].name, name)) return i;
    return -1;
}

static void check_plans(void)
{
    const hv_pipe_table *t = hv_pipe_default();
    static const char *const names[N_DEFAULT] = {"load", "straighten", "crop", "attention",
                                                 "measure", "synthesize", "grade", "pictures"};
    HV_REQUIRE_V(t->n == N_DEFAULT, "default table has %d rows, expected %d", t->n, N_DEFAULT);
    for (int i = 0; i < N_DEFAULT; i++)
        HV_CHECK(row_of(t, names[i]) == i, "row %d is '%s', expected '%s'", i, t->stage[i].name,
                 names[i]);

    hv_pipe_opts o;
    hv_pipe_plan p;
    hv_pipe_opts_default(&o);
    /* the runner without pictures: no spine stage at all */
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES | HV_PIPE_PICTURES, &p));
    HV_CHECK(p.active == (BIT(LOAD) | BIT(MEASURE) | BIT(SYNTH) | BIT(GRADE)),
             "grades, pictures off: active 0x%x", p.active);
    /* with QC pictures: straighten and crop run, but only as optional */
    o.pictures = HV_PIPE_PICTURES_QC;
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES | HV_PIPE_PICTURES, &p));
    HV_CHECK(p.active == (0xffu & ~BIT(ATTN)),
             "grades + pictures: active 0x%x (all but attention: no classifier)", p.active);
    HV_CHECK(!(p.required & (HV_PIPE_SPINE | HV_PIPE_CROPS)),
             "pictures only use the crops: spine and crops optional (required 0x%x)", p.required);
    HV_CHECK((p.required & (HV_PIPE_VOLUMES | HV_PIPE_HEIGHTS | HV_PIPE_SYNTH)) ==
                 (HV_PIPE_VOLUMES | HV_PIPE_HEIGHTS | HV_PIPE_SYNTH),
             "pictures need heights and synthesis: required 0x%x", p.required);
    /* `straighten`: crops wanted, so the spine stage is required */
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_CROPS, &p));
    HV_CHECK(p.active == (BIT(LOAD) | BIT(STRAIGHTEN) | BIT(CROP)), "crops: active 0x%x",
             p.active);
    HV_CHECK(p.required & HV_PIPE_SPINE, "crops: the spine is required (0x%x)", p.required);
    /* attention: on only with a classifier (the pointer is not called by a
     * plan); it needs the crops, so straighten and crop run; synthesize
     * uses its maps, so grades alone switch it on, as optional (and its
     * needs with it); wanted, it and the spine stages are required */
    o.pictures = HV_PIPE_PICTURES_NONE;
    int fake_model = 0;
    o.attention_model = &fake_model;
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES, &p));
    HV_CHECK(p.active == (BIT(LOAD) | BIT(STRAIGHTEN) | BIT(CROP) | BIT(ATTN) | BIT(MEASURE) |
                          BIT(SYNTH) | BIT(GRADE)),
             "grades with a classifier: active 0x%x", p.active);
    HV_CHECK(!(p.required & (HV_PIPE_ATTENTION | HV_PIPE_SPINE | HV_PIPE_CROPS)),
             "synthesize only uses the maps: attention, spine, crops optional (0x%x)",
             p.required);
    HV_CHECK(t->stage[SYNTH].uses & HV_PIPE_ATTENTION, "synthesize uses the attention maps");
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES | HV_PIPE_ATTENTION, &p));
    HV_CHECK((p.required & (HV_PIPE_ATTENTION | HV_PIPE_SPINE | HV_PIPE_CROPS)) ==
                 (HV_PIPE_ATTENTION | HV_PIPE_SPINE | HV_PIPE_CROPS),
             "attention wanted: it, the spine and the crops required (0x%x)", p.required);
    /* crops only (`straighten`): attention is not asked for */
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_CROPS, &p));
    HV_CHECK(!(p.active & BIT(ATTN)), "crops only: no attention (0x%x)", p.active);
    o.attention_model = NULL;
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES | HV_PIPE_ATTENTION, &p));
    HV_CHECK(!(p.active & BIT(ATTN)) && !(p.active & BIT(CROP)),
             "no classifier: attention and the spine stages off (0x%x)", p.active);
    /* unknown synthesis method / grader, grader without model */
    o.synth = "gan-not-built";
    HV_CHECK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES, &p) == HV_ERR_UNSUPPORTED &&
                 strstr(hv_error_detail(), "gan-not-built") &&
                 strstr(hv_error_detail(), "baseline"),
             "unknown synthesis method named with the list: %s", hv_error_detail());
    o.synth = "baseline";
    o.grader = "svm";
    HV_CHECK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES, &p) == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "needs a model"),
             "svm grader without a model: %s", hv_error_detail());
    o.grader = "rule";
    char buf[64];
    HV_CHECK(!strcmp(hv_pipe_grader_names(buf, sizeof buf), "rule, svm, senet3d"),
             "graders: '%s'", buf);
    /* senet3d (trained at gather on the crops' boxes) needs the crops:
     * grades alone switch straighten and crop on, as required; the rule
     * does not */
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES, &p));
    HV_CHECK(!(p.active & BIT(CROP)), "rule: no crops (0x%x)", p.active);
    o.grader = "senet3d";
    HV_CHECK_OK(hv_pipe_plan_make(t, &o, HV_PIPE_GRADES, &p));
    HV_CHECK(p.active == (BIT(LOAD) | BIT(STRAIGHTEN) | BIT(CROP) | BIT(MEASURE) | BIT(SYNTH) |
                          BIT(GRADE)) &&
                 (p.required & (HV_PIPE_SPINE | HV_PIPE_CROPS)) == (HV_PIPE_SPINE | HV_PIPE_CROPS),
             "senet3d: straighten and crop active and required (active 0x%x, required 0x%x)",
             p.active, p.required);
    o.grader = "rule";
}

/* ----------------------------------------------------- counting stages */

typedef struct {
    int calls[8];
    int fail;                    /* row index that fails, -1 none */
} counter;

static hv_status count_run(int row, const hv_pipe_opts *o)
{
    counter *c = o->user;
    c->calls[row]++;
    if (c->fail == row) return hv_error_set(HV_ERR_NUMERIC, "row %d broke", row);
    return HV_OK;
}
static hv_status r0(const hv_pipe_opts *o, hv_pipe_state *s) { (void)s; return count_run(0, o); }
static hv_status r1(const hv_pipe_opts *o, hv_pipe_state *s) { (void)s; return count_run(1, o); }
static hv_status r2(const hv_pipe_opts *o, hv_pipe_state *s) { (void)s; return count_run(2, o); }
static hv_status r3(const hv_pipe_opts *o, hv_pipe_state *s) { (void)s; return count_run(3, o); }
static hv_status r4(const hv_pipe_opts *o, hv_pipe_state *s) { (void)s; return count_run(4, o); }

static int never(const hv_pipe_opts *o) { (void)o; return 0; }

#define X0 HV_PIPE_EXTRA0
#define X1 (HV_PIPE_EXTRA0 << 1)
#define X2 (HV_PIPE_EXTRA0 << 2)
#define X3 (HV_PIPE_EXTRA0 << 3)

static void check_runs(void)
{
    /* a -> b (needs a) ; c (uses b, optional) ; d needs c ; e switched off */
    const hv_pipe_stage rows[] = {
        {"a", "", 0, 0, X0, NULL, NULL, r0},
        {"b", "", X0, 0, X1, NULL, NULL, r1},
        {"c", "", X0, X1, X2, NULL, NULL, r2},
        {"d", "", X2, 0, X3, NULL, NULL, r3},
        {"e", "", X0, 0, X3 << 1, never, NULL, r4},
    };
    hv_pipe_table t = {rows, 5};
    hv_pipe_opts o;
    hv_pipe_opts_default(&o);
    counter c;
    memset(&c, 0, sizeof c);
    o.user = &c;
    hv_pipe_plan p;
    hv_case cs = {"case1", NULL, NULL, NULL, HV_OK, NULL};
    hv_pipe_state s;

    HV_CHECK_OK(hv_pipe_plan_make(&t, &o, X3 | (X3 << 1), &p));
    HV_CHECK(p.active == 0xfu, "a..d active, e off: 0x%x", p.active);
    HV_CHECK((p.required & X1) == 0 && (p.required & X2), "b optional, c required: 0x%x",
             p.required);
    /* b fails: optional, the case goes on; c still runs */
    c.fail = 1;
    hv_pipe_state_init(&s, &cs);
    HV_CHECK(hv_pipe_run(&p, &s) == HV_OK, "optional b failing: case goes on: %s",
             hv_error_detail());
    HV_CHECK(c.calls[0] == 1 && c.calls[1] == 1 && c.calls[2] == 1 && c.calls[3] == 1 &&
                 c.calls[4] == 0,
             "calls %d %d %d %d %d", c.calls[0], c.calls[1], c.calls[2], c.calls[3], c.calls[4]);
    HV_CHECK(!(s.have & X1) && (s.have & X3), "b's product missing, d's there: 0x%x", s.have);
    HV_CHECK(s.seconds[4] == 0 && s.failed_stage == -1, "e: 0 s; no failed stage");
    hv_pipe_state_clear(&s);
    /* c fails: required by d: the case fails, named "c: ..." */
    c.fail = 2;
    memset(c.calls, 0, sizeof c.calls);
    hv_pipe_state_init(&s, &cs);
    hv_status st = hv_pipe_run(&p, &s);
    HV_CHECK(st == HV_ERR_NUMERIC && !strcmp(hv_error_detail(), "c: row 2 broke"),
             "required c failing: %d '%s'", st, hv_error_detail());
    HV_CHECK(s.failed_stage == 2 && c.calls[3] == 0, "failed at row %d, d not called (%d)",
             s.failed_stage, c.calls[3]);
    hv_pipe_state_clear(&s);

    /* refusals */
    const hv_pipe_stage bad_order[] = {
        {"b", "", X0, 0, X1, NULL, NULL, r1},
        {"a", "", 0, 0, X0, NULL, NULL, r0},
    };
    hv_pipe_table tb = {bad_order, 2};
    HV_CHECK(hv_pipe_plan_make(&tb, &o, X1, &p) == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "stage 'b' needs extra0") &&
                 strstr(hv_error_detail(), "'a' makes it, but comes later"),
             "need made later: %s", hv_error_detail());
    const hv_pipe_stage dup[] = {
        {"a", "", 0, 0, X0, NULL, NULL, r0},
        {"a", "", X0, 0, X1, NULL, NULL, r1},
    };
    hv_pipe_table td = {dup, 2};
    HV_CHECK(hv_pipe_plan_make(&td, &o, X1, &p) == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "two stages are called 'a'"),
             "duplicate: %s", hv_error_detail());
    const hv_pipe_stage badname[] = {{"Load Me", "", 0, 0, X0, NULL, NULL, r0}};
    hv_pipe_table tn = {badname, 1};
    HV_CHECK(hv_pipe_plan_make(&tn, &o, X0, &p) == HV_ERR_ARG, "bad name refused");
    hv_pipe_stage many[HV_PIPE_MAX_STAGES + 1];
    char nm[HV_PIPE_MAX_STAGES + 1][16];
    for (int i = 0; i <= HV_PIPE_MAX_STAGES; i++) {
        snprintf(nm[i], sizeof nm[i], "s%d", i);
        many[i] = (hv_pipe_stage){nm[i], "", 0, 0, X0, NULL, NULL, r0};
    }
    hv_pipe_table tm = {many, HV_PIPE_MAX_STAGES + 1};
    HV_CHECK(hv_pipe_plan_make(&tm, &o, X0, &p) == HV_ERR_LIMIT, "too many rows refused");
    tm.n = HV_PIPE_MAX_STAGES;
    HV_CHECK_OK(hv_pipe_plan_make(&tm, &o, X0, &p));
    /* wanting only what a switched-off stage makes: nothing runs */
    HV_CHECK(hv_pipe_plan_make(&t, &o, X3 << 1, &p) == HV_OK && p.active == 0 &&
                 p.required == 0,
             "wanted product of a switched-off stage: active 0x%x required 0x%x", p.active,
             p.required);
}

/* ------------------------------------------------- one real phantom case */

static void check_phantom_case(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tmp-pipeline", HV_TEST_BINARY_DIR);
    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 17; /* T10 .. L2: 5 vertebrae, at 2 mm as tests/mpi's cohort */
    po.last_label = 21;
    po.spacing[0] = po.spacing[1] = po.spacing[2] = 2.0;
    po.fracture_rate = 0.5;
    po.seed = 11;
    HV_REQUIRE_V(hv_phantom_cohort_write(&po, dir, 1, NULL, NULL) == HV_OK, "phantom: %s",
                 hv_error_detail());
    hv_phantom_case *pc = NULL;
    HV_REQUIRE_V(hv_phantom_case_make(&po, 0, &pc) == HV_OK, "phantom model: %s",
                 hv_error_detail());
    char ct[600], msk[600];
    snprintf(ct, sizeof ct, "%s/raw/%s/%s.nii.gz", dir, pc->id, pc->id);
    snprintf(msk, sizeof msk, "%s/raw/%s/%s_msk.nii.gz", dir, pc->id, pc->id);
    hv_case cs = {pc->id, ct, msk, NULL, HV_OK, NULL};

    hv_pipe_opts o;
    hv_pipe_opts_default(&o);
    o.pictures = HV_PIPE_PICTURES_QC;
    hv_pipe_plan p;
    hv_pipe_state s;
    HV_REQUIRE_V(hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_GRADES | HV_PIPE_PICTURES,
                                   &p) == HV_OK, "plan: %s", hv_error_detail());
    hv_pipe_state_init(&s, &cs);
    hv_status st = hv_pipe_run(&p, &s);
    HV_CHECK(st == HV_OK, "phantom case runs: %s", hv_error_detail());
    if (st == HV_OK) {
        HV_CHECK(s.m->n == (size_t)pc->n_vert, "%zu vertebrae measured, phantom has %d", s.m->n,
                 pc->n_vert);
        for (int i = 0; i < N_DEFAULT; i++)
            if (i == ATTN) /* no classifier: not run, 0 s */
                HV_CHECK(s.seconds[i] == 0 && !(s.have & HV_PIPE_ATTENTION) && !s.attn,
                         "attention did not run (%g s)", s.seconds[i]);
            else
                HV_CHECK(s.seconds[i] > 0, "stage %s ran (%g s)", p.t->stage[i].name,
                         s.seconds[i]);
        int matched = 0;
        for (size_t i = 0; i < s.m->n; i++) {
            const hv_vert_measure *v = &s.m->v[i];
            HV_CHECK(hv_pipe_crop_find(&s, v->label) != NULL, "crop of label %d", v->label);
            /* the QC label channel of the sagittal view holds the target */
            const uint8_t *lab = s.qc + i * HV_PIPE_QC_BYTES +
                                 (size_t)HV_QC_LABEL * HV_PIPE_QC * HV_PIPE_QC;
            size_t on = 0;
            for (size_t q = 0; q < (size_t)HV_PIPE_QC * HV_PIPE_QC; q++) on += lab[q] == 255;
            HV_CHECK(on > 100, "label %d: %zu target pixels in its QC slice", v->label, on);
            for (int k = 0; k < pc->n_vert; k++)
                if (pc->vert[k].label == v->label && !pc->vert[k].truncated &&
                    !(v->flags & HV_MEAS_TRUNCATED)) {
                    matched++;
                    /* the phantom draws each loss strictly inside its Genant
                     * band; a fractured vertebra must be graded fractured */
                    if (pc->vert[k].grade >= 2)
                        HV_CHECK(v->grade >= 1, "label %d: truth grade %d, graded %d", v->label,
                                 pc->vert[k].grade, v->grade);
                }
        }
        HV_CHECK(matched >= 3, "%d vertebrae compared with the phantom's truth", matched);
        char tb[256];
        hv_pipe_timings(&p, &s, tb, sizeof tb);
        HV_CHECK(strstr(tb, "load ") == tb && strstr(tb, ", pictures "), "timings: %s", tb);
    }
    hv_pipe_state_clear(&s);
    hv_phantom_case_free(pc);
}

int main(void)
{
    check_plans();
    check_runs();
    check_phantom_case();
    return hv_test_done();
}
