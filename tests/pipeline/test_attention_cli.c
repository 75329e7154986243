/*
 * test_attention_cli.c: `healthivert attention` end to end on one phantom
 * case (T12-L2 at 2 mm) with a tiny random classifier (hv_make_cls_model,
 * width 2). What is checked comes from outside the command's own code:
 *
 *  - every file's presence, the CSV's rows, the PNG's size;
 *  - each <case>_<label>_cam.nii.gz against the crop `healthivert
 *    straighten` writes for the same case (crops/<case>_<label>_label.nii.gz,
 *    the crop layout with its affine): dims 256 x 256 x 64, and the world
 *    position of corner voxels equal through spec 2.5's layout (reference
 *    (row r, AP c, LR s) = crop (i s, j 255 - c, k 255 - r));
 *  - values in [0, 1], not all 0, exactly 0 on LR slices outside 17..46
 *    (spec 7);
 *  - the CSV's cam_mass_body recomputed from the two files (mass on the 30
 *    slices inside the target's label / all of it) and cam_max_slice the
 *    LR slice of the file's largest value; p_fracture in [0, 1];
 *  - --label L1 writes only that vertebra; --label of a level the mask lacks
 *    fails naming it and writes nothing;
 *  - a missing model, a GAN model given as the classifier and a file that
 *    is no model fail with a message naming --model and write nothing;
 *  - --help answers (exit 0, names the files);
 *  - --device: the default (auto) says its choice in one log line; cpu
 *    writes the same CSV bytes and the same map values as auto when auto
 *    took the CPU; cuda without a usable GPU (or in a build without CUDA)
 *    exits 2 naming the reason and the output folder is never made; a bad
 *    value is refused (exit 2), nothing written.
 * argv[1] healthivert, argv[2] hv_make_cls_model, argv[3] hv_make_gan_model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/io.h"
#include "hv_test.h"

static char cmd[65536];

/* 1 when two NIfTI maps have the same dims, affine and float values */
static int same_values(const char *a, const char *b)
{
    hv_volume *x = NULL, *y = NULL;
    int same = hv_io_nifti_read(a, HV_DTYPE_F32, NULL, &x, NULL) == HV_OK &&
               hv_io_nifti_read(b, HV_DTYPE_F32, NULL, &y, NULL) == HV_OK;
    for (int d = 0; same && d < 3; d++) same = x->dim[d] == y->dim[d];
    for (int r = 0; same && r < 3; r++)
        for (int c = 0; c < 4; c++) same &= x->affine[r][c] == y->affine[r][c];
    if (same) {
        size_t n = (size_t)(x->dim[0] * x->dim[1] * x->dim[2]);
        same = memcmp(x->data, y->data, n * sizeof(float)) == 0;
    }
    hv_vol_free(x);
    hv_vol_free(y);
    return same;
}

static void world(const hv_volume *v, double i, double j, double k, double *w)
{
    for (int r = 0; r < 3; r++)
        w[r] = v->affine[r][0] * i + v->affine[r][1] * j + v->affine[r][2] * k + v->affine[r][3];
}

/* One vertebra's map against straighten's label crop; the CSV row's
 * numbers against what the files give. */
