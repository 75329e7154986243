/*
 * fuzz_journal.c: libFuzzer target for journal replay (src/store/journal.c).
 *
 * The input is one per-rank journal file (HVJ1 raw and HVJ2 deflated frames,
 * torn tails, garbage), written as <tmp>/journal/rank-0000.log, then
 * replayed with hv_journal_replay as a resumed run does. The input is the
 * whole file, not a frame: replay's job is to find where valid data end.
 *
 * Replay reads the file with the runner's six stage names, the list the
 * seeds of corpus/journal were written with (make_corpus.c), so that a
 * seed's records reach the payload parser; a layout record naming other
 * stages makes replay skip the file, which is fuzzed too.
 *
 * Every frame carries a CRC-32, so almost every mutation of a payload
 * would only ever reach "checksum mismatch". For inputs of even size the
 * target therefore first rewrites each frame's CRC to match its (mutated)
 * bytes, walking the frames as replay does (the layout record first);
 * odd sizes go in untouched, so the checksum path stays fuzzed too.
 *
 * Invariants beyond "no crash, no sanitizer report, no leak":
 *  - every record handed to the callback is sane: state done or failed,
 *    n_vert 0..HV_RUN_MAX_VERT, id and error NUL-terminated, images present
 *    exactly when n_vert * n_img > 0 (QC pictures likewise);
 *  - replay cuts a bad tail off the file (it never grows it), and replaying
 *    the cut file again finds the same records and nothing torn: a resumed
 *    run can append after what is left.
 */
#include <sys/stat.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "hv/store.h"

static const char *const stages[] = {"load", "measure", "synthesis", "grade", "images", "journal"};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR); /* every torn frame warns */
    return 0;
}

static hv_status on_record(void *user, const hv_case_result *r)
{
    long *n = user;
    (*n)++;
    if (r->state != HV_CASE_DONE && r->state != HV_CASE_FAILED) HV_FUZZ_FAIL("state %d", r->state);
    if (r->c.n_vert < 0 || r->c.n_vert > HV_RUN_MAX_VERT) HV_FUZZ_FAIL("n_vert %d", (int)r->c.n_vert);
    if (!memchr(r->c.id, 0, sizeof r->c.id) || !memchr(r->c.error, 0, sizeof r->c.error))
        HV_FUZZ_FAIL("unterminated id or error");
    if (r->n_img < 0 || r->n_img > HV_IMG_COUNT) HV_FUZZ_FAIL("n_img %d", r->n_img);
    if ((r->img != NULL) != (r->c.n_vert * r->n_img > 0))
        HV_FUZZ_FAIL("images %s with n_vert %d, n_img %d", r->img ? "present" : "absent",
                     (int)r->c.n_vert, r->n_img);
    if (r->qc && r->c.n_vert == 0) HV_FUZZ_FAIL("QC pictures without vertebrae");
    /* Touch every byte handed over, so ASan checks the sizes. */
    size_t ni = (size_t)r->c.n_vert * (size_t)r->n_img * HV_RUN_IMG * HV_RUN_IMG;
    volatile float fs = 0;
    for (size_t i = 0; r->img && i < ni; i += 97) fs += r->img[i];
    if (r->img) fs += r->img[ni - 1];
    if (r->qc) {
        volatile uint8_t q = r->qc[(size_t)r->c.n_vert * HV_RUN_QC_BYTES - 1];
        (void)q;
    }
    (void)fs;
    (void)strlen(r->c.id);
    return HV_OK;
}

/* Patch the CRC of every whole HVJL/HVJ1/HVJ2 frame in b (the layout in journal.c). */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t off = 0;
    while (n - off >= 12) {
        uint32_t magic, len;
        memcpy(&magic, b + off, 4);
        memcpy(&len, b + off + 4, 4);
        size_t head = magic == 0x314A5648u || magic == 0x4C4A5648u ? 12 : magic == 0x324A5648u ? 16 : 0;
        if (!head || n - off < head || n - off - head < len) return;
        uint32_t crc = (uint32_t)crc32(0L, b + off + head, (uInt)len);
        memcpy(b + off + 8, &crc, 4);
        off += head + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200], file[4300];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/journal", hv_fuzz_tmpdir());
        if (mkdir(dir, 0755) != 0) HV_FUZZ_FAIL("mkdir %s: %s", dir, strerror(errno));
        snprintf(file, sizeof file, "%s/rank-0000.log", dir);
    }
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) HV_FUZZ_FAIL("out of memory");
    memcpy(copy, data, size);
    if (size % 2 == 0) fix_crcs(copy, size);
    hv_fuzz_write_file(file, copy, size);
    free(copy);

    long seen = 0, n_rec = 0, n_torn = 0;
    hv_status st = hv_journal_replay(dir, N_STAGES, stages, on_record, &seen, &n_rec, &n_torn);
    if (st != HV_OK) HV_FUZZ_FAIL("replay failed: %s", hv_error_detail());
    if (seen != n_rec) HV_FUZZ_FAIL("%ld records counted, %ld seen", n_rec, seen);
    struct stat sb;
    if (stat(file, &sb) != 0) HV_FUZZ_FAIL("the journal is gone");
    if ((uint64_t)sb.st_size > size) HV_FUZZ_FAIL("replay grew the journal");
    if (n_torn == 0 && (size_t)sb.st_size != size) HV_FUZZ_FAIL("nothing torn, yet the file was cut");

    long seen2 = 0, n_rec2 = 0, n_torn2 = 0;
    st = hv_journal_replay(dir, N_STAGES, stages, on_record, &seen2, &n_rec2, &n_torn2);
    if (st != HV_OK) HV_FUZZ_FAIL("second replay failed: %s", hv_error_detail());
    if (n_rec2 != n_rec || n_torn2 != 0)
        HV_FUZZ_FAIL("after the cut: %ld records (%ld torn), before %ld", n_rec2, n_torn2, n_rec);
    return 0;
}
