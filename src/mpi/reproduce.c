/*
 * reproduce.c: `healthivert reproduce`: one run per comparison method, each
 * graded by the gather step's SVM protocol, then one table (repro_table.c).
 *
 * The configuration file is split in two texts of the same lines: the
 * [reproduce] section's lines (every other line blanked) parsed over this
 * file's small key table, and everything else (the [reproduce] lines
 * blanked) parsed as a run configuration, so messages keep the file's line
 * numbers and the run's strictness is the run's own. Each method gets a
 * fresh parse of the run text, the user's --set overrides replayed, and
 * synthesis.method and output.dir (<reproduce.output>/<method>) set by us:
 * the method's run is an ordinary `run` of that folder, resumed by its own
 * journals when it was started before (a finished run is re-graded, which
 * is deterministic, so re-running reproduce gives the same table).
 *
 * Data without grades (reproduce.table = quality, or auto with a dataset and
 * no input.split) gets the synthesis-quality table instead of the grading
 * one (repro_quality.c): rank 0 reads each finished run's store for it.
 *
 * Methods are the choices of the run's synthesis.method key: a new
 * synthesis method registered there is a method here without any change.
 * A method may also name a grader of its own (the choices of grader.method
 * other than auto, svm and rule: senet3d): that row is the baseline
 * synthesis graded by that grader in the SVM's protocol (same folds, same
 * val scoring), into <reproduce.output>/<grader>/. Every other row is
 * graded by the SVM, or by grader.method when that names such a grader.
 *
 * A method whose run fails is a row "failed" with hv_error_detail(); the run
 * returns the same status on every rank, so the ranks stay together and go
 * on with the next method. A stop request (SIGTERM) ends the command after
 * the method in flight stopped, without a table; re-running resumes.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/reproduce.h"
#include "run_internal.h"

#define MAX_METHODS 16

typedef struct repro_params {
    char methods[512];
    char output[1024];
    int published; /* index into ch_published */
    int table;     /* index into ch_table */
} repro_params;

static const char *const ch_published[] = {"auto", "none", "verse19", NULL};
static const char *const ch_table[] = {"auto", "grading", "quality", NULL};

#define RFIELD(f) .offset = offsetof(repro_params, f), .size = sizeof(((repro_params *)0)->f)
static const hv_run_key rkeys[] = {
    {"reproduce", "methods", "baseline",
     "comma-separated methods to compare: synthesis methods (the choices of synthesis.method, "
     "graded by the SVM protocol) or senet3d (the baseline graded by the 3-D SupCon-SENet in "
     "the same protocol); each runs into <reproduce.output>/<method>/",
     HV_KEY_STRING, RFIELD(methods)},
    {"reproduce", "output", "",
     "folder of the comparison: table.csv, table.md, table.png and one run folder per method",
     HV_KEY_PATH, RFIELD(output)},
    {"reproduce", "published", "auto",
     "published numbers printed beside ours (labelled published): verse19 (the seed paper's "
     "VerSe 2019 table, spec 13), none, or auto (verse19 when input.split's file name contains "
     "'verse19')",
     HV_KEY_CHOICE, .choices = ch_published, RFIELD(published)},
    {"reproduce", "table", "auto",
     "grading (the SVM protocol's macro P/R/F1 per method: needs grades), quality (spec 11's "
     "patch and global PSNR and SSIM, Dice, IoU and relative volume difference of the "
     "synthesized vertebra against the real one on healthy levels: data without grades; needs "
     "synthesis.crops = full), or auto "
     "(quality when input.source = dataset and input.split is empty, else grading)",
     HV_KEY_CHOICE, .choices = ch_table, RFIELD(table)},
};
#define N_RKEYS (sizeof rkeys / sizeof rkeys[0])

const hv_run_key *hv_repro_config_keys(size_t *n)
{
    *n = N_RKEYS;
    return rkeys;
}

