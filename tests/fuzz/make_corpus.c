/*
 * make_corpus.c: writes the generated part of the committed seed corpus.
 *
 *   cmake --build build --target fuzz_make_corpus
 *   build/bin/fuzz_make_corpus ../shared/data tests/fuzz/corpus
 *
 * Seeds should be small (libFuzzer mutates every byte; a 2 MB CT would make
 * each execution slow and most mutations land in voxel data), valid (so the
 * fuzzer starts deep inside the parser) and real. So:
 *  - nifti/, nifti_gz/: 8x8x8 crops of the shared real CT (int16 with a
 *    scaling, NIfTI-1 and -2) and of its VerSe label mask (uint8), written by
 *    our own writer, as .nii and .nii.gz; plus the real CT's own header bytes
 *    (its first 352 decompressed bytes: a real header without its data);
 *  - journal/: journals written by hv_journal_append with the runner's six
 *    stage names (a failed case, done cases with images and QC pictures, two
 *    records and a torn tail; the QC case also carries every crop
 *    volume), one with a raw (not deflated) HVJ1 frame
 *    appended by hand, and one whose layout record names other stages.
 * The other seeds (JSON, INI, malformed NIfTI files) are copies of existing
 * files; corpus/README.md lists where each came from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "hv/io.h"
#include "hv/store.h"

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, hv_error_detail());
    exit(1);
}

static char *path_of(const char *dir, const char *sub, const char *name)
{
    static char p[4][4096];
    static int slot;
    char *s = p[slot++ & 3];
    snprintf(s, sizeof p[0], "%s/%s/%s", dir, sub, name);
    return s;
}

/* An n^3 crop of v around its centre, as `dtype`. */
static hv_volume *crop(const hv_volume *v, int64_t n, hv_dtype dtype)
{
    int64_t o[3], d[3] = {n, n, n};
    for (int a = 0; a < 3; a++) o[a] = v->dim[a] / 2 - n / 2;
    double A[4][4];
    memcpy(A, v->affine, sizeof A);
    for (int r = 0; r < 3; r++)
        A[r][3] = v->affine[r][0] * (double)o[0] + v->affine[r][1] * (double)o[1] +
                  v->affine[r][2] * (double)o[2] + v->affine[r][3];
    hv_volume *f = NULL, *c = NULL;
    if (hv_vol_convert(v, HV_DTYPE_F32, &f) != HV_OK) die("convert");
    if (hv_vol_create(&c, d, HV_DTYPE_F32, (const double(*)[4])A) != HV_OK) die("create");
    const float *src = f->data;
    float *dst = c->data;
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < n; i++)
                dst[(k * n + j) * n + i] =
                    src[((o[2] + k) * v->dim[1] + o[1] + j) * v->dim[0] + o[0] + i];
    hv_vol_free(f);
    hv_volume *out = NULL;
    if (hv_vol_convert(c, dtype, &out) != HV_OK) die("convert");
    hv_vol_free(c);
    return out;
}

static void write_vol(const char *out, const char *name, const hv_volume *v, int version,
                      int datatype, double slope, double inter)
{
    hv_nifti_write_opts o = {.version = version, .datatype = datatype, .scl_slope = slope,
                             .scl_inter = inter, .descrip = "healthivert fuzz seed"};
    char file[512];
    snprintf(file, sizeof file, "%s.nii", name);
    if (hv_io_nifti_write(path_of(out, "nifti", file), v, &o) != HV_OK) die(file);
    snprintf(file, sizeof file, "%s.nii.gz", name);
    if (hv_io_nifti_write(path_of(out, "nifti_gz", file), v, &o) != HV_OK) die(file);
}

static void nifti_seeds(const char *data, const char *out)
{
    char ct[4096], msk[4096];
    snprintf(ct, sizeof ct, "%s/totalseg-example/example_ct.nii.gz", data);
    snprintf(msk, sizeof msk, "%s/totalseg-example/example_ct_vert_msk_verse.nii.gz", data);
    hv_volume *v = NULL, *m = NULL;
    if (hv_io_nifti_read(ct, HV_DTYPE_F32, NULL, &v, NULL) != HV_OK) die(ct);
    if (hv_io_nifti_read(msk, HV_DTYPE_U8, NULL, &m, NULL) != HV_OK) die(msk);
    hv_volume *c = crop(v, 8, HV_DTYPE_F32), *l = crop(m, 8, HV_DTYPE_U8);
    write_vol(out, "real_ct_crop_v1_i16", c, 1, 4 /* INT16 */, 0, 0);
    write_vol(out, "real_ct_crop_v2_f32", c, 2, 16 /* FLOAT32 */, 0, 0);
    write_vol(out, "real_ct_crop_v1_u8_scaled", c, 1, 2 /* UINT8 */, 8.0, -1024.0);
    write_vol(out, "real_mask_crop_v1_u8", l, 1, 2, 0, 0);
    hv_vol_free(c);
    hv_vol_free(l);
    hv_vol_free(v);
    hv_vol_free(m);

    /* The real CT's header (348 bytes + 4-byte extension flag). */
    gzFile gz = gzopen(ct, "rb");
    unsigned char hdr[352];
    if (!gz || gzread(gz, hdr, sizeof hdr) != (int)sizeof hdr) die("real header");
    gzclose(gz);
    FILE *f = fopen(path_of(out, "nifti", "real_ct_header_only.nii"), "wb");
    if (!f || fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr || fclose(f)) die("write header");
}

