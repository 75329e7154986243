/*
 * manifest.c: a cohort given as a CSV file (input.source = manifest).
 *
 * A cohort whose files follow neither the reference nor VerSe's layout is
 * listed row by row: case id, CT, mask, optional centroid JSON, optional
 * split set and per-vertebra grades (the format is specified in hv/io.h and
 * docs/architecture.md, "Inputs"). The whole file is validated before
 * anything is returned: every problem of every row (missing or non-regular
 * files, duplicate ids, ids that are not plain file names, bad grades or
 * sets, malformed CSV) is collected as one "FILE:LINE: what" line, and the
 * list comes back as one HV_ERR_FORMAT detail, so a 100,000-row manifest is
 * fixed in one pass instead of one error per attempt, and a bad manifest
 * runs nothing. Unlike hv_io_dataset_scan, a bad case is therefore never
 * kept in the manifest: a user who lists a case means it to run.
 *
 * Parsing is RFC 4180 with the few additions hand-written files need: a
 * UTF-8 byte-order mark, CRLF or LF line ends, '#' comment lines and blank
 * lines, and spaces trimmed around unquoted fields. Cases come back sorted
 * by id (byte order), as hv_io_dataset_scan's, so results do not depend on
 * the order of the rows.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"

/* the message lists at most this many problems, and at most this many bytes
 * of them (the error detail holds 8 KiB) */
#define MAX_LISTED 50
#define MAX_LIST_BYTES 7000
#define MAX_MANIFEST_BYTES ((size_t)1 << 30)

enum { COL_ID, COL_CT, COL_MASK, COL_CENTROIDS, COL_SPLIT, COL_GRADES, COL_COUNT };
static const char *const col_names[COL_COUNT] = {"id", "ct", "mask", "centroids", "split", "grades"};

/* ------------------------------------------------------------ problems */

typedef struct {
    long line;
    long seq;
    char *text;
} problem;

typedef struct {
    const char *file;   /* the manifest's path, as given */
    const char *base;   /* its last component: the prefix of every listed line */
    problem *v;
    size_t n, cap;
    int oom;
} problems;

static void add_problem(problems *ps, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_problem(problems *ps, long line, const char *fmt, ...)
{
    if (ps->oom) return;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 32;
        problem *nv = realloc(ps->v, cap * sizeof *nv);
        if (!nv) {
            ps->oom = 1;
            return;
        }
        ps->v = nv;
        ps->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char buf[1400];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *t = hv_strdup(buf);
    if (!t) {
        ps->oom = 1;
        return;
    }
    ps->v[ps->n].line = line;
    ps->v[ps->n].seq = (long)ps->n;
    ps->v[ps->n].text = t;
    ps->n++;
}

static int cmp_problem(const void *a, const void *b)
{
    const problem *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* One HV_ERR_FORMAT detail listing the problems in line order. */
static hv_status report_problems(problems *ps, size_t n_rows)
{
    qsort(ps->v, ps->n, sizeof *ps->v, cmp_problem);
    size_t cap = MAX_LIST_BYTES + 512, len = 0;
    char *msg = malloc(cap);
    if (!msg) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    long bad_lines = 0, last = -1;
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].line != last) bad_lines++, last = ps->v[i].line;
    len += (size_t)snprintf(msg, cap, "%s: %zu problem(s) on %ld line(s) of %zu data row(s); the manifest is refused as a whole:",
                            ps->file, ps->n, bad_lines, n_rows);
    size_t listed = 0;
    for (; listed < ps->n && listed < MAX_LISTED; listed++) {
        const problem *p = &ps->v[listed];
        char line[1600];
        if (p->line > 0) snprintf(line, sizeof line, "\n  %s:%ld: %s", ps->base, p->line, p->text);
        else snprintf(line, sizeof line, "\n  %s: %s", ps->base, p->text);
        size_t l = strlen(line);
        if (len + l >= MAX_LIST_BYTES) break;
        memcpy(msg + len, line, l + 1);
        len += l;
    }
    if (listed < ps->n)
        snprintf(msg + len, cap - len, "\n  ... and %zu more problem(s)", ps->n - listed);
    hv_error_set(HV_ERR_FORMAT, "%s", msg);
    free(msg);
    return HV_ERR_FORMAT;
}

/* ------------------------------------------------------------- CSV */