struct hv_repro {
    char *path;
    char *run_text;
    size_t len;
    hv_run_config *rc;  /* the [reproduce] keys                             */
    hv_run_config *base; /* the run configuration, with the --set overrides */
    char **sets;         /* run --set overrides, replayed per method         */
    int n_sets;
    /* [reproduce.<method>] lines: "section.key=value" for that method only */
    int n_ovr;
    char (*ovr_method)[32]; /* n_ovr */
    char **ovr;             /* n_ovr, owned                                  */
    int *ovr_line;          /* n_ovr: the file's line                        */
    repro_params p;
    int n_methods;
    char methods[MAX_METHODS][32];
    int quality; /* 1: the synthesis-quality table (reproduce.table) */
};

void hv_repro_free(hv_repro *r)
{
    if (!r) return;
    free(r->path);
    free(r->run_text);
    hv_run_config_free(r->rc);
    hv_run_config_free(r->base);
    for (int i = 0; i < r->n_sets; i++) free(r->sets[i]);
    free(r->sets);
    for (int i = 0; i < r->n_ovr; i++) free(r->ovr[i]);
    free(r->ovr);
    free(r->ovr_method);
    free(r->ovr_line);
    free(r);
}

/* Is [ls, le) (trimmed) a section header, and which? -1: not a header; 0:
 * another section; 1: [reproduce]; 2: [reproduce.<method>], the method in
 * m (cap bytes; too long: m[0] = 0). */
static int header_kind(const char *ls, const char *le, char *m, size_t cap)
{
    while (ls < le && (*ls == ' ' || *ls == '\t')) ls++;
    if (ls == le || *ls != '[') return -1;
    const char *close = memchr(ls, ']', (size_t)(le - ls));
    if (!close) return -1;
    const char *s = ls + 1, *e = close;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if ((size_t)(e - s) == 9 && !memcmp(s, "reproduce", 9)) return 1;
    if ((size_t)(e - s) > 10 && !memcmp(s, "reproduce.", 10)) {
        size_t n = (size_t)(e - s) - 10;
        m[0] = 0;
        if (n < cap) {
            memcpy(m, s + 10, n);
            m[n] = 0;
        }
        return 2;
    }
    return 0;
}

/* One line of a [reproduce.<method>] section: "section.key = value" kept as
 * "section.key=value" for the method's run; blank lines and comments are
 * skipped. */
