/*
 * test_store.c: the store's schema validator, describe and export, the
 * configuration parser, and the journal's torn-record handling.
 *
 * A 3-case phantom run (singleton MPI) makes a real store; the validator must
 * accept it and must reject copies damaged in specific ways (a failed case
 * without a reason, a label that disagrees with its level, a complete store
 * without grader results, another schema version, a file that is not HDF5),
 * so it is shown to be able to fail. Journals: a record cut short and a
 * record with a flipped byte are both detected, cut off, and later appends
 * are read back; a journal of another layout or another stage list is not
 * read, and a resumed run whose journal names other stages runs those
 * cases again, says why, and ends with the same results.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>
#include <mpi.h>

#include "../../src/mpi/run_internal.h"
#include "hv/run.h"
#include "hv_test.h"
#include "store/store_check.h"


static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void test_config(const char *tmp)
{
    hv_run_config *c = NULL;
    HV_CHECK_OK(hv_run_config_new(&c));
    HV_CHECK(hv_run_config_set(c, "phantom.nope=1") == HV_ERR_FORMAT, "unknown key accepted");
    HV_CHECK(hv_run_config_set(c, "nosection=1") == HV_ERR_ARG, "malformed --set accepted");
    HV_CHECK_OK(hv_run_config_set(c, "phantom.cases=7"));
    HV_CHECK(!strcmp(hv_run_config_get(c, "phantom", "cases"), "7"), "override lost");
    char *text = hv_run_config_text(c);
    HV_CHECK(text && strstr(text, "[phantom]") && strstr(text, "cases = 7"), "canonical text: %s",
             text ? text : "(null)");
    free(text);
    hv_run_config_free(c);
    char ini[4200];
    snprintf(ini, sizeof ini, "%s/typo.ini", tmp);
    FILE *f = fopen(ini, "w");
    fputs("[phantom]\ncasess = 3\n", f);
    fclose(f);
    c = NULL;
    HV_CHECK(hv_run_config_load(ini, &c) == HV_ERR_FORMAT, "a typo in a key was accepted");
    HV_CHECK(strstr(hv_error_detail(), "casess") != NULL, "error does not name the key: %s",
             hv_error_detail());
    hv_run_config_free(c);

    /* the typed parser (issue 10): file:line, both lines of a duplicate,
     * strict values, long lines (libinih cut lines at 200 bytes) */
    const char *dup = "[phantom]\ncases = 3\n; c\ncases = 4\n";
    c = NULL;
    HV_CHECK(hv_run_config_parse(dup, strlen(dup), "d.ini", &c) == HV_ERR_FORMAT && !c,
             "a key given twice was accepted");
    HV_CHECK(strstr(hv_error_detail(), "d.ini:4: phantom.cases given twice (first on line 2)") != NULL,
             "duplicate message: %s", hv_error_detail());
    const char *junk = "[measure]\nlateral_rays = 5 rays\n";
    HV_CHECK(hv_run_config_parse(junk, strlen(junk), "j.ini", &c) == HV_ERR_ARG, "'5 rays' accepted");
    HV_CHECK(strstr(hv_error_detail(), "j.ini:2: measure.lateral_rays = '5 rays': expected an "
                                       "integer in [1, 99]") != NULL,
             "junk message: %s", hv_error_detail());
    const char *nul = "[phantom]\ncases = 3\0\n";
    HV_CHECK(hv_run_config_parse(nul, 20, "n.ini", &c) == HV_ERR_FORMAT, "NUL byte accepted");
    const char *bad[] = {"phantom.spacing=1,1", "phantom.spacing=1,1,1,1", "phantom.spacing=0.1",
                         "phantom.spacing=1,,1", "phantom.noise_hu=inf", "phantom.noise_hu=0x10",
                         "phantom.cases=1e3", "phantom.cases= 3", "run.fresh=2", "run.fresh=yes",
                         "phantom.first=X9", "output.images=QC", "phantom.seed=2147483648"};
    if (hv_run_config_new(&c) != HV_OK) {
        HV_CHECK(0, "config");
        return;
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        HV_CHECK(hv_run_config_set(c, bad[i]) == HV_ERR_ARG, "'%s' accepted", bad[i]);
    HV_CHECK_OK(hv_run_config_set(c, "phantom.spacing=0.5,1,10"));
    HV_CHECK_OK(hv_run_config_set(c, "phantom.first=t11"));
    hv_run_params prm;
    HV_CHECK_OK(hv_run_config_params(c, &prm));
    HV_CHECK(prm.spacing[0] == 0.5 && prm.spacing[1] == 1 && prm.spacing[2] == 10, "spacing %g,%g,%g",
             prm.spacing[0], prm.spacing[1], prm.spacing[2]);
    HV_CHECK(prm.first_label == 18 && prm.last_label == 24, "T11 is VerSe label 18, L5 24: %d %d",
             prm.first_label, prm.last_label);
    HV_CHECK(prm.pcases == 24 && prm.images == 0 && prm.order == 0 && prm.shard_count == 1,
             "defaults");
    hv_run_config_free(c);
    /* a 700-character path on one line of the file */
    char lp[1024];
    int n = snprintf(lp, sizeof lp, "[input]\ndataset = /d/");
    for (int i = 0; i < 700; i++) lp[n++] = 'x';
    snprintf(lp + n, sizeof lp - (size_t)n, "\n[run]\nthreads = 2\n");
    c = NULL;
    HV_CHECK_OK(hv_run_config_parse(lp, strlen(lp), "long.ini", &c));
    HV_CHECK(c && strlen(hv_run_config_get(c, "input", "dataset")) == 703 &&
                 !strcmp(hv_run_config_get(c, "run", "threads"), "2"),
             "long line");
    hv_run_config_free(c);
    /* the journal compatibility text keeps the format of journals written
     * before the key table (written out here by hand from the old rules:
     * [input] but check_headers, [phantom], [measure], [synthesis],
     * output.images), so their runs still resume */
    c = NULL;
    HV_CHECK_OK(hv_run_config_new(&c));
    char *rt = c ? hv_run_config_results_text(c) : NULL;
    const char *want =
        "input.source=phantom\ninput.dataset=\ninput.split=\nphantom.cases=24\nphantom.seed=1\n"
        "phantom.first=T1\nphantom.last=L5\nphantom.spacing=1.0\nphantom.orientation=ras\n"
        "phantom.fracture_rate=0.15\nphantom.scoliosis_rate=0.3\nphantom.noise_hu=20\n"
        "measure.min_volume_ml=3\nmeasure.lateral_rays=5\nmeasure.lateral_frac=0.12\n"
        "measure.map_step_mm=1\nmeasure.deform_thresh=0.12\nmeasure.max_ref_distance=3\n"
        "measure.use_centroids=1\nsynthesis.method=baseline\noutput.images=none\n";
    HV_CHECK(rt && !strcmp(rt, want), "results text:\n%s", rt ? rt : "(null)");
    free(rt);
    hv_run_config_free(c);
}