typedef struct {
    const char *s;      /* the text, NUL-terminated */
    size_t len, pos;
    long line;          /* 1-based line of s[pos] */
} csv;

typedef struct {
    char **f;
    size_t n, cap;
    long line;          /* where the record starts */
} record;

static void record_clear(record *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

static int record_push(record *r, const char *b, size_t n)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        char **nf = realloc(r->f, cap * sizeof *nf);
        if (!nf) return -1;
        r->f = nf;
        r->cap = cap;
    }
    char *t = malloc(n + 1);
    if (!t) return -1;
    memcpy(t, b, n);
    t[n] = 0;
    r->f[r->n++] = t;
    return 0;
}

static int at_line_end(const csv *c, size_t i)
{
    return i >= c->len || c->s[i] == '\n' || (c->s[i] == '\r' && i + 1 < c->len && c->s[i + 1] == '\n') ||
           (c->s[i] == '\r' && i + 1 == c->len);
}

static void skip_line_end(csv *c)
{
    if (c->pos < c->len && c->s[c->pos] == '\r') c->pos++;
    if (c->pos < c->len && c->s[c->pos] == '\n') c->pos++, c->line++;
}

/* Next record into r (fields owned by r). Returns 1 for a record, 0 at the
 * end, -1 out of memory, -2 for an unterminated quote (reported; parsing
 * cannot go on). Comment and blank lines are skipped. Malformed fields are
 * reported and kept as read. */
static int next_record(csv *c, record *r, problems *ps)
{
    record_clear(r);
    for (;;) {
        if (c->pos >= c->len) return 0;
        /* blank line (spaces only) or comment */
        size_t i = c->pos;
        while (i < c->len && (c->s[i] == ' ' || c->s[i] == '\t')) i++;
        if (at_line_end(c, i) || c->s[c->pos] == '#') {
            while (!at_line_end(c, c->pos)) c->pos++;
            if (c->pos >= c->len) return 0;
            skip_line_end(c);
            continue;
        }
        break;
    }
    r->line = c->line;
    char *buf = NULL;
    size_t bn = 0, bcap = 0;
    int rc = 1;
    for (;;) {
        /* one field */
        bn = 0;
        while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t')) c->pos++;
        if (c->pos < c->len && c->s[c->pos] == '"') {
            long qline = c->line;
            c->pos++;
            for (;;) {
                if (c->pos >= c->len) {
                    add_problem(ps, qline, "a quoted field is never closed (the file ends inside it)");
                    rc = -2;
                    goto out;
                }
                char ch = c->s[c->pos];
                if (ch == '"') {
                    if (c->pos + 1 < c->len && c->s[c->pos + 1] == '"') {
                        ch = '"';
                        c->pos++;
                    } else {
                        c->pos++;
                        break;
                    }
                }
                if (ch == '\n') c->line++;
                if (bn + 1 >= bcap) {
                    size_t nc = bcap ? 2 * bcap : 256;
                    char *nb = realloc(buf, nc);
                    if (!nb) {
                        rc = -1;
                        goto out;
                    }
                    buf = nb;
                    bcap = nc;
                }
                buf[bn++] = ch;
                c->pos++;
            }
            while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t')) c->pos++;
            if (!at_line_end(c, c->pos) && c->s[c->pos] != ',') {
                add_problem(ps, c->line, "text after the closing quote of field %zu (a quote inside a "
                                         "quoted field is written \"\")", r->n + 1);
                while (!at_line_end(c, c->pos) && c->s[c->pos] != ',') c->pos++;
            }
        } else {
            size_t start = c->pos;
            while (!at_line_end(c, c->pos) && c->s[c->pos] != ',') c->pos++;
            size_t end = c->pos;
            while (end > start && (c->s[end - 1] == ' ' || c->s[end - 1] == '\t')) end--;
            if (memchr(c->s + start, '"', end - start))
                add_problem(ps, c->line, "a quote inside unquoted field %zu (quote the whole field "
                                         "and write the quote as \"\")", r->n + 1);
            if (end - start + 1 > bcap) {
                char *nb = realloc(buf, end - start + 1);
                if (!nb) {
                    rc = -1;
                    goto out;
                }
                buf = nb;
                bcap = end - start + 1;
            }
            if (end > start) memcpy(buf, c->s + start, end - start);
            bn = end - start;
        }
        if (record_push(r, bn ? buf : "", bn)) {
            rc = -1;
            goto out;
        }
        if (c->pos < c->len && c->s[c->pos] == ',') {
            c->pos++;
            continue;
        }
        skip_line_end(c);
        break;
    }
out:
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ rows */

typedef struct {
    long line;
    hv_case c;
    int set;                /* hv_split_set, or -1 */
    int n_grades;
    int labels[32], grades[32];
} row;

static int cmp_row(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int c = strcmp(x->c.id, y->c.id);
    if (c) return c;
    return (x->line > y->line) - (x->line < y->line);
}

static void row_clear(row *r)
{
    free(r->c.id);
    free(r->c.ct_path);
    free(r->c.mask_path);
    free(r->c.centroid_path);
    free(r->c.problem);
}

/* Resolve a path of the CSV against its folder (`dir` ends with '/', or is
 * "" for the current folder). */
static char *resolve(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir[0]) return hv_strdup(p);
    return hv_strfmt("%s%s", dir, p);
}