static hv_status add_override(hv_repro *r, const char *m, const char *ls, const char *le,
                              int line)
{
    while (ls < le && (*ls == ' ' || *ls == '\t' || *ls == '\r')) ls++;
    while (le > ls && (le[-1] == ' ' || le[-1] == '\t' || le[-1] == '\r')) le--;
    if (ls == le || *ls == ';' || *ls == '#') return HV_OK;
    const char *eq = memchr(ls, '=', (size_t)(le - ls));
    const char *ke = eq, *vs = eq ? eq + 1 : le;
    while (ke && ke > ls && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    while (vs < le && (*vs == ' ' || *vs == '\t')) vs++;
    if (!eq || ke == ls || !memchr(ls, '.', (size_t)(ke - ls)))
        return hv_error_set(HV_ERR_FORMAT, "%s:%d: [reproduce.%s] holds run keys as "
                            "section.key = value (e.g. synthesis.model = FILE)",
                            r->path, line, m);
    if (!m[0])
        return hv_error_set(HV_ERR_FORMAT, "%s:%d: [reproduce.<method>]: the method name is too "
                            "long", r->path, line);
    char *kv = hv_strfmt("%.*s=%.*s", (int)(ke - ls), ls, (int)(le - vs), vs);
    if (!kv) return hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
    if (!strncmp(kv, "synthesis.method=", 17) || !strncmp(kv, "output.dir=", 11)) {
        free(kv);
        return hv_error_set(HV_ERR_FORMAT, "%s:%d: [reproduce.%s] cannot set synthesis.method "
                            "or output.dir: reproduce sets them per method", r->path, line, m);
    }
    char **o = realloc(r->ovr, (size_t)(r->n_ovr + 1) * sizeof *o);
    if (o) r->ovr = o;
    char (*om)[32] = realloc(r->ovr_method, (size_t)(r->n_ovr + 1) * sizeof *om);
    if (om) r->ovr_method = om;
    int *ol = realloc(r->ovr_line, (size_t)(r->n_ovr + 1) * sizeof *ol);
    if (ol) r->ovr_line = ol;
    if (!o || !om || !ol) {
        free(kv);
        return hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
    }
    snprintf(r->ovr_method[r->n_ovr], sizeof r->ovr_method[0], "%s", m);
    r->ovr_line[r->n_ovr] = line;
    r->ovr[r->n_ovr++] = kv;
    return HV_OK;
}

hv_status hv_repro_load(const char *path, hv_repro **out)
{
    *out = NULL;
    char *text = NULL, *rtext = NULL;
    size_t len = 0;
    hv_status st = hv_file_read_all(path, "config", 1u << 20, &text, &len);
    if (st != HV_OK) return st;
    hv_repro *r = calloc(1, sizeof *r);
    rtext = malloc(len + 1);
    if (!r || !rtext || !(r->path = hv_strdup(path))) {
        st = hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
        goto done;
    }
    /* rtext: the [reproduce] lines; text: the others (blanked in place);
     * the [reproduce.<method>] lines go to r->ovr and are blanked in both */
    memcpy(rtext, text, len + 1);
    int in_repro = 0, line = 0;
    char m[32] = "";
    for (size_t i = 0; i < len && st == HV_OK;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        int k = header_kind(text + i, text + e, m, sizeof m);
        if (k >= 0) in_repro = k;
        if (in_repro == 2 && k < 0) st = add_override(r, m, text + i, text + e, line);
        for (int b = 0; b < 2; b++) {
            char *blank = b ? rtext : text;
            if (b ? in_repro == 1 : in_repro == 0) continue;
            for (size_t j = i; j < e; j++)
                if (blank[j] != '\r') blank[j] = ' ';
        }
        i = e + 1;
    }
    if (st != HV_OK) goto done;
    if ((st = hv_run_config_parse_table(rkeys, N_RKEYS, rtext, len, path, &r->rc)) != HV_OK)
        goto done;
    if ((st = hv_run_config_parse(text, len, path, &r->base)) != HV_OK) goto done;
    r->run_text = text;
    r->len = len;
    text = NULL;
    *out = r;
    r = NULL;
done:
    free(text);
    free(rtext);
    hv_repro_free(r);
    return st;
}

hv_status hv_repro_set(hv_repro *r, const char *a)
{
    if (!strncmp(a, "reproduce.", 10)) return hv_run_config_set(r->rc, a);
    if (!strncmp(a, "synthesis.method=", 17) || !strncmp(a, "output.dir=", 11))
        return hv_error_set(HV_ERR_ARG,
                            "--set %.40s: reproduce sets synthesis.method and output.dir itself "
                            "(reproduce.methods, reproduce.output)",
                            a);
    hv_status st = hv_run_config_set(r->base, a);
    if (st != HV_OK) return st;
    char **ns = realloc(r->sets, (size_t)(r->n_sets + 1) * sizeof *ns);
    if (!ns) return hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
    r->sets = ns;
    if (!(r->sets[r->n_sets] = hv_strdup(a))) return hv_error_set(HV_ERR_NOMEM, "reproduce");
    r->n_sets++;
    return HV_OK;
}

/* A grader named as a method (grader.method's choices but auto, svm, rule):
 * baseline synthesis graded by it. */
static int method_is_grader(const char *m)
{
    size_t n;
    const hv_run_key *k = hv_run_config_keys(&n);
    if (!strcmp(m, "auto") || !strcmp(m, "svm") || !strcmp(m, "rule")) return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(k[i].section, "grader") || strcmp(k[i].key, "method")) continue;
        for (int c = 0; k[i].choices[c]; c++)
            if (!strcmp(m, k[i].choices[c])) return 1;
    }
    return 0;
}