/* ------------------------------------------------------------- journals */

/* The runner's stage names (src/mpi/stage.c), which fuzz_journal.c replays with. */
static const char *const stages[] = {"load", "measure", "synthesis", "grade", "images", "journal"};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))

static void fill_case(hv_case_result *r, const char *id, int state, int n_vert, int n_img, int qc)
{
    memset(r, 0, sizeof *r);
    r->state = state;
    snprintf(r->c.id, sizeof r->c.id, "%s", id);
    snprintf(r->c.ct_path, sizeof r->c.ct_path, "cohort/raw/%s/%s.nii.gz", id, id);
    snprintf(r->c.mask_path, sizeof r->c.mask_path, "cohort/raw/%s/%s_msk.nii.gz", id, id);
    r->c.rank = 1;
    r->c.attempt = 1;
    r->c.cost = 1.5e6;
    for (int s = 0; s < N_STAGES; s++) r->seconds[s] = 0.01 * (s + 1);
    if (state == HV_CASE_FAILED) {
        snprintf(r->c.error, sizeof r->c.error, "%s: spine stage: no centroid above L1", id);
        r->c.error_code = 5;
        return;
    }
    r->c.n_vert = n_vert;
    static const char *lv[] = {"T12", "L1", "L2", "L3"};
    for (int i = 0; i < n_vert; i++) {
        hv_run_vrow *v = &r->v[i];
        v->label = 19 + i;
        snprintf(v->level, sizeof v->level, "%s", lv[i & 3]);
        v->known_grade = i == 1 ? 2 : 0;
        v->split_set = i % 3;
        v->grade_rule = i == 1 ? 2 : 0;
        v->grade_pred = -1;
        v->volume_ml = 30 + i;
        v->mean_hu = 210 - 5 * i;
        for (int a = 0; a < 3; a++) v->centroid[a] = 10.0 * a + i;
        for (int g = 0; g < HV_REG_COUNT; g++) {
            v->h_ori[g] = 24.0 - g - (i == 1 ? 6 : 0);
            v->h_syn[g] = 24.0 - g;
            v->rhlv[g] = (v->h_syn[g] - v->h_ori[g]) / v->h_syn[g];
        }
    }
    r->n_img = n_img;
    if (n_img) {
        size_t n = (size_t)n_vert * (size_t)n_img * HV_RUN_IMG * HV_RUN_IMG;
        r->img = calloc(n, sizeof *r->img);
        for (size_t k = 0; k < n; k += 3) r->img[k] = (float)(k % 17) * 0.25f;
    }
    if (qc) {
        size_t n = (size_t)n_vert * HV_RUN_QC_BYTES;
        r->qc = calloc(n, 1);
        for (size_t k = 0; k < n; k += 4099) r->qc[k] = (uint8_t)(k % 251);
    }
}

/* Every crop volume of hv_store_vol (attention map, synthesized label and
 * CT, crop3d box, original CT and label) for vertebra 0 of r: a u8 volume of that volume's layout,
 * zero but for one plane of a ramp (deflates to a few kB, so the seed stays
 * small). */
static void add_volumes(hv_case_result *r)
{
    static const double A[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        int64_t d[3];
        hv_store_vol_dims(w, d);
        hv_volume *u = NULL;
        if (hv_vol_create(&u, d, HV_DTYPE_U8, A) != HV_OK) die("crop volume");
        uint8_t *b = u->data;
        for (size_t k = 0; k < (size_t)(d[0] * d[1]); k++) b[k] = (uint8_t)(k % 200);
        uint8_t *z = NULL;
        size_t len = 0;
        if (hv_store_vol_encode(w, u, &z, &len) != HV_OK) die("crop encode");
        r->vol_z[w] = z;
        r->vol_z_len[w][0] = (uint32_t)len;
        hv_vol_free(u);
    }
}

static void copy_file(const char *from, const char *to, long cut)
{
    FILE *f = fopen(from, "rb");
    if (!f) die(from);
    static unsigned char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (cut > 0 && (size_t)cut < n) n -= (size_t)cut;
    FILE *g = fopen(to, "wb");
    if (!g || fwrite(buf, 1, n, g) != n || fclose(g)) die(to);
}

/* Write rs[0..n) with hv_journal_append, stage list names[0..n_stages),
 * into a fresh journal folder tmp/name; returns its file (static buffer). */