/* Problems name the path as written in the CSV (what the user edits), and
 * the resolved path too when they differ. */
static void check_input(problems *ps, long line, const char *what, const char *written,
                        const char *path, const hv_nifti_opts *check_opts)
{
    if (hv_file_check_regular(path, NULL) != HV_OK) {
        const char *why = hv_error_detail();
        size_t pl = strlen(path);
        if (!strncmp(why, path, pl) && !strncmp(why + pl, ": ", 2)) why += pl + 2;
        if (strcmp(written, path))
            add_problem(ps, line, "%s '%s' (%s): %s", what, written, path, why);
        else
            add_problem(ps, line, "%s '%s': %s", what, written, why);
        hv_error_clear();
        return;
    }
    if (check_opts && hv_io_nifti_check(path, check_opts, NULL) != HV_OK) {
        add_problem(ps, line, "%s '%s': %s", what, written, hv_error_detail());
        hv_error_clear();
    }
}

/* "T12:2; L1:0" -> labels and grades. Problems are reported. */
static void parse_grades(problems *ps, row *r, const char *cell)
{
    const char *p = cell;
    while (*p) {
        const char *e = strchr(p, ';');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char item[64];
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n) {
            if (n >= sizeof item) {
                add_problem(ps, r->line, "grades: item '%.40s...' is too long (LEVEL:GRADE, e.g. T12:2)", p);
                goto next;
            }
            memcpy(item, p, n);
            item[n] = 0;
            char *colon = strchr(item, ':');
            if (!colon) {
                add_problem(ps, r->line, "grades: '%s' is not LEVEL:GRADE (e.g. T12:2)", item);
                goto next;
            }
            *colon = 0;
            char *lv = item, *gv = colon + 1;
            while (*gv == ' ' || *gv == '\t') gv++;
            size_t ll = strlen(lv);
            while (ll && (lv[ll - 1] == ' ' || lv[ll - 1] == '\t')) lv[--ll] = 0;
            int label = hv_label_from_name(lv);
            if (label <= 0) {
                char *end = NULL;
                long v = strtol(lv, &end, 10);
                if (end != lv && !*end && v >= 1 && v <= 28) label = (int)v;
            }
            if (label <= 0) {
                add_problem(ps, r->line,
                            "grades: '%s' is not a vertebra (a level name C1-C7, T1-T13, L1-L6, or a "
                            "VerSe label 1-28)", lv);
                goto next;
            }
            if (!(gv[0] >= '0' && gv[0] <= '3' && gv[1] == 0)) {
                add_problem(ps, r->line, "grades: grade '%s' of %s is not a Genant grade 0, 1, 2 or 3", gv, lv);
                goto next;
            }
            int dup = 0;
            for (int k = 0; k < r->n_grades; k++) dup |= r->labels[k] == label;
            if (dup) {
                add_problem(ps, r->line, "grades: %s is graded twice", lv);
                goto next;
            }
            if (r->n_grades >= 32) {
                add_problem(ps, r->line, "grades: more than 32 vertebrae");
                goto next;
            }
            r->labels[r->n_grades] = label;
            r->grades[r->n_grades] = gv[0] - '0';
            r->n_grades++;
        }
    next:
        if (!e) break;
        p = e + 1;
    }
}