/* The known methods as "a, b, c". */
static void known_methods(char *buf, size_t cap)
{
    size_t n;
    const hv_run_key *k = hv_run_config_keys(&n);
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(k[i].section, "synthesis") || strcmp(k[i].key, "method")) continue;
        for (int c = 0; k[i].choices[c]; c++) {
            size_t l = strlen(buf);
            snprintf(buf + l, cap - l, "%s%s", c ? ", " : "", k[i].choices[c]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(k[i].section, "grader") || strcmp(k[i].key, "method")) continue;
        for (int c = 0; k[i].choices[c]; c++) {
            if (!method_is_grader(k[i].choices[c])) continue;
            size_t l = strlen(buf);
            snprintf(buf + l, cap - l, ", %s (baseline graded by it)", k[i].choices[c]);
        }
    }
}

static int method_known(const char *m)
{
    if (method_is_grader(m)) return 1;
    size_t n;
    const hv_run_key *k = hv_run_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(k[i].section, "synthesis") || strcmp(k[i].key, "method")) continue;
        for (int c = 0; k[i].choices[c]; c++)
            if (!strcmp(m, k[i].choices[c])) return 1;
    }
    return 0;
}

/* A fresh run configuration for method m (the caller frees *out). */
static hv_status method_config(const hv_repro *r, const char *m, hv_run_config **out)
{
    *out = NULL;
    hv_run_config *c = NULL;
    char *a = NULL;
    hv_status st = hv_run_config_parse(r->run_text, r->len, r->path, &c);
    for (int i = 0; st == HV_OK && i < r->n_sets; i++) st = hv_run_config_set(c, r->sets[i]);
    for (int i = 0; st == HV_OK && i < r->n_ovr; i++) {
        if (strcmp(r->ovr_method[i], m)) continue;
        st = hv_run_config_set(c, r->ovr[i]);
        if (st != HV_OK)
            hv_error_wrap(st, "%s:%d: [reproduce.%s] %s", r->path, r->ovr_line[i], m, r->ovr[i]);
    }
    const int grader = method_is_grader(m);
    if (st == HV_OK && !(a = hv_strfmt("synthesis.method=%s", grader ? "baseline" : m)))
        st = hv_error_set(HV_ERR_NOMEM, "reproduce");
    if (st == HV_OK) st = hv_run_config_set(c, a);
    free(a);
    a = NULL;
    if (grader) {
        /* over any grader.method of the file (a --set of it was replayed
         * above: the file's value is replaced, which --set allows) */
        if (st == HV_OK && !(a = hv_strfmt("grader.method=%s", m)))
            st = hv_error_set(HV_ERR_NOMEM, "reproduce");
        if (st == HV_OK) st = hv_run_config_set(c, a);
        free(a);
        a = NULL;
    }
    if (st == HV_OK && !(a = hv_strfmt("output.dir=%s/%s", r->p.output, m)))
        st = hv_error_set(HV_ERR_NOMEM, "reproduce");
    if (st == HV_OK) st = hv_run_config_set(c, a);
    free(a);
    if (st != HV_OK) {
        hv_run_config_free(c);
        return st;
    }
    *out = c;
    return HV_OK;
}

