/*
 * test_manifest.c: the CSV case manifest (hv_io_manifest_read).
 *
 *  - a good manifest written the awkward way (BOM, CRLF, comments, blank
 *    lines, quoted paths with a comma and a doubled quote, spaces around
 *    fields, relative and absolute paths, rows out of order, two ids sharing
 *    files) comes back sorted by id with every path resolved as written
 *    here by hand, and its grades as a split;
 *  - a bad manifest with one row of each problem is refused as a whole:
 *    nothing returned, one message naming every bad line and no good one;
 *  - a bad header lists all of its problems; a long list is capped with the
 *    count of the rest; an empty manifest and an unclosed quote are errors.
 *
 * Inputs are empty files: the reader checks that files exist and are
 * regular (headers only with check_opts, not used here).
 */
#include "hv/io.h"
#include "hv_test.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        HV_CHECK(0, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = hv_strfmt("%s/%s", dir, name);
    return p;
}

/* The detail names "FILE:LINE: " followed (somewhere on that line) by `what`. */
static int names_line(const char *detail, const char *file, int line, const char *what)
{
    char key[256];
    snprintf(key, sizeof key, "%s:%d: ", file, line);
    for (const char *p = strstr(detail, key); p; p = strstr(p + 1, key)) {
        if (p != detail && p[-1] != ' ') continue; /* "xbad.csv:3: " is another file */
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *ln = hv_strfmt("%.*s", (int)n, p);
        int ok = ln && strstr(ln, what) != NULL;
        free(ln);
        if (ok) return 1;
    }
    return 0;
}

