/*
 * test_model_senet3d_io.c: the 3-D SupCon-SENet's model file and grader
 * (src/model/senet3d_io.c).
 *
 *  - the box shrinking against hand values: box voxel (x, y, z) = 10 *
 *    (x / 4) (x fastest), so at shrink 4 input voxel a is 10 a / 255 and
 *    at shrink 2 it is 10 (a / 2) / 255, whatever y and z;
 *  - a network (width 2, blocks 1, projection 8, box 64, shrink 4, batch
 *    3, seeded weights, then 12 classification steps, lr 1e-2, to grades
 *    box % 4, so its grades of the 8 boxes differ and the running
 *    statistics have moved) saved and read back grades the boxes as the
 *    trainer does on the same parameters, fed by this test's own shrinking
 *    loop (batches of 3, the last padded with its first box), the file's
 *    settings read back as written;
 *  - refusals, naming the cause: a missing file; a /meta kind of another
 *    model ('classifier'); a senet3d_format newer than this build's; a
 *    /meta width the parameters do not have; a truncated file;
 *  - the fold results (format 2): FNV-1a against the published test
 *    vectors of its authors ("" cbf29ce484222325, "a" af63dc4c8601ec8c,
 *    "foobar" 85944171f73967e8); saved with 2 folds x 3 val grades and a
 *    /meta key, read back into a set of other initial values: the same
 *    grades and the same floats bit for bit, the key and format 2 on /meta,
 *    measure's grader still opens it; refused, naming why: another shape, a
 *    file without them (hv_model_senet3d_save), one byte of a parameter
 *    changed in the file (the content digest), a grade 4 to save (nothing
 *    written).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv_test.h"

#define BOX 64
#define SHRINK 4
#define SIDE (BOX / SHRINK)
#define VOX (SIDE * SIDE * SIDE)
#define NB 3
#define NBOX 8
#define STEPS 12

static int refused(const char *path, hv_status want, const char *needle)
{
    hv_model_senet3d_grader *g = NULL;
    hv_status st = hv_model_senet3d_grader_open(path, &g);
    const char *d = hv_error_detail();
    int ok = HV_CHECK(st == want && !g && strstr(d, needle), "open %s: %s (want %s) '%s' (want "
                      "it to name '%s')", path, hv_status_name(st), hv_status_name(want), d,
                      needle);
    hv_model_senet3d_grader_free(g);
    return ok;
}

/* An hv_nn_checkpoint of ps with the model file's keys, kind, format and
 * width as given. */
static hv_status save_meta(const char *path, const hv_nn_params *ps, const char *kind,
                           const char *format, const char *width)
{
    const char *kv[] = {"kind", kind,      "senet3d_format", format, "width", width,
                        "blocks", "1,1,1,1", "proj_dim", "8",   "box",   "64",
                        "shrink", "4",     "batch", "3",        "rows",  "10", "seed", "5"};
    return hv_nn_checkpoint_save(path, ps, NULL, kv, sizeof kv / sizeof kv[0] / 2);
}

/* Boxes bp[at..at+NB) (past n: box at) shrunk by this test's own loop
 * into x (NB x VOX). */
static void feed(const uint8_t *const *bp, int at, int n, float *x)
{
    for (int b = 0; b < NB; b++) {
        const uint8_t *s = bp[at + b < n ? at + b : at];
        for (int c = 0; c < SIDE; c++)
            for (int r = 0; r < SIDE; r++)
                for (int a = 0; a < SIDE; a++) {
                    double sum = 0;
                    for (int i = 0; i < SHRINK * SHRINK * SHRINK; i++) {
                        int dz = i / 16, dy = (i / 4) % 4, dx = i % 4;
                        sum += s[((size_t)(c * 4 + dz) * BOX + (size_t)(r * 4 + dy)) * BOX +
                                 (size_t)(a * 4 + dx)];
                    }
                    x[(size_t)b * VOX + ((size_t)c * SIDE + r) * SIDE + a] =
                        (float)(sum / (255.0 * 64));
                }
    }
}