static void check_row(problems *ps, row *r, const record *rec, const int *col, const char *dir,
                      const hv_nifti_opts *check_opts)
{
    const char *id = rec->f[col[COL_ID]];
    r->line = rec->line;
    r->set = -1;
    r->c.id = hv_strdup(id);
    if (!r->c.id) {
        ps->oom = 1;
        return;
    }
    if (hv_file_name_check(id, "id") != HV_OK) {
        add_problem(ps, r->line, "%s", hv_error_detail());
        hv_error_clear();
    }
    static const struct {
        int col;
        const char *what;
        int required;
    } files[] = {{COL_CT, "ct", 1}, {COL_MASK, "mask", 1}, {COL_CENTROIDS, "centroids", 0}};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        if (col[files[k].col] < 0) continue;
        const char *v = rec->f[col[files[k].col]];
        if (!v[0]) {
            if (files[k].required)
                add_problem(ps, r->line, "%s is empty (every case needs its %s)", files[k].what,
                            files[k].col == COL_CT ? "CT: the run straightens the spine on it"
                                                   : "vertebra mask");
            continue;
        }
        char *path = resolve(dir, v);
        if (!path) {
            ps->oom = 1;
            return;
        }
        check_input(ps, r->line, files[k].what, v, path, files[k].col == COL_CENTROIDS ? NULL : check_opts);
        if (files[k].col == COL_CT) r->c.ct_path = path;
        else if (files[k].col == COL_MASK) r->c.mask_path = path;
        else r->c.centroid_path = path;
    }
    const char *sv = col[COL_SPLIT] >= 0 ? rec->f[col[COL_SPLIT]] : "";
    const char *gv = col[COL_GRADES] >= 0 ? rec->f[col[COL_GRADES]] : "";
    if (sv[0]) {
        for (int s = 0; s < HV_SPLIT_COUNT; s++)
            if (!strcmp(sv, hv_split_set_name((hv_split_set)s))) r->set = s;
        if (r->set < 0) add_problem(ps, r->line, "split '%s' is not train, val or test", sv);
    }
    if (gv[0]) parse_grades(ps, r, gv);
    if (sv[0] && !gv[0])
        add_problem(ps, r->line, "split '%s' without grades (a set holds graded vertebrae: give "
                                 "grades, e.g. T12:2;L1:0, or leave split empty)", sv);
    if (gv[0] && !sv[0])
        add_problem(ps, r->line, "grades without a split (train, val or test)");
}

/* ------------------------------------------------------------ header */

/* Column index of each known column in the header, or -1. Returns 0 when
 * the rows can be checked (id, ct and mask present). */
static int read_header(problems *ps, const record *h, int *col)
{
    for (int k = 0; k < COL_COUNT; k++) col[k] = -1;
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->f[i];
        int k = 0;
        while (k < COL_COUNT && strcmp(name, col_names[k])) k++;
        if (k < COL_COUNT) {
            if (col[k] >= 0)
                add_problem(ps, h->line, "column '%s' appears twice (columns %d and %zu)", name, col[k] + 1, i + 1);
            else col[k] = (int)i;
        } else if (!strcmp(name, "grade")) {
            add_problem(ps, h->line,
                        "column 'grade': a grade belongs to a vertebra, not to a case; use a 'grades' "
                        "column of LEVEL:GRADE pairs (T12:2;L1:0) with a 'split' column");
        } else {
            add_problem(ps, h->line,
                        "unknown column '%s' (columns: id, ct, mask required; centroids, split, grades "
                        "optional)", name);
        }
    }
    int ok = 1;
    for (int k = COL_ID; k <= COL_MASK; k++)
        if (col[k] < 0) {
            add_problem(ps, h->line, "the header has no '%s' column (required: id, ct, mask)", col_names[k]);
            ok = 0;
        }
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ reader */