hv_status hv_repro_check(hv_repro *r)
{
    hv_status st = hv_run_config_fill(r->rc, &r->p, sizeof r->p);
    if (st != HV_OK) return st;
    char known[256];
    known_methods(known, sizeof known);
    if (!r->p.output[0])
        return hv_error_set(HV_ERR_ARG, "reproduce.output is empty: say where the table goes");
    const char *store = hv_run_config_get(r->base, "output", "store");
    if (store && store[0])
        return hv_error_set(HV_ERR_ARG, "output.store = %s: under reproduce every method's store "
                            "is <reproduce.output>/<method>/store.h5; leave output.store empty",
                            store);
    const char *gm = hv_run_config_get(r->base, "grader", "method");
    if (gm && !strcmp(gm, "rule"))
        return hv_error_set(HV_ERR_ARG, "grader.method = rule: reproduce grades with the SVM "
                            "protocol (spec 10); use auto, svm or senet3d");
    const char *src = hv_run_config_get(r->base, "input", "source");
    const char *split = hv_run_config_get(r->base, "input", "split");
    r->quality = r->p.table == 2 ||
                 (r->p.table == 0 && src && !strcmp(src, "dataset") && !(split && split[0]));
    r->n_methods = 0;
    const char *p = r->p.methods;
    for (;;) {
        const char *c = strchr(p, ',');
        const char *s = p, *e = c ? c : p + strlen(p);
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        char m[32];
        if (e - s >= (long)sizeof m)
            return hv_error_set(HV_ERR_ARG, "reproduce.methods: unknown method '%.*s' (known: "
                                "%s)", (int)(e - s), s, known);
        snprintf(m, sizeof m, "%.*s", (int)(e - s), s);
        if (!m[0])
            return hv_error_set(HV_ERR_ARG, "reproduce.methods = '%s': an empty method name "
                                "(known: %s)", r->p.methods, known);
        if (!method_known(m))
            return hv_error_set(HV_ERR_ARG, "reproduce.methods: unknown method '%s' (known: %s)",
                                m, known);
        for (int i = 0; i < r->n_methods; i++)
            if (!strcmp(r->methods[i], m))
                return hv_error_set(HV_ERR_ARG, "reproduce.methods: '%s' given twice", m);
        if (r->n_methods == MAX_METHODS)
            return hv_error_set(HV_ERR_ARG, "reproduce.methods: more than %d methods",
                                MAX_METHODS);
        memcpy(r->methods[r->n_methods++], m, sizeof m);
        if (!c) break;
        p = c + 1;
    }
    for (int i = 0; i < r->n_ovr; i++) {
        int listed = 0;
        for (int j = 0; j < r->n_methods; j++) listed |= !strcmp(r->methods[j], r->ovr_method[i]);
        if (!listed)
            return hv_error_set(HV_ERR_ARG, "%s:%d: [reproduce.%s]: '%s' is not in "
                                "reproduce.methods (%s)", r->path, r->ovr_line[i],
                                r->ovr_method[i], r->ovr_method[i], r->p.methods);
    }
    const char *crops = hv_run_config_get(r->base, "synthesis", "crops");
    for (int i = 0; i < r->n_methods; i++) {
        if (r->quality && method_is_grader(r->methods[i]))
            return hv_error_set(HV_ERR_ARG, "method %s is a grader: the synthesis-quality table "
                                "(data without grades) has nothing for it to grade",
                                r->methods[i]);
        /* every method but the baseline synthesizes an image: the quality
         * table needs it in the store */
        if (r->quality && strcmp(r->methods[i], "baseline") && !(crops && !strcmp(crops, "full")))
            return hv_error_set(HV_ERR_ARG, "method %s: synthesis.crops = %s: the synthesis-quality "
                                "table reads the synthesized CT crops from the store; set "
                                "synthesis.crops = full", r->methods[i], crops ? crops : "?");
        hv_run_config *c = NULL;
        st = method_config(r, r->methods[i], &c);
        if (st == HV_OK) st = hv_run_config_check(c);
        hv_run_config_free(c);
        if (st != HV_OK) return hv_error_wrap(st, "method %s", r->methods[i]);
    }
    return HV_OK;
}

hv_status hv_repro_prepare_output(const hv_repro *r)
{
    hv_status st = hv_mkdir_p(r->p.output);
    if (st != HV_OK) return hv_error_wrap(st, "reproduce.output %s", r->p.output);
    if (access(r->p.output, W_OK | X_OK))
        return hv_error_set(HV_ERR_IO, "reproduce.output %s: not writable (%s)", r->p.output,
                            strerror(errno));
    return HV_OK;
}