static const char *journal_write(const char *tmp, const char *name, int n_stages,
                                 const char *const *names, hv_case_result *rs, int n)
{
    static char file[4200];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    hv_journal *j = NULL;
    if (hv_journal_open(dir, -1, 0, n_stages, names, &j) != HV_OK) die("journal open");
    for (int i = 0; i < n; i++)
        if (hv_journal_append(j, &rs[i]) != HV_OK) die("journal append");
    hv_journal_close(j);
    snprintf(file, sizeof file, "%s/rank-0000.log", dir);
    return file;
}

/* Copy the journal file `from` (less its last `cut` bytes) to the corpus as
 * `name` and remove its folder. */
static void journal_keep(const char *out, const char *from, const char *name, long cut)
{
    char dir[4200], cmd[4300];
    copy_file(from, path_of(out, "journal", name), cut);
    snprintf(dir, sizeof dir, "%s", from);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) die("rm");
}

static void journal_seed(const char *out, const char *tmp, const char *name, hv_case_result *rs,
                         int n, long cut)
{
    journal_keep(out, journal_write(tmp, name, N_STAGES, stages, rs, n), name, cut);
}

static void journal_seeds(const char *out)
{
    char tmp[] = "/tmp/hv_make_corpus.XXXXXX";
    if (!mkdtemp(tmp)) die("mkdtemp");
    hv_case_result r[3];
    fill_case(&r[0], "0003", HV_CASE_FAILED, 0, 0, 0);
    fill_case(&r[1], "0007", HV_CASE_DONE, 2, 1, 0);
    fill_case(&r[2], "sub-verse004", HV_CASE_DONE, 1, 3, 1);
    add_volumes(&r[2]);
    journal_seed(out, tmp, "failed.log", &r[0], 1, 0);
    journal_seed(out, tmp, "done_img.log", &r[1], 1, 0);
    journal_seed(out, tmp, "done_full_qc.log", &r[2], 1, 0);
    journal_seed(out, tmp, "two_and_torn.log", r, 3, 40);

    /* A layout record naming another stage list (a stage added). */
    static const char *const other[] = {"load", "measure", "synthesis", "grade", "images",
                                        "journal", "attention"};
    journal_keep(out, journal_write(tmp, "other_stages.log", 7, other, &r[1], 1),
                 "other_stages.log", 0);

    /* The layout record, then one raw (not deflated) HVJ1 frame appended by
     * hand: state | crow | n_stages | seconds | n_vert | vrows | n_img 0 | n_qc 0 |
     * n_vol 0 for each of the HV_STORE_N_VOL crop volumes. */
    const char *file = journal_write(tmp, "raw_hvj1.log", N_STAGES, stages, NULL, 0);
    uint32_t state = HV_CASE_DONE, ns = N_STAGES, nv = 1, zero = 0;
    hv_case_result q;
    fill_case(&q, "0011", HV_CASE_DONE, 1, 0, 0);
    size_t n = 4 + sizeof q.c + 4 + ns * sizeof(double) + 4 + sizeof q.v[0] + 4 + 4 +
               4 * (size_t)HV_STORE_N_VOL;
    unsigned char *p = malloc(12 + n), *w = p + 12;
    memcpy(w, &state, 4), w += 4;
    memcpy(w, &q.c, sizeof q.c), w += sizeof q.c;
    memcpy(w, &ns, 4), w += 4;
    memcpy(w, q.seconds, ns * sizeof(double)), w += ns * sizeof(double);
    memcpy(w, &nv, 4), w += 4;
    memcpy(w, &q.v[0], sizeof q.v[0]), w += sizeof q.v[0];
    memcpy(w, &zero, 4), w += 4;
    memcpy(w, &zero, 4), w += 4;
    for (int k = 0; k < HV_STORE_N_VOL; k++) memcpy(w, &zero, 4), w += 4;
    uint32_t hdr[3] = {0x314A5648u, (uint32_t)n, (uint32_t)crc32(0L, p + 12, (uInt)n)};
    memcpy(p, hdr, 12);
    FILE *f = fopen(file, "ab");
    if (!f || fwrite(p, 1, 12 + n, f) != 12 + n || fclose(f)) die("write raw frame");
    free(p);
    journal_keep(out, file, "raw_hvj1.log", 0);
    for (int i = 0; i < 3; i++) hv_case_result_clear(&r[i]);
    hv_case_result_clear(&q);
    rmdir(tmp);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SHARED_DATA_DIR CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const char *subs[] = {"nifti", "nifti_gz", "journal"};
    for (int i = 0; i < 3; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", argv[2], subs[i]);
        mkdir(argv[2], 0755);
        mkdir(d, 0755);
    }
    nifti_seeds(argv[1], argv[2]);
    journal_seeds(argv[2]);
    printf("seeds written under %s\n", argv[2]);
    return 0;
}
