/*
 * test_journal_seeds.c: the committed journal seeds of the fuzz corpus
 * (tests/fuzz/corpus/journal, written by tests/fuzz/make_corpus.c) still
 * reach the payload parser of this build.
 *
 * Why: replay moves a journal of another layout aside unread (journal.c).
 * When HV_JOURNAL_LAYOUT changes and the seeds are not regenerated, every
 * seed stops at the layout record, the fuzzer starts outside the parser and
 * nothing says so (the replay tests still pass: "no records" is valid).
 * This test fails instead, naming the seed. The expected contents are what
 * make_corpus.c writes (its fill_case/add_volumes), not earlier output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/store.h"
#include "hv_test.h"

/* the stage names make_corpus.c and fuzz_journal.c use */
static const char *const stages[] = {"load", "measure", "synthesis", "grade", "images", "journal"};

typedef struct seen {
    int n;
    char ids[4][64];
    int n_vert[4];
    int n_vol[4];
    int has_qc[4];
} seen;

static hv_status on_record(void *user, const hv_case_result *r)
{
    seen *s = user;
    if (s->n < 4) {
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", r->c.id);
        s->n_vert[s->n] = r->c.n_vert;
        for (int w = 0; w < HV_STORE_N_VOL; w++)
            s->n_vol[s->n] += r->vol_z[w] != NULL && r->vol_z_len[w][0] > 0;
        s->has_qc[s->n] = r->qc_png != NULL;
    }
    s->n++;
    return HV_OK;
}

/* Replay a copy of seed `name` (the replay may cut a torn tail off). */
static int replay(const char *tmp, const char *name, seen *s, long *n_rec, long *n_torn)
{
    char from[4096], dir[4200], to[4300];
    snprintf(from, sizeof from, "%s/fuzz/corpus/journal/%s", HV_TEST_SOURCE_DIR, name);
    snprintf(dir, sizeof dir, "%s/%s.d", tmp, name);
    snprintf(to, sizeof to, "%s/rank-0000.log", dir);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0 || hv_test_copy_file(from, to) != 0) {
        HV_CHECK(0, "cannot copy seed %s", from);
        return -1;
    }
    memset(s, 0, sizeof *s);
    hv_status st = hv_journal_replay(dir, 6, stages, on_record, s, n_rec, n_torn);
    HV_CHECK(st == HV_OK, "replay of %s: %s", name, hv_error_detail());
    return st == HV_OK ? 0 : -1;
}

int main(void)
{
    const char *tmp = hv_test_tmpdir("journal_seeds");
    HV_REQUIRE(tmp != NULL, "scratch folder");
    seen s;
    long n = 0, torn = 0;

    if (replay(tmp, "failed.log", &s, &n, &torn) == 0) {
        HV_CHECK(n == 1 && torn == 0, "failed.log: %ld records, %ld torn (want 1, 0)", n, torn);
        HV_CHECK(s.n == 1 && strcmp(s.ids[0], "0003") == 0, "failed.log: case 0003");
    }
    if (replay(tmp, "done_img.log", &s, &n, &torn) == 0) {
        HV_CHECK(n == 1 && torn == 0, "done_img.log: %ld records, %ld torn (want 1, 0)", n, torn);
        HV_CHECK(s.n == 1 && s.n_vert[0] == 2, "done_img.log: 2 vertebrae");
    }
    if (replay(tmp, "done_full_qc.log", &s, &n, &torn) == 0) {
        HV_CHECK(n == 1 && torn == 0, "done_full_qc.log: %ld records, %ld torn (want 1, 0)", n,
                 torn);
        HV_CHECK(s.n == 1 && s.has_qc[0], "done_full_qc.log: QC pictures");
        HV_CHECK(s.n == 1 && s.n_vol[0] == HV_STORE_N_VOL,
                 "done_full_qc.log: %d crop volumes (want %d)", s.n ? s.n_vol[0] : -1,
                 HV_STORE_N_VOL);
    }
    if (replay(tmp, "raw_hvj1.log", &s, &n, &torn) == 0) {
        HV_CHECK(n == 1 && torn == 0, "raw_hvj1.log: %ld records, %ld torn (want 1, 0)", n, torn);
        HV_CHECK(s.n == 1 && strcmp(s.ids[0], "0011") == 0, "raw_hvj1.log: case 0011");
    }
    if (replay(tmp, "two_and_torn.log", &s, &n, &torn) == 0)
        HV_CHECK(n == 2 && torn == 1, "two_and_torn.log: %ld records, %ld torn (want 2, 1)", n,
                 torn);
    /* written with a seventh stage name: skipped on purpose */
    if (replay(tmp, "other_stages.log", &s, &n, &torn) == 0)
        HV_CHECK(n == 0, "other_stages.log: %ld records (want 0)", n);
    return hv_test_done();
}