/* a stage list for the store and journal checks (the v1 store's six names;
 * the expected bytes and messages below are worked out from these) */
static const char *const stage_names_[] = {"load",  "measure", "synthesis",
                                           "grade", "images",  "journal"};
#define NS 6
#define NAMES stage_names_

static void fill_result(hv_case_result *r, const char *id, int nv)
{
    memset(r, 0, sizeof *r);
    snprintf(r->c.id, sizeof r->c.id, "%s", id);
    r->state = HV_CASE_DONE;
    r->c.n_vert = nv;
    r->c.attempt = 1;
    for (int k = 0; k < NS; k++) r->seconds[k] = 0.5 * (k + 1) + nv;
    for (int k = 0; k < nv; k++) {
        r->v[k].label = 20 + k;
        r->v[k].h_ori[1] = 20.0 + k;
    }
}

typedef struct {
    char ids[8][64];
    double sec[8][HV_STORE_MAX_STAGES];
    int n;
} seen_t;

static hv_status on_rec(void *user, const hv_case_result *r)
{
    seen_t *s = user;
    if (s->n < 8) {
        snprintf(s->ids[s->n], 64, "%s", r->c.id);
        memcpy(s->sec[s->n], r->seconds, sizeof r->seconds);
    }
    s->n++;
    return HV_OK;
}