int main(void)
{
    /* shrinking by hand */
    uint8_t *u = malloc((size_t)BOX * BOX * BOX);
    float *o4 = malloc(sizeof(float) * VOX), *o2 = malloc(sizeof(float) * 32 * 32 * 32);
    HV_REQUIRE(u && o4 && o2, "out of memory");
    for (size_t i = 0; i < (size_t)BOX * BOX * BOX; i++) u[i] = (uint8_t)(10 * ((i % BOX) / 4));
    hv_model_senet3d_shrink_box(u, BOX, 4, o4);
    hv_model_senet3d_shrink_box(u, BOX, 2, o2);
    int bad4 = 0, bad2 = 0;
    for (int i = 0; i < VOX; i++)
        bad4 += o4[i] != (float)(10.0 * (i % SIDE) / 255.0);
    for (int i = 0; i < 32 * 32 * 32; i++)
        bad2 += o2[i] != (float)(10.0 * ((i % 32) / 2) / 255.0);
    HV_CHECK(bad4 == 0, "shrink 4: %d of %d voxels differ from 10 a / 255", bad4, VOX);
    HV_CHECK(bad2 == 0, "shrink 2: %d voxels differ from 10 (a / 2) / 255", bad2);

    const char *dir = hv_test_tmpdir("senet3d_io");
    HV_REQUIRE(dir, "scratch folder");
    char path[4200], p2[4200];
    snprintf(path, sizeof path, "%s/model.h5", dir);
    hv_model_senet3d_config cfg = {2, {1, 1, 1, 1}, 8};
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 5, 3);
    HV_REQUIRE(hv_nn_params_create(&ps) == HV_OK &&
               hv_model_senet3d_params(ps, &cfg, &rng) == HV_OK, "parameters: %s",
               hv_error_detail());
    /* boxes: blobs of different brightness and place, plus a gradient */
    uint8_t *boxes = malloc((size_t)NBOX * BOX * BOX * BOX);
    const uint8_t *bp[NBOX];
    HV_REQUIRE(boxes, "out of memory");
    for (int k = 0; k < NBOX; k++) {
        uint8_t *b = boxes + (size_t)k * BOX * BOX * BOX;
        bp[k] = b;
        for (int z = 0; z < BOX; z++)
            for (int y = 0; y < BOX; y++)
                for (int x = 0; x < BOX; x++) {
                    int dx = x - 8 * k, dy = y - 32, dz = z - 20 - 3 * k;
                    int v = dx * dx + dy * dy + dz * dz < 100 + 40 * k ? 60 + 24 * k : 0;
                    v += (k % 3) * x;
                    b[((size_t)z * BOX + y) * BOX + x] = (uint8_t)(v > 255 ? 255 : v);
                }
    }
    /* a few classification steps (grade = box % 4, so the boxes get
     * different grades and the running statistics move), then saved */
    hv_nn_backend *be = NULL;
    hv_model_senet3d_trainer *t = NULL;
    hv_model_senet3d_train_opts to = {1e-2, 1e-2, 0.1, {1, 1, 1, 1}};
    float *x = malloc(sizeof(float) * NB * VOX), lg[NB * 4];
    HV_REQUIRE(x && hv_nn_backend_create_cpu(&be) == HV_OK &&
                   hv_model_senet3d_trainer_create(ps, &cfg, be, NB, SIDE, SIDE, SIDE, &to, &t) ==
                       HV_OK,
               "trainer: %s", hv_error_detail());
    for (int step = 0; step < STEPS; step++) {
        const int at = (step * NB) % NBOX;
        float gr[NB];
        feed(bp, at, NBOX, x);
        for (int b = 0; b < NB; b++) gr[b] = (float)((at + b < NBOX ? at + b : at) % 4);
        HV_REQUIRE(hv_model_senet3d_cls_step(t, x, gr, NULL) == HV_OK, "step %d: %s", step,
                   hv_error_detail());
    }
    hv_model_senet3d_info info = {cfg, BOX, SHRINK, NB, 10, 5};
    HV_CHECK_OK(hv_model_senet3d_save(path, ps, &info));
    int got[NBOX], want[NBOX];
    hv_model_senet3d_grader *g = NULL;
    HV_CHECK_OK(hv_model_senet3d_grader_open(path, &g));
    if (g) {
        const hv_model_senet3d_info *in = hv_model_senet3d_grader_info(g);
        HV_CHECK(in->cfg.width == 2 && in->cfg.blocks[3] == 1 && in->cfg.proj_dim == 8 &&
                     in->box == BOX && in->shrink == SHRINK && in->batch == NB && in->rows == 10 &&
                     in->seed == 5,
                 "settings read back: width %d blocks[3] %d proj %d box %d shrink %d batch %d "
                 "rows %ld seed %u", in->cfg.width, in->cfg.blocks[3], in->cfg.proj_dim, in->box,
                 in->shrink, in->batch, in->rows, in->seed);
        HV_CHECK_OK(hv_model_senet3d_grade(g, bp, NBOX, got));
    }
    hv_model_senet3d_grader_free(g);
    /* the trainer on the same parameters, fed by this test */
    for (int at = 0; at < NBOX; at += NB) {
        feed(bp, at, NBOX, x);
        HV_REQUIRE(hv_model_senet3d_predict(t, x, lg, NULL) == HV_OK, "predict: %s",
                   hv_error_detail());
        for (int b = 0; b < NB && at + b < NBOX; b++) {
            int best = 0;
            for (int c = 1; c < 4; c++)
                if (lg[b * 4 + c] > lg[b * 4 + best]) best = c;
            want[at + b] = best;
        }
    }
    int same = 0, seen[4] = {0}, distinct = 0;
    for (int k = 0; k < NBOX; k++) {
        same += got[k] == want[k];
        distinct += !seen[want[k]]++;
    }
    HV_CHECK(same == NBOX, "the saved network grades %d of %d boxes as its parameters do", same,
             NBOX);
    HV_CHECK(distinct >= 2, "the boxes get %d distinct grade(s): the comparison needs 2",
             distinct);
    hv_model_senet3d_trainer_free(t);
    hv_nn_backend_free(be);

    /* refusals */
    snprintf(p2, sizeof p2, "%s/nosuch.h5", dir);
    refused(p2, HV_ERR_NOT_FOUND, "not found");
    snprintf(p2, sizeof p2, "%s/cls.h5", dir);
    HV_CHECK_OK(save_meta(p2, ps, "classifier", "1", "2"));
    refused(p2, HV_ERR_FORMAT, "'classifier' model file, not a senet3d");
    snprintf(p2, sizeof p2, "%s/newer.h5", dir);
    HV_CHECK_OK(save_meta(p2, ps, "senet3d", "3", "2"));
    refused(p2, HV_ERR_FORMAT, "format 3, newer than this build reads (2)");
    snprintf(p2, sizeof p2, "%s/width.h5", dir);
    HV_CHECK_OK(save_meta(p2, ps, "senet3d", "1", "3"));
    refused(p2, HV_ERR_FORMAT, "width 3");
    snprintf(p2, sizeof p2, "%s/same.h5", dir);
    HV_CHECK_OK(save_meta(p2, ps, "senet3d", "1", "2"));
    hv_model_senet3d_grader *g2 = NULL;
    HV_CHECK_OK(hv_model_senet3d_grader_open(p2, &g2)); /* the keys above are all it needs */
    hv_model_senet3d_grader_free(g2);
    snprintf(p2, sizeof p2, "%s/short.h5", dir);
    FILE *in = fopen(path, "rb"), *out = fopen(p2, "wb");
    HV_REQUIRE(in && out, "copy");
    char buf[1500];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    refused(p2, HV_ERR_FORMAT, "not an HDF5 file (truncated");

    /* the fold results */
    HV_CHECK(hv_model_senet3d_fnv1a(HV_MODEL_SENET3D_FNV_OFFSET, "", 0) ==
                     0xcbf29ce484222325ull &&
                 hv_model_senet3d_fnv1a(HV_MODEL_SENET3D_FNV_OFFSET, "a", 1) ==
                     0xaf63dc4c8601ec8cull &&
                 hv_model_senet3d_fnv1a(HV_MODEL_SENET3D_FNV_OFFSET, "foobar", 6) ==
                     0x85944171f73967e8ull,
             "FNV-1a 64 test vectors");
    const int fold_pred[6] = {0, 1, 2, 3, 1, 0};
    const char *xkv[] = {"folds", "2"};
    hv_model_senet3d_cv rec = {2, 3, fold_pred, xkv, 1};
    char p3[4200];
    snprintf(p3, sizeof p3, "%s/cv.h5", dir);
    HV_CHECK_OK(hv_model_senet3d_save_cv(p3, ps, &info, &rec));
    hv_nn_params *ps2 = NULL;
    hv_rng rng2;
    hv_rng_seed(&rng2, 99, 1);
    HV_REQUIRE(hv_nn_params_create(&ps2) == HV_OK &&
                   hv_model_senet3d_params(ps2, &cfg, &rng2) == HV_OK,
               "parameters: %s", hv_error_detail());
    int back[6] = {-1, -1, -1, -1, -1, -1};
    HV_CHECK_OK(hv_model_senet3d_load_cv(p3, ps2, 2, 3, back));
    HV_CHECK(!memcmp(back, fold_pred, sizeof back), "fold grades read back: %d %d %d %d %d %d",
             back[0], back[1], back[2], back[3], back[4], back[5]);
    size_t differ = 0, total = 0;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *a = hv_nn_params_at(ps, i), *b = hv_nn_params_find(ps2, hv_nn_param_name(a));
        const size_t k = (size_t)hv_nn_param_numel(a);
        total += k;
        if (!b || (size_t)hv_nn_param_numel(b) != k) {
            differ += k;
            continue;
        }
        differ += memcmp(hv_nn_param_data(a), hv_nn_param_data(b), k * sizeof(float)) != 0;
    }
    HV_CHECK(differ == 0 && total > 0, "%zu of %zu parameters differ after the load", differ,
             total);
    char mv[32] = "", fv[32] = "";
    hv_nn_checkpoint_meta(p3, "folds", mv, sizeof mv);
    hv_nn_checkpoint_meta(p3, "senet3d_format", fv, sizeof fv);
    HV_CHECK(!strcmp(mv, "2") && !strcmp(fv, "2"), "/meta folds '%s' (2), senet3d_format '%s' (2)",
             mv, fv);
    hv_model_senet3d_grader *g3 = NULL;
    HV_CHECK_OK(hv_model_senet3d_grader_open(p3, &g3));
    hv_model_senet3d_grader_free(g3);
    HV_CHECK(hv_model_senet3d_load_cv(p3, ps2, 3, 3, back) == HV_ERR_FORMAT &&
                 strstr(hv_error_detail(), "/cv/fold_pred is 2 x 3, want 3 folds x 3"),
             "another shape: %s", hv_error_detail());
    HV_CHECK(hv_model_senet3d_load_cv(path, ps2, 2, 3, back) == HV_ERR_FORMAT &&
                 strstr(hv_error_detail(), "no /cv/fold_pred"),
             "a file without fold results: %s", hv_error_detail());
    /* one byte of the first parameter's values changed in the file */
    FILE *fi = fopen(p3, "rb");
    HV_REQUIRE(fi, "open %s", p3);
    fseek(fi, 0, SEEK_END);
    long fsz = ftell(fi);
    fseek(fi, 0, SEEK_SET);
    unsigned char *img = malloc((size_t)fsz);
    HV_REQUIRE(img && fread(img, 1, (size_t)fsz, fi) == (size_t)fsz, "read %s", p3);
    fclose(fi);
    hv_nn_param *p0 = hv_nn_params_at(ps, 0);
    const size_t pat = (size_t)hv_nn_param_numel(p0) * sizeof(float) < 64
                           ? (size_t)hv_nn_param_numel(p0) * sizeof(float)
                           : 64;
    long hit = -1;
    for (long i = 0; hit < 0 && i + (long)pat <= fsz; i++)
        if (!memcmp(img + i, hv_nn_param_data(p0), pat)) hit = i;
    HV_REQUIRE(hit >= 0 && pat >= 8, "the first parameter's bytes in the file");
    img[hit + 5] ^= 0x40;
    snprintf(p2, sizeof p2, "%s/damaged.h5", dir);
    FILE *fo = fopen(p2, "wb");
    HV_REQUIRE(fo && fwrite(img, 1, (size_t)fsz, fo) == (size_t)fsz, "write %s", p2);
    fclose(fo);
    free(img);
    HV_CHECK(hv_model_senet3d_load_cv(p2, ps2, 2, 3, back) == HV_ERR_FORMAT &&
                 strstr(hv_error_detail(), "is damaged"),
             "one parameter byte changed: %s", hv_error_detail());
    const int bad_pred[6] = {0, 1, 2, 4, 1, 0};
    hv_model_senet3d_cv bad = {2, 3, bad_pred, xkv, 1};
    snprintf(p2, sizeof p2, "%s/bad.h5", dir);
    HV_CHECK(hv_model_senet3d_save_cv(p2, ps, &info, &bad) == HV_ERR_ARG && !fopen(p2, "rb"),
             "a grade 4 to save: %s", hv_error_detail());
    hv_nn_params_free(ps2);

    hv_nn_params_free(ps);
    free(u);
    free(o4);
    free(o2);
    free(boxes);
    free(x);
    return hv_test_done();
}