/* The published set: explicit, or from input.split's file name. */
static int published_set(const hv_repro *r)
{
    if (r->p.published == 1) return HV_REPRO_PUBLISHED_NONE;
    if (r->p.published == 2) return HV_REPRO_PUBLISHED_VERSE19;
    const char *split = hv_run_config_get(r->base, "input", "split");
    const char *base = split ? strrchr(split, '/') : NULL;
    base = base ? base + 1 : split;
    return base && strstr(base, "verse19") ? HV_REPRO_PUBLISHED_VERSE19 : HV_REPRO_PUBLISHED_NONE;
}

/* Rank 0: the grader result of a finished run, and how many of its
 * vertebrae fell back from the method's synthesis to the baseline's values
 * (a gan row equal to the baseline's says why). */
static hv_status read_grader(const char *store_path, hv_repro_row *row)
{
    hv_grader_result *g = &row->g;
    hv_store *s = NULL;
    hv_run_vrow *v = NULL;
    size_t nv = 0;
    int present = 0;
    hv_status st = hv_store_open_serial(store_path, 0, &s);
    if (st == HV_OK) st = hv_store_read_grader(s, g, &present);
    if (st == HV_OK) st = hv_store_read_vertebrae(s, &v, &nv);
    row->n_vertebrae = (long)nv;
    row->n_synth_fallback = 0;
    for (size_t i = 0; v && i < nv; i++)
        row->n_synth_fallback += (v[i].flags & HV_MEAS_SYNTH_FALLBACK) != 0;
    free(v);
    if (s) hv_store_close(s);
    if (st == HV_OK && !present)
        st = hv_error_set(HV_ERR_EMPTY, "%s: the run left no grader result", store_path);
    return st;
}