static void test_journal(const char *tmp)
{
    char dir[4200], log[4300];
    snprintf(dir, sizeof dir, "%s/journal", tmp);
    snprintf(log, sizeof log, "%s/rank-0000.log", dir);
    hv_journal *j = NULL;
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "journal open: %s", hv_error_detail());
    hv_case_result r;
    const char *ids[3] = {"a", "b", "c"};
    long sizes[3];
    for (int i = 0; i < 3; i++) {
        fill_result(&r, ids[i], 3);
        HV_CHECK_OK(hv_journal_append(j, &r));
        struct stat sb;
        stat(log, &sb);
        sizes[i] = (long)sb.st_size;
    }
    hv_journal_close(j);
    /* cut the last record short */
    HV_CHECK(truncate(log, sizes[2] - 10) == 0, "truncate");
    seen_t s = {.n = 0};
    long nrec = 0, ntorn = 0;
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 2 && ntorn == 1 && s.n == 2, "torn tail: %ld records, %ld torn", nrec, ntorn);
    /* the per-stage seconds come back in stage order: 0.5 (k + 1) + n_vert */
    HV_CHECK(s.sec[1][0] == 3.5 && s.sec[1][NS - 1] == 0.5 * NS + 3 && s.sec[1][NS] == 0,
             "seconds of record b: %g ... %g, then %g", s.sec[1][0], s.sec[1][NS - 1], s.sec[1][NS]);
    struct stat sb;
    stat(log, &sb);
    HV_CHECK((long)sb.st_size == sizes[1], "torn tail not cut: %ld bytes, want %ld",
             (long)sb.st_size, sizes[1]);
    /* appending after the cut is read back */
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "reopen");
    fill_result(&r, "d", 2);
    HV_CHECK_OK(hv_journal_append(j, &r));
    hv_journal_close(j);
    memset(&s, 0, sizeof s);
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 3 && ntorn == 0 && !strcmp(s.ids[2], "d"), "after append: %ld records, %ld torn",
             nrec, ntorn);
    /* a flipped byte inside record 2 fails its checksum: records 2.. are cut */
    FILE *f = fopen(log, "r+b");
    long mid = sizes[0] + (sizes[1] - sizes[0]) / 2; /* records may be deflated: aim mid-record */
    fseek(f, mid, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, mid, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    memset(&s, 0, sizeof s);
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 1 && ntorn == 1 && !strcmp(s.ids[0], "a"), "flipped byte: %ld records, %ld torn",
             nrec, ntorn);
}

/* Journals written before records were deflated hold raw "HVJ1" frames
 * (magic, payload length, CRC-32, payload); they must still replay, in any
 * mix with the deflated "HVJ2" frames written now. */
static void test_journal_raw_frames(const char *tmp)
{
    char dir[4200], log[4300];
    snprintf(dir, sizeof dir, "%s/journal-raw", tmp);
    snprintf(log, sizeof log, "%s/rank-0000.log", dir);
    hv_journal *j = NULL;
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "journal open: %s", hv_error_detail());
    hv_case_result r;
    fill_result(&r, "new", 2);
    HV_CHECK_OK(hv_journal_append(j, &r));
    hv_journal_close(j);
    /* append one raw frame by hand: state | crow | n_stages | seconds | n_vert |
     * vrows | n_img=0 | n_qc=0 | one n_vol=0 per crop volume (cam,
     * synth_label, synth_ct, crop3d, orig_ct, orig_label) */
    fill_result(&r, "old", 3);
    uint32_t state = HV_CASE_DONE, ns = NS, nv = 3, zero = 0;
    size_t payload = 4 + sizeof r.c + 4 + ns * sizeof(double) + 4 + nv * sizeof(hv_run_vrow) + 4 + 4 +
                     6 * 4;
    unsigned char *buf = malloc(12 + payload), *p = buf + 12;
    HV_REQUIRE_V(buf != NULL, "malloc");
    memcpy(p, &state, 4), p += 4;
    memcpy(p, &r.c, sizeof r.c), p += sizeof r.c;
    memcpy(p, &ns, 4), p += 4;
    memcpy(p, r.seconds, ns * sizeof(double)), p += ns * sizeof(double);
    memcpy(p, &nv, 4), p += 4;
    memcpy(p, r.v, nv * sizeof(hv_run_vrow)), p += nv * sizeof(hv_run_vrow);
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4), p += 4;
    memcpy(p, &zero, 4);
    uint32_t hdr[3] = {0x314A5648u, (uint32_t)payload, (uint32_t)crc32(0L, buf + 12, (uInt)payload)};
    memcpy(buf, hdr, 12);
    FILE *f = fopen(log, "ab");
    HV_CHECK(f && fwrite(buf, 1, 12 + payload, f) == 12 + payload, "append raw frame");
    if (f) fclose(f);
    free(buf);
    seen_t s = {.n = 0};
    long nrec = 0, ntorn = 0;
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 2 && ntorn == 0 && !strcmp(s.ids[0], "new") && !strcmp(s.ids[1], "old"),
             "deflated + raw frames: %ld records, %ld torn", nrec, ntorn);
}