static void test_good(const char *tmp)
{
    char *m = path_in(tmp, "m");
    char *odd = path_in(tmp, "m/we\"ird, dir");
    char *abs_dir = path_in(tmp, "abs");
    HV_CHECK(mkdir(m, 0755) == 0 && mkdir(odd, 0755) == 0 && mkdir(abs_dir, 0755) == 0, "mkdir");
    char *a_ct = path_in(abs_dir, "a_ct.nii.gz"), *a_msk = path_in(abs_dir, "a_msk.nii.gz");
    char *a_ctd = path_in(abs_dir, "a.json");
    char *b_ct = path_in(odd, "b_ct.nii.gz"), *b_msk = path_in(m, "b_msk.nii");
    write_file(a_ct, "");
    write_file(a_msk, "");
    write_file(a_ctd, "");
    write_file(b_ct, "");
    write_file(b_msk, "");
    char *csv = hv_strfmt(
        "\xEF\xBB\xBF# a cohort listed by hand\r\n"
        "\r\n"
        "id, ct ,mask,centroids,split,grades\r\n"
        "# c03 reuses a01's files under another id\r\n"
        "  c03 , %s , %s ,,,\r\n"
        "a01,\"%s\",%s,\"%s\",train,\"L1:0; T12:2\"\r\n"
        "   \r\n"
        "b02,\"we\"\"ird, dir/b_ct.nii.gz\",b_msk.nii,,test,20:3\r\n",
        a_ct, a_msk, a_ct, a_msk, a_ctd);
    char *mp = path_in(m, "good.csv");
    write_file(mp, csv);

    hv_manifest *man = NULL;
    hv_split *sp = NULL;
    HV_CHECK_OK(hv_io_manifest_read(mp, NULL, &man, &sp));
    HV_CHECK(man && man->n == 3, "3 cases, got %zu", man ? man->n : 0);
    if (man && man->n == 3) {
        HV_CHECK(!strcmp(man->cases[0].id, "a01") && !strcmp(man->cases[1].id, "b02") &&
                     !strcmp(man->cases[2].id, "c03"),
                 "sorted by id: %s %s %s", man->cases[0].id, man->cases[1].id, man->cases[2].id);
        HV_CHECK(man->n_bad == 0, "no bad case");
        HV_CHECK(!strcmp(man->cases[0].ct_path, a_ct), "absolute ct as is: %s", man->cases[0].ct_path);
        HV_CHECK(!strcmp(man->cases[0].mask_path, a_msk), "absolute mask: %s", man->cases[0].mask_path);
        HV_CHECK(man->cases[0].centroid_path && !strcmp(man->cases[0].centroid_path, a_ctd),
                 "centroids: %s", man->cases[0].centroid_path ? man->cases[0].centroid_path : "NULL");
        HV_CHECK(!strcmp(man->cases[1].ct_path, b_ct), "quoted relative ct from the CSV's folder: %s",
                 man->cases[1].ct_path);
        HV_CHECK(!strcmp(man->cases[1].mask_path, b_msk), "relative mask: %s", man->cases[1].mask_path);
        HV_CHECK(man->cases[1].centroid_path == NULL, "empty centroids -> NULL");
        HV_CHECK(!strcmp(man->cases[2].ct_path, a_ct) && !strcmp(man->cases[2].mask_path, a_msk),
                 "trimmed unquoted fields, shared files: '%s'", man->cases[2].ct_path);
        for (int i = 0; i < 3; i++)
            HV_CHECK(man->cases[i].status == HV_OK && !man->cases[i].problem, "case %d OK", i);
    }
    /* grades: a01 L1(20):0, T12(19):2 in train; b02 label 20:3 in test; cases
     * by id, labels ascending */
    HV_CHECK(sp && sp->n == 3, "3 split entries, got %zu", sp ? sp->n : 0);
    if (sp && sp->n == 3) {
        HV_CHECK(!strcmp(sp->items[0].case_id, "a01") && sp->items[0].label == 19 &&
                     sp->items[0].grade == 2 && sp->items[0].set == HV_SPLIT_TRAIN,
                 "a01 T12 = 2 train (%s %d %d %d)", sp->items[0].case_id, sp->items[0].label,
                 sp->items[0].grade, (int)sp->items[0].set);
        HV_CHECK(!strcmp(sp->items[1].case_id, "a01") && sp->items[1].label == 20 &&
                     sp->items[1].grade == 0 && sp->items[1].set == HV_SPLIT_TRAIN,
                 "a01 L1 = 0 train");
        HV_CHECK(!strcmp(sp->items[2].case_id, "b02") && sp->items[2].label == 20 &&
                     sp->items[2].grade == 3 && sp->items[2].set == HV_SPLIT_TEST,
                 "b02 20 = 3 test");
        HV_CHECK(hv_io_split_find(sp, "c03", 20) < 0, "c03 has no grades");
    }
    hv_io_manifest_free(man);
    hv_io_split_free(sp);

    /* no grades column: no split */
    char *mp2 = path_in(m, "nogrades.csv");
    write_file(mp2, "mask,id,ct\nb_msk.nii,only,b_msk.nii\n");
    man = NULL;
    sp = (hv_split *)1;
    HV_CHECK_OK(hv_io_manifest_read(mp2, NULL, &man, &sp));
    HV_CHECK(man && man->n == 1 && sp == NULL, "columns in any order, no split");
    hv_io_manifest_free(man);

    free(csv);
    free(mp);
    free(mp2);
    free(m);
    free(odd);
    free(abs_dir);
    free(a_ct);
    free(a_msk);
    free(a_ctd);
    free(b_ct);
    free(b_msk);
}