static void check_map(const char *out, const char *crops, int label, double p, double mass,
                      int max_slice)
{
    char path[8192];
    hv_volume *cam = NULL, *lab = NULL;
    snprintf(path, sizeof path, "%s/ph0000_%d_cam.nii.gz", out, label);
    HV_REQUIRE_V(hv_io_nifti_read(path, HV_DTYPE_F32, NULL, &cam, NULL) == HV_OK, "read %s: %s",
                 path, hv_error_detail());
    snprintf(path, sizeof path, "%s/ph0000_%d_label.nii.gz", crops, label);
    HV_REQUIRE_V(hv_io_nifti_read(path, HV_DTYPE_I16, NULL, &lab, NULL) == HV_OK, "read %s: %s",
                 path, hv_error_detail());
    HV_CHECK(cam->dim[0] == 256 && cam->dim[1] == 256 && cam->dim[2] == 64,
             "label %d: map dims %lld x %lld x %lld (256 rows x 256 AP x 64 LR)", label,
             (long long)cam->dim[0], (long long)cam->dim[1], (long long)cam->dim[2]);
    HV_REQUIRE_V(lab->dim[0] == 64 && lab->dim[1] == 256 && lab->dim[2] == 256, "crop dims");
    /* world positions of corners through the layout */
    const int64_t cs[4][3] = {{0, 0, 0}, {255, 0, 63}, {0, 255, 17}, {128, 100, 46}};
    double worst = 0;
    for (int q = 0; q < 4; q++) {
        double a[3], b[3];
        int64_t r = cs[q][0], c = cs[q][1], s = cs[q][2];
        world(cam, (double)r, (double)c, (double)s, a);
        world(lab, (double)s, (double)(255 - c), (double)(255 - r), b);
        for (int d = 0; d < 3; d++) worst = fmax(worst, fabs(a[d] - b[d]));
    }
    HV_CHECK(worst < 1e-3, "label %d: the map's voxels lie where the crop's do (%.2g mm)", label,
             worst);
    /* values, zero slices, mass, maximum */
    double in = 0, all = 0, best = -1;
    int64_t best_s = -1;
    size_t out_range = 0, off_slices = 0, nonzero = 0;
    const float *f = cam->data;
    for (int64_t s = 0; s < 64; s++)
        for (int64_t c = 0; c < 256; c++)
            for (int64_t r = 0; r < 256; r++) {
                double v = f[r + 256 * (c + 256 * s)];
                if (!(v >= 0 && v <= 1)) out_range++;
                if (v != 0) nonzero++;
                if ((s < 17 || s > 46) && v != 0) off_slices++;
                if (v > best) best = v, best_s = s;
                if (s < 17 || s > 46) continue;
                all += v;
                if (lrint(hv_vol_get(lab, hv_vol_idx(lab, s, 255 - c, 255 - r))) == label) in += v;
            }
    HV_CHECK(out_range == 0, "label %d: %zu values outside [0, 1]", label, out_range);
    HV_CHECK(nonzero > 1000, "label %d: %zu non-zero values", label, nonzero);
    HV_CHECK(off_slices == 0, "label %d: %zu non-zero values off slices 17..46", label,
             off_slices);
    HV_CHECK(p >= 0 && p <= 1, "label %d: p_fracture %g", label, p);
    HV_CHECK(all > 0 && fabs(mass - in / all) < 1e-5,
             "label %d: cam_mass_body %.6f, from the files %.6f", label, mass, in / all);
    /* ties are possible in a resized map: the CSV's slice must hold the max */
    HV_CHECK(max_slice >= 17 && max_slice <= 46, "label %d: cam_max_slice %d", label, max_slice);
    double at = -1;
    for (int64_t c = 0; c < 256; c++)
        for (int64_t r = 0; r < 256; r++) at = fmax(at, f[r + 256 * (c + 256 * max_slice)]);
    HV_CHECK(at == best, "label %d: the maximum %g is on slice %d (file: %g on slice %lld)", label,
             at, max_slice, best, (long long)best_s);
    hv_vol_free(cam);
    hv_vol_free(lab);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: test_attention_cli HEALTHIVERT MAKE_CLS MAKE_GAN\n");
        return 2;
    }
    const char *hv = argv[1], *mkcls = argv[2], *mkgan = argv[3];
    char dir[4200], ct[4400], mask[4400], model[4400], out[4400], crops[4400], path[8800];
    snprintf(dir, sizeof dir, "%s", hv_test_tmpdir("attention_cli"));
    snprintf(ct, sizeof ct, "%s/ph/raw/ph0000/ph0000.nii.gz", dir);
    snprintf(mask, sizeof mask, "%s/ph/raw/ph0000/ph0000_msk.nii.gz", dir);
    snprintf(model, sizeof model, "%s/cls.h5", dir);
    snprintf(crops, sizeof crops, "%s/straight/crops", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' phantom --out '%s/ph' --cases 1 --seed 5 --spacing 2 --range T12-L2 "
             "--fracture-rate 0.5 >/dev/null 2>&1 && '%s' '%s' --width 2 --seed 3 && "
             "'%s' '%s/gan.h5' --cnum 2 && "
             "'%s' straighten --ct '%s' --mask '%s' --out '%s/straight' >/dev/null 2>&1",
             hv, dir, mkcls, model, mkgan, dir, hv, ct, mask, dir);
    HV_REQUIRE(hv_test_system(cmd) == 0, "phantom, models and straighten: %s", cmd);

    /* --help */
    snprintf(cmd, sizeof cmd, "'%s' attention --help > '%s/help.txt' 2>&1", hv, dir);
    snprintf(path, sizeof path, "%s/help.txt", dir);
    HV_CHECK(hv_test_system(cmd) == 0 && hv_test_file_has(path, "_cam.nii.gz") &&
                 hv_test_file_has(path, "--label") && hv_test_file_has(path, "17..46"),
             "--help answers");

    /* the whole case */
    snprintf(out, sizeof out, "%s/all", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' > '%s.log' 2>&1", hv,
             ct, mask, model, out, out);
    HV_REQUIRE(hv_test_system(cmd) == 0, "attention on ph0000: see %s.log", out);
    snprintf(path, sizeof path, "%s/ph0000_attention.csv", out);
    FILE *f = fopen(path, "r");
    HV_REQUIRE(f != NULL, "%s", path);
    char line[512];
    HV_CHECK(fgets(line, sizeof line, f) &&
                 !strcmp(line, "label,level,p_fracture,cam_mass_body,cam_max_slice,nonfinite\n"),
             "CSV header: %s", line);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int label = 0, slice = -2, nf = -1;
        char level[16];
        double p = NAN, mass = NAN;
        int n = sscanf(line, "%d,%15[^,],%lf,%lf,%d,%d", &label, level, &p, &mass, &slice, &nf);
        HV_CHECK(n == 6 && nf == 0, "CSV row: %s", line);
        if (n != 6) continue;
        rows++;
        check_map(out, crops, label, p, mass, slice);
        snprintf(path, sizeof path, "%s/ph0000_%d_cam.png", out, label);
        HV_CHECK(!hv_test_absent(path), "overlay %s", path);
    }
    fclose(f);
    HV_CHECK(rows == 3, "three vertebrae (T12, L1, L2) in the CSV: %d", rows);

    /* --device: the run above was auto (the default) */
    snprintf(path, sizeof path, "%s/all.log", dir);
    int gpu = hv_test_file_has(path, "compute: cuda (--device auto): gpu ");
    HV_CHECK(gpu || hv_test_file_has(path, "compute: cpu (--device auto: "),
             "the default --device auto says its choice (see %s)", path);
    snprintf(out, sizeof out, "%s/cpu", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' --device cpu > "
             "'%s.log' 2>&1",
             hv, ct, mask, model, out, out);
    snprintf(path, sizeof path, "%s.log", out);
    HV_CHECK(hv_test_system(cmd) == 0 && hv_test_file_has(path, "compute: cpu (--device cpu)"),
             "--device cpu runs and says so: see %s", path);
    if (!gpu) {
        char a[8800], b[8800];
        snprintf(a, sizeof a, "%s/all/ph0000_attention.csv", dir);
        snprintf(b, sizeof b, "%s/ph0000_attention.csv", out);
        HV_CHECK(hv_test_same_file(a, b), "--device cpu: the CSV of auto (which took the CPU)");
        for (int label = 19; label <= 21; label++) {
            snprintf(a, sizeof a, "%s/all/ph0000_%d_cam.nii.gz", dir, label);
            snprintf(b, sizeof b, "%s/ph0000_%d_cam.nii.gz", out, label);
            HV_CHECK(same_values(a, b), "--device cpu: map %d equals auto's", label);
        }
    }
    snprintf(out, sizeof out, "%s/cuda", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' --device cuda > "
             "'%s.log' 2>&1",
             hv, ct, mask, model, out, out);
    int crc = hv_test_system(cmd);
    snprintf(path, sizeof path, "%s.log", out);
    if (gpu) {
        HV_CHECK(crc == 0, "--device cuda with a GPU runs: see %s", path);
    } else {
        HV_CHECK(crc == 2 && hv_test_file_has(path, "--device cuda: ") &&
                     hv_test_file_has(path, "; use --device auto or cpu to run on the CPU") &&
                     (hv_test_file_has(path, "no usable CUDA device") ||
                      hv_test_file_has(path, "has no CUDA") ||
                      hv_test_file_has(path, "cannot be used")),
                 "--device cuda without a GPU: exit 2 (%d), says why: see %s", crc, path);
        HV_CHECK(hv_test_absent(out), "--device cuda refused: %s never made", out);
    }
    snprintf(out, sizeof out, "%s/badev", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' --device gpu > "
             "'%s.log' 2>&1",
             hv, ct, mask, model, out, out);
    snprintf(path, sizeof path, "%s.log", out);
    HV_CHECK(hv_test_system(cmd) == 2 &&
                 hv_test_file_has(path, "--device must be auto, cpu or cuda, not 'gpu'") &&
                 hv_test_absent(out),
             "--device gpu refused, nothing written: see %s", path);

    /* --label L1 only; a level the mask lacks */
    snprintf(out, sizeof out, "%s/l1", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' --label L1 "
             "--slice max > '%s.log' 2>&1",
             hv, ct, mask, model, out, out);
    HV_CHECK(hv_test_system(cmd) == 0, "--label L1: see %s.log", out);
    snprintf(path, sizeof path, "%s/ph0000_20_cam.nii.gz", out);
    HV_CHECK(!hv_test_absent(path), "--label L1: its map");
    snprintf(path, sizeof path, "%s/ph0000_19_cam.nii.gz", out);
    HV_CHECK(hv_test_absent(path), "--label L1: no T12 map");
    snprintf(out, sizeof out, "%s/t5", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' attention --ct '%s' --mask '%s' --model '%s' --out '%s' --label T5 > "
             "'%s.log' 2>&1",
             hv, ct, mask, model, out, out);
    snprintf(path, sizeof path, "%s.log", out);
    HV_CHECK(hv_test_system(cmd) == 1 && hv_test_file_has(path, "--label 12 (T5)") &&
                 hv_test_absent(out),
             "--label T5 (not in the mask): exit 1, named, nothing written");

    /* bad models: nothing written, the message names --model */
    const char *bad[3] = {"nosuch.h5", "gan.h5", "ph/raw/ph0000/ph0000.nii.gz"};
    for (int b = 0; b < 3; b++) {
        snprintf(out, sizeof out, "%s/bad%d", dir, b);
        snprintf(cmd, sizeof cmd,
                 "'%s' attention --ct '%s' --mask '%s' --model '%s/%s' --out '%s' > '%s.log' "
                 "2>&1",
                 hv, ct, mask, dir, bad[b], out, out);
        int rc = hv_test_system(cmd);
        snprintf(path, sizeof path, "%s.log", out);
        HV_CHECK(rc == 1 && hv_test_file_has(path, "--model") && hv_test_absent(out),
                 "model %s: exit %d, message names --model, nothing written", bad[b], rc);
    }
    return hv_test_done();
}