/* Every journal starts with a layout record ("HVJL": version, case-row and
 * vertebra-row sizes, stage count, stage names). A file written by a build
 * with other row sizes, or by a run with another stage list, must not be
 * misread: replay skips it (its cases run again) and opening it for
 * appending moves it aside. A file from before layout records (none at its
 * start) holds its seconds inside the case rows and is never read now. */
static void test_journal_layout(const char *tmp)
{
    char dir[4200], log[4300], aside[4400];
    snprintf(dir, sizeof dir, "%s/journal-layout", tmp);
    snprintf(log, sizeof log, "%s/rank-0000.log", dir);
    snprintf(aside, sizeof aside, "%s.layout-7", log);
    hv_journal *j = NULL;
    hv_case_result r;
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "journal open: %s", hv_error_detail());
    fill_result(&r, "x", 2);
    HV_CHECK_OK(hv_journal_append(j, &r));
    hv_journal_close(j);
    /* the file starts with the layout record: layout 7, this build's row
     * sizes, and the stage names NUL-separated, padded to 4 bytes */
    unsigned char rec[12 + 600];
    uint32_t hdr[7] = {0};
    memset(rec, 0, sizeof rec);
    FILE *f = fopen(log, "rb");
    HV_REQUIRE_V(f && fread(rec, 1, sizeof rec, f) >= sizeof hdr, "read layout record");
    fclose(f);
    memcpy(hdr, rec, sizeof hdr);
    const char want_names[] = "load\0measure\0synthesis\0grade\0images\0journal\0";
    uint32_t body = 16 + (uint32_t)((sizeof want_names - 1 + 3) & ~3u); /* 44 bytes of names + 0 pad */
    HV_CHECK(hdr[0] == 0x4C4A5648u && hdr[1] == body && hdr[3] == 7 && hdr[4] == sizeof(hv_run_crow) &&
                 hdr[5] == sizeof(hv_run_vrow) && hdr[6] == NS,
             "layout record: magic %08x, body %u B (want %u), layout %u, rows %u/%u B, %u stages",
             hdr[0], hdr[1], body, hdr[3], hdr[4], hdr[5], hdr[6]);
    HV_CHECK(!memcmp(rec + 28, want_names, sizeof want_names - 1), "stage names in the layout record");
    HV_CHECK(hdr[2] == (uint32_t)crc32(0L, rec + 12, body), "layout record CRC");

    /* a legacy file: the same records without the layout record */
    char legacy_dir[4300], legacy[4400];
    snprintf(legacy_dir, sizeof legacy_dir, "%s/journal-legacy", tmp);
    snprintf(legacy, sizeof legacy, "%s/rank-0000.log", legacy_dir);
    HV_REQUIRE_V(hv_mkdir_p(legacy_dir) == HV_OK, "mkdir");
    f = fopen(log, "rb");
    FILE *g = fopen(legacy, "wb");
    HV_REQUIRE_V(f && g, "copy files");
    fseek(f, 12 + (long)body, SEEK_SET);
    int ch;
    while ((ch = fgetc(f)) != EOF) fputc(ch, g);
    fclose(f);
    fclose(g);
    seen_t s = {.n = 0};
    long nrec = 0, ntorn = 0;
    HV_CHECK_OK(hv_journal_replay(legacy_dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 0 && ntorn == 0 && s.n == 0, "legacy file skipped: %ld records, %ld torn", nrec,
             ntorn);

    /* the same file read with another stage list (one stage added): skipped */
    static const char *const more[] = {"load", "measure", "synthesis", "grade",
                                       "images", "journal", "attention"};
    memset(&s, 0, sizeof s);
    HV_CHECK_OK(hv_journal_replay(dir, 7, more, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 0 && ntorn == 0 && s.n == 0,
             "a file of another stage list is not read: %ld records, %ld torn", nrec, ntorn);
    /* ... with the same number of stages, one renamed: skipped too */
    static const char *const renamed[] = {"load", "measure", "synthesize", "grade", "images", "journal"};
    HV_CHECK_OK(hv_journal_replay(dir, NS, renamed, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 0 && s.n == 0, "a renamed stage: %ld records", nrec);
    /* and with its own list: read */
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 1 && !strcmp(s.ids[0], "x"), "own stage list: %ld records", nrec);
    /* bad stage lists are refused outright */
    static const char *const twice[] = {"load", "load"}, *const comma[] = {"a,b"};
    HV_CHECK(hv_journal_replay(dir, 2, twice, on_rec, &s, &nrec, &ntorn) == HV_ERR_ARG, "load twice");
    HV_CHECK(hv_journal_open(dir, -1, 0, 1, comma, &j) == HV_ERR_ARG, "a comma in a stage name");
    HV_CHECK(hv_journal_open(dir, -1, 0, 0, NAMES, &j) == HV_ERR_ARG, "no stages");

    /* opening it for appending with another stage list moves it aside */
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, 7, more, &j) == HV_OK, "reopen: %s", hv_error_detail());
    fill_result(&r, "y", 3);
    r.seconds[6] = 42;
    HV_CHECK_OK(hv_journal_append(j, &r));
    hv_journal_close(j);
    struct stat sb;
    HV_CHECK(stat(aside, &sb) == 0, "the old file is kept as %s", aside);
    memset(&s, 0, sizeof s);
    HV_CHECK_OK(hv_journal_replay(dir, 7, more, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 1 && ntorn == 0 && !strcmp(s.ids[0], "y") && s.sec[0][6] == 42,
             "only the new file's record is read: %ld records (%s)", nrec, s.n ? s.ids[0] : "-");
    /* and back to the six stages: that aside name is taken, the next is used */
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "reopen: %s", hv_error_detail());
    hv_journal_close(j);
    char aside2[4500];
    snprintf(aside2, sizeof aside2, "%s.2", aside);
    HV_CHECK(stat(aside, &sb) == 0 && stat(aside2, &sb) == 0, "both moved-aside files kept");

    /* another build's layout: the vertebra row 8 bytes longer */
    HV_REQUIRE_V(hv_journal_open(dir, -1, 0, NS, NAMES, &j) == HV_OK, "reopen");
    fill_result(&r, "z", 2);
    HV_CHECK_OK(hv_journal_append(j, &r));
    hv_journal_close(j);
    uint32_t vrow = (uint32_t)sizeof(hv_run_vrow) + 8;
    f = fopen(log, "r+b");
    HV_REQUIRE_V(f && fread(rec, 1, sizeof rec, f) >= 12 + body, "read layout record");
    memcpy(rec + 20, &vrow, 4);
    uint32_t crc = (uint32_t)crc32(0L, rec + 12, body);
    memcpy(rec + 8, &crc, 4);
    fseek(f, 0, SEEK_SET);
    HV_REQUIRE_V(fwrite(rec, 1, 12 + body, f) == 12 + body, "patch layout record");
    fclose(f);
    memset(&s, 0, sizeof s);
    HV_CHECK_OK(hv_journal_replay(dir, NS, NAMES, on_rec, &s, &nrec, &ntorn));
    HV_CHECK(nrec == 0 && ntorn == 0 && s.n == 0,
             "a file of another layout is not read: %ld records, %ld torn", nrec, ntorn);
    HV_CHECK(stat(log, &sb) == 0 && sb.st_size > 12 + (off_t)body, "and it is left untouched by replay");
}