static void test_bad(const char *tmp)
{
    char *d = path_in(tmp, "bad");
    char *sub = path_in(d, "sub");
    HV_CHECK(mkdir(d, 0755) == 0 && mkdir(sub, 0755) == 0, "mkdir");
    char *a = path_in(d, "a.nii"), *mk = path_in(d, "m.nii");
    write_file(a, "");
    write_file(mk, "");
    char *mp = path_in(d, "bad.csv");
    write_file(mp,
               "id,ct,mask,split,grades\n"          /* 1 */
               "ok1,a.nii,m.nii,,\n"                /* 2: good */
               "miss,nope.nii,m.nii,,\n"            /* 3: missing file */
               "ok1,a.nii,m.nii,,\n"                /* 4: duplicate id */
               "g5,a.nii,m.nii,train,L1:4\n"        /* 5: bad grade */
               "s6,a.nii,m.nii,holdout,L1:1\n"      /* 6: bad split */
               "x/y,a.nii,m.nii,,\n"                /* 7: id not a plain name */
               "d8,a.nii,sub,,\n"                   /* 8: mask is a folder */
               "f9,a.nii\n"                         /* 9: too few fields */
               "v10,a.nii,m.nii,test,Q9:1\n"        /* 10: not a vertebra */
               "e11,,m.nii,,\n"                     /* 11: empty ct */
               "n12,a.nii,m.nii,,L2:1\n"            /* 12: grades without split */
               "ok13,a.nii,m.nii,val,T12:1;L1:0\n"); /* 13: good */
    hv_manifest *man = (hv_manifest *)1;
    hv_split *sp = (hv_split *)1;
    hv_status st = hv_io_manifest_read(mp, NULL, &man, &sp);
    const char *e = hv_error_detail();
    HV_CHECK(st == HV_ERR_FORMAT, "refused: %s", hv_status_name(st));
    HV_CHECK(man == NULL && sp == NULL, "nothing returned");
    static const struct {
        int line;
        const char *what;
    } want[] = {{3, "nope.nii"},  {4, "'ok1' is already used on line 2"},
                {5, "grade '4'"}, {6, "'holdout'"},
                {7, "x/y"},       {8, "is a directory"},
                {9, "2 field(s), the header has 5"},
                {10, "'Q9'"},     {11, "ct is empty"},
                {12, "grades without a split"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        HV_CHECK(names_line(e, "bad.csv", want[i].line, want[i].what), "line %d (%s) listed in:\n%s",
                 want[i].line, want[i].what, e);
    HV_CHECK(!strstr(e, "bad.csv:2:") && !strstr(e, "bad.csv:13:"), "good rows not listed:\n%s", e);
    HV_CHECK(strstr(e, "10 problem(s) on 10 line(s) of 11 data row(s)") != NULL, "count: %s", e);
    if (getenv("HV_TEST_VERBOSE")) printf("%s\n", e); /* the message as a user sees it */

    /* a bad header: every problem of it at once */
    char *hp = path_in(d, "header.csv");
    write_file(hp, "id,ct,grade,colour,id\nx,a.nii,1,red,x\n");
    man = NULL;
    st = hv_io_manifest_read(hp, NULL, &man, NULL);
    e = hv_error_detail();
    HV_CHECK(st == HV_ERR_FORMAT && !man, "bad header refused");
    HV_CHECK(names_line(e, "header.csv", 1, "column 'grade'") && names_line(e, "header.csv", 1, "'colour'") &&
                 strstr(e, "'id' appears twice") && strstr(e, "no 'mask' column"),
             "header problems all listed:\n%s", e);

    /* 60 missing files: 50 listed, then the count of the rest */
    char *lp = path_in(d, "long.csv");
    FILE *f = fopen(lp, "w");
    if (f) {
        fputs("id,ct,mask\n", f);
        for (int i = 0; i < 60; i++) fprintf(f, "c%02d,missing%02d.nii,m.nii\n", i, i);
        fclose(f);
    }
    st = hv_io_manifest_read(lp, NULL, &man, NULL);
    e = hv_error_detail();
    HV_CHECK(st == HV_ERR_FORMAT && names_line(e, "long.csv", 51, "missing49.nii") &&
                 !strstr(e, "long.csv:52:") && strstr(e, "... and 10 more problem(s)"),
             "long list capped:\n%.400s ... %s", e, strlen(e) > 200 ? e + strlen(e) - 200 : e);

    /* only a header; an unclosed quote */
    char *ep = path_in(d, "empty.csv");
    write_file(ep, "# nothing yet\nid,ct,mask\n\n");
    st = hv_io_manifest_read(ep, NULL, &man, NULL);
    HV_CHECK(st == HV_ERR_EMPTY && !man, "header only: %s", hv_status_name(st));
    char *qp = path_in(d, "quote.csv");
    write_file(qp, "id,ct,mask\nq1,\"a.nii,m.nii\n");
    st = hv_io_manifest_read(qp, NULL, &man, NULL);
    e = hv_error_detail();
    HV_CHECK(st == HV_ERR_FORMAT && !man && names_line(e, "quote.csv", 2, "never closed"), "unclosed quote: %s", e);
    st = hv_io_manifest_read("/nonexistent/manifest.csv", NULL, &man, NULL);
    HV_CHECK(st == HV_ERR_IO && !man, "missing manifest: %s", hv_status_name(st));

    free(d);
    free(sub);
    free(a);
    free(mk);
    free(mp);
    free(hp);
    free(lp);
    free(ep);
    free(qp);
}

int main(void)
{
    const char *tmp = hv_test_tmpdir("manifest");
    test_good(tmp);
    test_bad(tmp);
    return hv_test_done();
}