hv_status hv_repro_execute(hv_repro *r, MPI_Comm comm, hv_repro_summary *out)
{
    memset(out, 0, sizeof *out);
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    hv_repro_row *rows = calloc(MAX_METHODS, sizeof *rows);
    hv_repro_qrow *qrows = calloc(MAX_METHODS, sizeof *qrows);
    if (!rows || !qrows) {
        free(rows);
        free(qrows);
        return hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
    }
    hv_status st = HV_OK;
    out->n_methods = r->n_methods;
    out->quality = r->quality;
    snprintf(out->table_dir, sizeof out->table_dir, "%s", r->p.output);
    for (int i = 0; i < r->n_methods; i++) {
        hv_repro_row *row = &rows[i];
        snprintf(row->method, sizeof row->method, "%s", r->methods[i]);
        if (rank == 0) {
            fprintf(stderr, "reproduce: method %d of %d: %s -> %s/%s/\n", i + 1, r->n_methods,
                    row->method, r->p.output, row->method);
            fflush(stderr);
        }
        hv_run_config *c = NULL;
        hv_run_summary sum;
        memset(&sum, 0, sizeof sum);
        hv_status ms = method_config(r, row->method, &c);
        if (ms == HV_OK) ms = hv_run_execute(c, comm, &sum);
        hv_run_config_free(c);
        if (ms == HV_ERR_INTERRUPTED) {
            st = hv_error_set(HV_ERR_INTERRUPTED, "stopped during method %s; re-run the same "
                              "command to resume", row->method);
            goto done;
        }
        row->n_cases = sum.n_cases;
        row->n_failed_cases = sum.n_failed;
        hv_repro_qrow *qrow = &qrows[i];
        memcpy(qrow->method, row->method, sizeof qrow->method);
        qrow->n_cases = sum.n_cases;
        qrow->n_failed_cases = sum.n_failed;
        if (ms == HV_OK && rank == 0 && r->quality) {
            char *csv = hv_strfmt("%s/%s/quality_vertebrae.csv", r->p.output, row->method);
            ms = csv ? hv_repro_quality_read(sum.store_path, csv, qrow)
                     : hv_error_set(HV_ERR_NOMEM, "reproduce: out of memory");
            free(csv);
        }
        if (ms == HV_OK && rank == 0 && !r->quality) ms = read_grader(sum.store_path, row);
        /* the grader the row must have: the method's own, grader.method's
         * when it names one (senet3d), else the SVM */
        const char *gm = hv_run_config_get(r->base, "grader", "method");
        const char *want = method_is_grader(row->method) ? row->method
                           : gm && method_is_grader(gm) ? gm
                                                        : "svm";
        if (ms == HV_OK && rank == 0 && !r->quality && strcmp(row->g.method, want))
            ms = hv_error_set(HV_ERR_EMPTY, "graded by the %s, not the %s protocol: %s",
                              row->g.method[0] ? row->g.method : "(none)",
                              !strcmp(want, "svm") ? "SVM" : want,
                              row->g.note[0] ? row->g.note : "no reason recorded");
        if (ms == HV_OK) {
            row->ok = qrow->ok = 1;
            out->n_ok++;
            if (sum.n_failed > 0) out->n_partial++;
        } else {
            snprintf(row->reason, sizeof row->reason, "%s", hv_error_detail());
            memcpy(qrow->reason, row->reason, sizeof qrow->reason);
            out->n_failed++;
        }
        if (rank == 0) {
            if (row->ok && r->quality && qrow->applicable)
                fprintf(stderr, "reproduce: %s: %ld cases (%ld failed), %ld of %ld healthy levels "
                        "scored: patch PSNR %.2f, patch SSIM %.3f, Dice %.3f\n", row->method,
                        row->n_cases, row->n_failed_cases, qrow->n_scored, qrow->n_healthy,
                        qrow->mean[HV_REPRO_Q_PATCH_PSNR], qrow->mean[HV_REPRO_Q_PATCH_SSIM],
                        qrow->mean[HV_REPRO_Q_DICE]);
            else if (row->ok && r->quality)
                fprintf(stderr, "reproduce: %s: %ld cases (%ld failed), quality not applicable: "
                        "%s\n", row->method, row->n_cases, row->n_failed_cases, qrow->note);
            else if (row->ok)
                fprintf(stderr, "reproduce: %s: %ld cases (%ld failed), macro-F1 over folds "
                        "%.3f (var %.4f)\n", row->method, row->n_cases, row->n_failed_cases,
                        row->g.mean[0], row->g.var[0]);
            else
                fprintf(stderr, "reproduce: %s failed: %s\n", row->method, row->reason);
            fflush(stderr);
        }
    }
    /* the failure count is rank 0's (it alone reads the stores) */
    int counts[3] = {out->n_ok, out->n_failed, out->n_partial};
    MPI_Bcast(counts, 3, MPI_INT, 0, comm);
    out->n_ok = counts[0];
    out->n_failed = counts[1];
    out->n_partial = counts[2];
    int wst = HV_OK;
    if (rank == 0) {
        char note[1200];
        const char *ds = hv_run_config_get(r->base, "input", "source");
        const char *sp = hv_run_config_get(r->base, "input", "split");
        snprintf(note, sizeof note, "input.source = %s%s%s", ds ? ds : "?",
                 sp && sp[0] ? ", split " : "", sp && sp[0] ? sp : "");
        wst = r->quality ? hv_repro_write_quality(r->p.output, qrows, r->n_methods, note)
                         : hv_repro_write_table(r->p.output, rows, r->n_methods, published_set(r), note);
        if (wst != HV_OK) hv_log_error("reproduce: %s", hv_error_detail());
    }
    MPI_Bcast(&wst, 1, MPI_INT, 0, comm);
    if (wst != HV_OK)
        st = rank == 0 ? (hv_status)wst
                       : hv_error_set((hv_status)wst, "reproduce: rank 0 could not write the table");
done:
    free(rows);
    free(qrows);
    return st;
}