/* Read a whole small file into buf (NUL-terminated); its length or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return (long)n;
}

typedef struct {
    hv_journal *j;
} copy_ctx;

static hv_status copy_rec(void *user, const hv_case_result *r)
{
    return hv_journal_append(((copy_ctx *)user)->j, r);
}

/* A resume whose journal was written with another stage list (here: the
 * same records, relabelled with one stage more): its cases run again, the
 * log says why naming both lists, and the results equal the first run's. */
static void test_resume_other_stages(const char *tmp)
{
    char out[4200], jdir[4300], log[4400], other[4300], olog[4400], od[4300];
    snprintf(out, sizeof out, "%s/run-stages", tmp);
    snprintf(jdir, sizeof jdir, "%s/journal", out);
    snprintf(log, sizeof log, "%s/rank-0000.log", jdir);
    snprintf(other, sizeof other, "%s/journal-other", tmp);
    snprintf(olog, sizeof olog, "%s/rank-0000.log", other);
    snprintf(od, sizeof od, "output.dir=%s", out);
    const char *sets[] = {"phantom.cases=3", "phantom.first=T12", "phantom.last=L2",
                          "phantom.spacing=2", "phantom.seed=5", "output.images=none",
                          "grader.method=rule", "run.progress_interval=0", od};
    hv_run_summary sum;
    const char *run_names[HV_PIPE_MAX_STAGES + 2];
    const hv_pipe_table *dt = hv_pipe_default();
    int n_run = dt->n + 1;
    char list[512] = "";
    for (int k = 0; k < dt->n; k++) run_names[k] = dt->stage[k].name;
    run_names[dt->n] = "store";
    run_names[dt->n + 1] = "calibrate";
    for (int k = 0; k < n_run; k++) {
        strncat(list, run_names[k], sizeof list - strlen(list) - 1);
        if (k + 1 < n_run) strncat(list, ",", sizeof list - strlen(list) - 1);
    }
    char want_msg[1200];
    snprintf(want_msg, sizeof want_msg,
             "was written with the stages %s,calibrate, this run has %s: its cases will run again",
             list, list);
    for (int pass = 0; pass < 2; pass++) {
        hv_run_config *c = NULL;
        HV_REQUIRE_V(hv_run_config_new(&c) == HV_OK, "config");
        for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) HV_CHECK_OK(hv_run_config_set(c, sets[i]));
        char errlog[4400];
        snprintf(errlog, sizeof errlog, "%s/pass%d.log", tmp, pass);
        /* the run logs to stderr: keep it for the check below */
        fflush(stderr);
        int saved = dup(2), fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        close(fd);
        hv_status st = hv_run_execute(c, MPI_COMM_WORLD, &sum);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        hv_run_config_free(c);
        HV_REQUIRE_V(st == HV_OK, "run pass %d: %s", pass, hv_error_detail());
        HV_CHECK(sum.n_done == 3, "pass %d: %ld done", pass, sum.n_done);
        char exp[4400];
        snprintf(exp, sizeof exp, "%s/vertebrae.csv", out);
        static char first[1 << 16], now[1 << 16];
        if (pass == 0) {
            HV_CHECK(slurp(exp, first, sizeof first) > 0, "first vertebrae.csv");
            /* relabel the journal: the same records under the runner's
             * stage names (the default table's rows, then "store") and one
             * more */
            copy_ctx cc = {NULL};
            HV_REQUIRE_V(hv_journal_open(other, -1, 0, n_run + 1, run_names, &cc.j) == HV_OK,
                         "journal: %s", hv_error_detail());
            long nrec = 0, ntorn = 0;
            HV_CHECK_OK(hv_journal_replay(jdir, n_run, run_names, copy_rec, &cc, &nrec, &ntorn));
            hv_journal_close(cc.j);
            HV_CHECK(nrec == 3, "3 records copied (%ld)", nrec);
            HV_REQUIRE_V(rename(olog, log) == 0, "replace the journal");
        } else {
            HV_CHECK(sum.attempt == 2 && sum.n_resumed == 0,
                     "resume with another stage list: attempt %d, %ld resumed (want 2, 0)",
                     sum.attempt, sum.n_resumed);
            HV_CHECK(slurp(exp, now, sizeof now) > 0 && !strcmp(first, now),
                     "the cases run again give the same vertebrae.csv");
            static char text[1 << 16];
            slurp(errlog, text, sizeof text);
            HV_CHECK(strstr(text, want_msg) != NULL,
                     "the log says why the cases run again (%s):\n%s", want_msg, text);
            char aside[4500];
            snprintf(aside, sizeof aside, "%s.layout-7", log);
            struct stat sb;
            HV_CHECK(stat(aside, &sb) == 0, "the relabelled journal is kept aside as %s", aside);
        }
    }
}