hv_status hv_io_manifest_read(const char *path, const hv_nifti_opts *check_opts, hv_manifest **out,
                              hv_split **split_out)
{
    *out = NULL;
    if (split_out) *split_out = NULL;
    hv_status st = HV_OK;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    problems ps = {path, strrchr(path, '/') ? strrchr(path, '/') + 1 : path, NULL, 0, 0, 0};
    record rec = {0};
    row *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    hv_manifest *m = NULL;
    hv_split *sp = NULL;

    if ((st = hv_file_read_all(path, "manifest", MAX_MANIFEST_BYTES, &text, &len)) != HV_OK) goto done;
    /* the CSV's folder, with its trailing '/' ("" for the current folder) */
    const char *slash = strrchr(path, '/');
    dir = slash ? hv_strfmt("%.*s", (int)(slash - path) + 1, path) : hv_strdup("");
    if (!dir) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (memchr(text, 0, len)) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: holds a NUL byte: not a CSV text file", path);
        goto done;
    }
    csv c = {text, len, 0, 1};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) c.pos = 3;

    int col[COL_COUNT];
    int rc = next_record(&c, &rec, &ps);
    if (rc == -1) goto oom;
    if (rc == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "%s: no header row (id,ct,mask[,centroids][,split][,grades])", path);
        goto done;
    }
    int header_ok = rc == 1 && read_header(&ps, &rec, col) == 0;
    size_t n_cols = rec.n;
    while (header_ok && (rc = next_record(&c, &rec, &ps)) == 1) {
        if (rec.n != n_cols) {
            add_problem(&ps, rec.line, "%zu field(s), the header has %zu", rec.n, n_cols);
            continue;
        }
        if (n_rows == cap_rows) {
            size_t nc = cap_rows ? 2 * cap_rows : 64;
            row *nr = realloc(rows, nc * sizeof *nr);
            if (!nr) goto oom;
            rows = nr;
            cap_rows = nc;
        }
        row *r = &rows[n_rows++];
        memset(r, 0, sizeof *r);
        check_row(&ps, r, &rec, col, dir, check_opts);
        if (ps.oom) goto oom;
    }
    if (rc == -1 || ps.oom) goto oom;
    if (header_ok && n_rows == 0 && ps.n == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "%s: the header is followed by no case", path);
        goto done;
    }

    /* duplicate ids, named on every later line with the first line */
    if (n_rows > 1) qsort(rows, n_rows, sizeof *rows, cmp_row);
    for (size_t i = 1; i < n_rows; i++) {
        size_t first = i - 1;
        while (first > 0 && !strcmp(rows[first - 1].c.id, rows[i].c.id)) first--;
        if (!strcmp(rows[i - 1].c.id, rows[i].c.id))
            add_problem(&ps, rows[i].line, "id '%s' is already used on line %ld", rows[i].c.id,
                        rows[first].line);
    }
    if (ps.oom) goto oom;
    if (ps.n) {
        st = report_problems(&ps, n_rows);
        goto done;
    }

    /* the manifest, sorted by id; the split from the grades */
    m = calloc(1, sizeof *m);
    if (!m || !(m->cases = calloc(n_rows, sizeof *m->cases))) goto oom;
    size_t n_entries = 0;
    for (size_t i = 0; i < n_rows; i++) n_entries += (size_t)rows[i].n_grades;
    if (n_entries && split_out) {
        sp = calloc(1, sizeof *sp);
        if (!sp || !(sp->items = calloc(n_entries, sizeof *sp->items))) goto oom;
    }
    for (size_t i = 0; i < n_rows; i++) {
        row *r = &rows[i];
        if (sp) {
            /* labels ascending within a case */
            for (int a = 1; a < r->n_grades; a++)
                for (int b = a; b > 0 && r->labels[b - 1] > r->labels[b]; b--) {
                    int t = r->labels[b]; r->labels[b] = r->labels[b - 1]; r->labels[b - 1] = t;
                    t = r->grades[b]; r->grades[b] = r->grades[b - 1]; r->grades[b - 1] = t;
                }
            for (int k = 0; k < r->n_grades; k++) {
                hv_split_entry *e = &sp->items[sp->n];
                if (!(e->case_id = hv_strdup(r->c.id))) goto oom;
                sp->n++;
                e->label = r->labels[k];
                e->grade = r->grades[k];
                e->set = (hv_split_set)r->set;
            }
        }
        m->cases[i] = r->c;
        memset(&r->c, 0, sizeof r->c);
        m->n++;
    }
    *out = m;
    m = NULL;
    if (split_out) *split_out = sp;
    sp = NULL;
    goto done;
oom:
    st = hv_error_set(HV_ERR_NOMEM, "out of memory");
done:
    for (size_t i = 0; i < n_rows; i++) row_clear(&rows[i]);
    free(rows);
    record_clear(&rec);
    free(rec.f);
    for (size_t i = 0; i < ps.n; i++) free(ps.v[i].text);
    free(ps.v);
    hv_io_manifest_free(m);
    hv_io_split_free(sp);
    free(text);
    free(dir);
    return st;
}