/* The configuration's synthesis.method choices are exactly the synthesis
 * methods the pipeline registers (hv_pipe_synth_names) for batch runs (not
 * those reading an input given for one case, per_case: measure's `mask`): a
 * method added in one place and not the other would be refused by one and
 * accepted by the other. */
static void test_synth_choices(void)
{
    size_t n = 0;
    const hv_run_key *keys = hv_run_config_keys(&n);
    char cfg[256] = "", reg[256];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].section, "synthesis") || strcmp(keys[i].key, "method")) continue;
        for (size_t c = 0; keys[i].choices && keys[i].choices[c]; c++) {
            if (c) strncat(cfg, ", ", sizeof cfg - strlen(cfg) - 1);
            strncat(cfg, keys[i].choices[c], sizeof cfg - strlen(cfg) - 1);
        }
    }
    char all[256];
    hv_pipe_synth_names(all, sizeof all);
    reg[0] = 0;
    for (char *save = NULL, *nm = strtok_r(all, ", ", &save); nm; nm = strtok_r(NULL, ", ", &save)) {
        const hv_pipe_synth *m = hv_pipe_synth_find(nm);
        if (!m || m->per_case) continue;
        if (reg[0]) strncat(reg, ", ", sizeof reg - strlen(reg) - 1);
        strncat(reg, nm, sizeof reg - strlen(reg) - 1);
    }
    HV_CHECK(cfg[0] && !strcmp(cfg, reg), "synthesis.method choices '%s' == registered '%s'", cfg,
             reg);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const char *tmp0 = hv_test_tmpdir("mpi_store");
    HV_REQUIRE(tmp0 != NULL, "tmpdir");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", tmp0);
    test_config(tmp);
    test_synth_choices();
    test_journal(tmp);
    test_journal_raw_frames(tmp);
    test_journal_layout(tmp);
    test_resume_other_stages(tmp);

    char out[4200], store[4300], exp[4300], p[4400];
    snprintf(out, sizeof out, "%s/run", tmp);
    snprintf(store, sizeof store, "%s/store.h5", out);
    hv_run_config *c = NULL;
    HV_REQUIRE(hv_run_config_new(&c) == HV_OK, "config");
    const char *sets[] = {"phantom.cases=3", "phantom.first=T12", "phantom.last=L2",
                          "phantom.spacing=2", "phantom.seed=5", "output.images=full",
                          "grader.method=rule", "run.progress_interval=0"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) HV_CHECK_OK(hv_run_config_set(c, sets[i]));
    char od[4300];
    snprintf(od, sizeof od, "output.dir=%s", out);
    HV_CHECK_OK(hv_run_config_set(c, od));
    hv_run_summary sum;
    hv_status st = hv_run_execute(c, MPI_COMM_WORLD, &sum);
    hv_run_config_free(c);
    HV_REQUIRE(st == HV_OK, "run: %s", hv_error_detail());
    HV_CHECK(sum.n_cases == 3 && sum.n_done == 3 && sum.n_failed == 0, "counts %ld/%ld/%ld",
             sum.n_cases, sum.n_done, sum.n_failed);
    HV_CHECK(sum.n_vertebrae == 9, "vertebrae %ld (3 cases x T12-L2)", sum.n_vertebrae);
    HV_CHECK(!strcmp(sum.grader, "rule"), "grader %s", sum.grader);

    char *rep = NULL;
    st = hv_store_validate(store, &rep);
    HV_CHECK(st == HV_OK, "fresh store invalid: %s\n%s", hv_error_detail(), rep ? rep : "");
    free(rep);
    char *text = NULL;
    HV_CHECK_OK(hv_store_describe(store, &text));
    HV_CHECK(text && strstr(text, "healthivert-store v4") && strstr(text, "state:          complete") &&
                 strstr(text, "3 done, 0 failed"),
             "describe:\n%s", text ? text : "");
    free(text);
    snprintf(exp, sizeof exp, "%s/export", tmp);
    HV_CHECK_OK(hv_store_export_csv(store, exp));
    snprintf(p, sizeof p, "%s/vertebrae.csv", exp);
    HV_CHECK(count_lines(p) == 10, "vertebrae.csv has %ld lines (header + 9)", count_lines(p));
    snprintf(p, sizeof p, "%s/cases.csv", exp);
    HV_CHECK(count_lines(p) == 4, "cases.csv has %ld lines (header + 3)", count_lines(p));

    /* images = full: 3 planes per slot, and the maps hold finite heights */
    hid_t f = H5Fopen(store, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "images/planes", H5P_DEFAULT);
    HV_REQUIRE(d >= 0, "no /images/planes");
    hid_t sp = H5Dget_space(d);
    hsize_t dims[4] = {0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    HV_CHECK(dims[0] == 3 * HV_RUN_MAX_VERT && dims[1] == 3 && dims[2] == 32 && dims[3] == 32,
             "image dims %llu %llu", (unsigned long long)dims[0], (unsigned long long)dims[1]);
    float *img = malloc(3 * 32 * 32 * sizeof(float));
    hsize_t st4[4] = {0, 0, 0, 0}, ct4[4] = {1, 3, 32, 32};
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, st4, NULL, ct4, NULL);
    hid_t ms = H5Screate_simple(4, ct4, NULL);
    HV_CHECK(H5Dread(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, img) >= 0, "read images");
    int finite_h = 0;
    for (int i = 32 * 32; i < 2 * 32 * 32; i++) finite_h += img[i] > 5 && img[i] < 60;
    HV_CHECK(finite_h > 100, "first vertebra's measured height map has %d plausible pixels", finite_h);
    free(img);
    H5Sclose(ms);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);

    /* damaged copies */
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/bad1.h5", tmp);
    hv_test_copy_file(store, bad);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "cases/status", H5P_DEFAULT);
    sp = H5Dget_space(d);
    hsize_t one = 1, zero = 0;
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, &zero, NULL, &one, NULL);
    ms = H5Screate_simple(1, &one, NULL);
    unsigned char two = 2;
    hid_t et = H5Dget_type(d);
    H5Dwrite(d, et, ms, sp, H5P_DEFAULT, &two);
    H5Tclose(et);
    H5Sclose(ms);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    expect_invalid(bad, "failed without a reason");

    snprintf(bad, sizeof bad, "%s/bad2.h5", tmp);
    hv_test_copy_file(store, bad);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "vertebrae/table", H5P_DEFAULT);
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(int32_t));
    H5Tinsert(mt, "label", 0, H5T_NATIVE_INT32);
    sp = H5Dget_space(d);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, &zero, NULL, &one, NULL);
    ms = H5Screate_simple(1, &one, NULL);
    int32_t lab = 5;
    H5Dwrite(d, mt, ms, sp, H5P_DEFAULT, &lab);
    H5Tclose(mt);
    H5Sclose(ms);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    expect_invalid(bad, "label 5 with level 'T12'");

    snprintf(bad, sizeof bad, "%s/bad3.h5", tmp);
    hv_test_copy_file(store, bad);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "grader", H5P_DEFAULT);
    H5Fclose(f);
    expect_invalid(bad, "complete store without /grader");

    snprintf(bad, sizeof bad, "%s/bad4.h5", tmp);
    hv_test_copy_file(store, bad);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    int64_t v5 = 5;
    H5Awrite(a, H5T_NATIVE_INT64, &v5);
    H5Aclose(a);
    H5Fclose(f);
    expect_invalid(bad, "schema version 5");

    snprintf(bad, sizeof bad, "%s/bad5.h5", tmp);
    FILE *g = fopen(bad, "w");
    fputs("not an HDF5 file\n", g);
    fclose(g);
    expect_invalid(bad, "cannot open");

    MPI_Finalize();
    return hv_test_done();
}
