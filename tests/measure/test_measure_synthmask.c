/*
 * test_measure_synthmask.c: `healthivert measure --synth-mask FILE` (a
 * pseudo-healthy label map made elsewhere) and `measure --synth gan`.
 *
 *  - a reference-style crop pair (tests/measure/fixtures/synth_mask, made by
 *    scripts/make_synth_mask_fixture.py with numpy): the reference's RHLV
 *    computed by hand in that script's docstring (all 0.32222, anterior
 *    0.50000, middle 0.33333, posterior 0.16667); the identical neighbour
 *    (--label 21) has RHLV 0;
 *  - a scanner-grid mask: a phantom case and its healthy render (the same
 *    seed with fracture_rate 0: the same anatomy without the fractures)
 *    give h_syn within 1 mm of the phantom's analytic healthy heights;
 *  - refusals, each with its message: crops of different dims, a crop in
 *    healthivert's own (64, 256, 256) layout, a folder, a map on another
 *    grid, --synth gan without --model, --synth with --synth-mask;
 *  - `measure --synth gan --model FILE` with a tiny random generator (argv[2]
 *    makes it) runs, writes the reference's files (--nifti) and its
 *    reference-mode RHLV equals the crop pair's read back from them; a
 *    missing model and one of another architecture are refused naming the
 *    file, before the case is read;
 *  - --device (where the generator runs): auto says its choice in one log
 *    line; cpu gives byte-identical CSV and NIfTI files to auto's when auto
 *    took the CPU; cuda without a usable GPU (or in a build without CUDA)
 *    exits 2 naming the reason before anything is written (the --csv and
 *    --nifti paths stay absent); a bad value, --device without --synth gan
 *    and with a crop pair are refused (exit 2);
 *  - --precision bf16 (where the CPU has avx512_bf16/AMX): RHLV within 0.5
 *    points of the fp32 run's; refused with the reason (exit 2, nothing
 *    written) when oneDNN's ISA is capped below bf16 (ONEDNN_MAX_CPU_ISA);
 *    a bad value and --precision without --synth gan refused.
 * argv[1] is the healthivert binary, argv[2] hv_make_gan_model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hv/io.h"
#include "hv/nn.h"
#include "hv/phantom.h"
#include "hv_test.h"

static const char *bin, *make_model;
static char tmp[1024];
static char cmd[16384], err[8192], out[16384];

static int slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return 0;
}

/* `healthivert measure ARGS`, stdout in out and stderr in err; exit status */
static int measure(const char *args)
{
    snprintf(cmd, sizeof cmd, "timeout 900 '%s' measure %s > '%s/stdout.txt' 2> '%s/stderr.txt'",
             bin, args, tmp, tmp);
    int st = system(cmd);
    char p[1200];
    snprintf(p, sizeof p, "%s/stderr.txt", tmp);
    slurp(p, err, sizeof err);
    snprintf(p, sizeof p, "%s/stdout.txt", tmp);
    slurp(p, out, sizeof out);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static const char *tp(const char *name)
{
    static char buf[8][1400];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* One CSV row of `label`: columns 3..15 as numbers (h_ori_ant .. h_syn_all:
 * v[0..2] h_ori ant/mid/post, v[3..5] h_syn, v[6..9] rhlv all/ant/mid/post,
 * v[10] grade, v[11] h_ori_all, v[12] h_syn_all). 0 when found. */
static int csv_row(const char *path, int label, double v[13])
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *tok = strtok_r(line, ",", &save);
        int col = 0, lab = -1;
        while (tok) {
            if (col == 1) lab = atoi(tok);
            if (col >= 3 && col <= 15) v[col - 3] = strcmp(tok, "nan") ? atof(tok) : NAN;
            tok = strtok_r(NULL, ",", &save);
            col++;
        }
        if (lab == label && col >= 16) {
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static void check_crop_pair(const char *fx)
{
    char a[4000];
    snprintf(a, sizeof a, "--synth-mask '%s/label_fake/fx_20.nii.gz' --synth-orig '%s/label/fx_20.nii.gz' --csv '%s'",
             fx, fx, tp("pair.csv"));
    HV_CHECK(measure(a) == 0, "crop pair runs: %s", err);
    double v[13];
    HV_REQUIRE_V(csv_row(tp("pair.csv"), 20, v) == 0, "crop pair: a CSV row for label 20");
    /* the hand computation of scripts/make_synth_mask_fixture.py */
    HV_CHECK(fabs(v[6] - 0.32222) < 6e-6 && fabs(v[7] - 0.5) < 6e-6 && fabs(v[8] - 0.33333) < 6e-6 &&
                 fabs(v[9] - 0.16667) < 6e-6,
             "crop pair RHLV all/ant/mid/post %.5f %.5f %.5f %.5f (by hand 0.32222 0.50000 0.33333 0.16667)",
             v[6], v[7], v[8], v[9]);
    HV_CHECK(v[0] == 15 && v[1] == 20 && v[2] == 25 && v[3] == 30 && v[4] == 30 && v[5] == 30,
             "crop pair heights %g %g %g / %g %g %g", v[0], v[1], v[2], v[3], v[4], v[5]);
    HV_CHECK(strstr(out, "case fx:") != NULL, "case id from the reference's name: %s", out);
    snprintf(a, sizeof a, "--synth-mask '%s/label_fake/fx_20.nii.gz' --synth-orig '%s/label/fx_20.nii.gz' --label 21 --csv '%s'",
             fx, fx, tp("pair21.csv"));
    HV_CHECK(measure(a) == 0, "crop pair --label 21: %s", err);
    HV_CHECK(csv_row(tp("pair21.csv"), 21, v) == 0 && fabs(v[6]) < 1e-5 && fabs(v[7]) < 1e-5,
             "the unchanged neighbour has RHLV 0 (%g %g)", v[6], v[7]);

    /* refusals */
    hv_volume *small = NULL, *ours = NULL;
    HV_REQUIRE_V(hv_vol_create(&small, (int64_t[3]){128, 256, 64}, HV_DTYPE_U8, NULL) == HV_OK &&
                     hv_vol_create(&ours, (int64_t[3]){64, 256, 256}, HV_DTYPE_U8, NULL) == HV_OK,
                 "volumes");
    ((uint8_t *)ours->data)[5] = 20;
    HV_REQUIRE_V(hv_io_nifti_write(tp("small_20.nii.gz"), small, NULL) == HV_OK &&
                     hv_io_nifti_write(tp("ours_20.nii.gz"), ours, NULL) == HV_OK,
                 "write");
    snprintf(a, sizeof a, "--synth-mask '%s' --synth-orig '%s/label/fx_20.nii.gz'", tp("small_20.nii.gz"), fx);
    HV_CHECK(measure(a) == 1 && strstr(err, "must have the same dims"), "dims differ: %s", err);
    snprintf(a, sizeof a, "--synth-mask '%s' --synth-orig '%s'", tp("ours_20.nii.gz"), tp("ours_20.nii.gz"));
    HV_CHECK(measure(a) == 1 && strstr(err, "not the reference's crop layout"), "our layout: %s", err);
    snprintf(a, sizeof a, "--synth-mask '%s' --synth-orig '%s/label/fx_20.nii.gz'", tmp, fx);
    HV_CHECK(measure(a) == 2 && strstr(err, "is a folder"), "a folder: %s", err);
    snprintf(a, sizeof a, "--synth-mask '%s/label_fake/fx_20.nii.gz' --synth-orig '%s/label/fx_20.nii.gz' --mask x",
             fx, fx);
    HV_CHECK(measure(a) == 2 && strstr(err, "no --mask"), "a crop pair with --mask: %s", err);
    hv_vol_free(small);
    hv_vol_free(ours);
}

static void check_scanner_grid(const char *fx, const char *ct, const char *msk, const char *hm,
                               const hv_phantom_case *pc)
{
    char a[4000];
    snprintf(a, sizeof a, "--mask '%s' --synth-mask '%s' --csv '%s'", msk, hm, tp("grid.csv"));
    HV_CHECK(measure(a) == 0, "scanner-grid --synth-mask runs: %s", err);
    HV_CHECK(strstr(out, "--synth-mask pseudo-healthy") != NULL, "says where h_syn comes from: %.200s", out);
    int n = 0;
    for (int k = 0; k < pc->n_vert; k++) {
        const hv_phantom_vert *t = &pc->vert[k];
        double v[13];
        if (t->truncated || csv_row(tp("grid.csv"), t->label, v) != 0) continue;
        n++;
        for (int r = 0; r < 3; r++)
            HV_CHECK(fabs(v[3 + r] - t->healthy_mm[r]) < 1.0,
                     "label %d region %d: h_syn %.3f, healthy truth %.3f", t->label, r, v[3 + r],
                     t->healthy_mm[r]);
    }
    HV_CHECK(n >= 2, "%d vertebrae compared", n);
    /* a crop given as a scanner-grid map */
    snprintf(a, sizeof a, "--mask '%s' --synth-mask '%s/label_fake/fx_20.nii.gz' --csv '%s'", msk, fx,
             tp("nogrid.csv"));
    HV_CHECK(measure(a) == 1 && strstr(err, "not on the case's grid") && strstr(err, "--synth-orig"),
             "another grid refused, the crop pair named: %s", err);
    HV_CHECK(!exists(tp("nogrid.csv")), "refused: no CSV written");
    snprintf(a, sizeof a, "--mask '%s' --ct '%s' --synth gan", msk, ct);
    HV_CHECK(measure(a) == 2 && strstr(err, "needs --model"), "gan without a model: %s", err);
    snprintf(a, sizeof a, "--mask '%s' --synth baseline --synth-mask '%s'", msk, hm);
    HV_CHECK(measure(a) == 2 && strstr(err, "cannot go with --synth"), "--synth and --synth-mask: %s", err);
    /* --seg-threshold: a number in (0, 1), and only with --synth gan */
    const char *bad_thr[3] = {"1", "0", "0.3x"};
    for (int k = 0; k < 3; k++) {
        snprintf(a, sizeof a, "--mask '%s' --ct '%s' --synth gan --model m.h5 --seg-threshold %s",
                 msk, ct, bad_thr[k]);
        char want[96];
        snprintf(want, sizeof want, "--seg-threshold must be a number in (0, 1), not '%s'", bad_thr[k]);
        HV_CHECK(measure(a) == 2 && strstr(err, want), "--seg-threshold %s refused: %s", bad_thr[k], err);
    }
    snprintf(a, sizeof a, "--mask '%s' --seg-threshold 0.3", msk);
    HV_CHECK(measure(a) == 2 && strstr(err, "--precision and --seg-threshold go with --synth gan"),
             "--seg-threshold without --synth gan refused: %s", err);
}

/* --device: cpu against the auto run of check_gan (ganref.csv, nifti/),
 * cuda refused here before anything is written, bad uses refused */
static void check_device(const char *ct, const char *msk, int gpu)
{
    char a[4000];
#define DEVICE_RUN                                                                                  \
    "--mask '%s' --ct '%s' --synth gan --target-only --model '%s' --rhlv reference --nifti '%s' "  \
    "--csv '%s' --device %s"
    snprintf(a, sizeof a, DEVICE_RUN, msk, ct, tp("tiny.h5"), tp("nifti_cpu"), tp("gancpu.csv"), "cpu");
    HV_CHECK(measure(a) == 0 && strstr(err, "compute: cpu (--device cpu)"),
             "--device cpu runs and says so: %s", err);
    if (!gpu) {
        HV_CHECK(hv_test_same_file(tp("gancpu.csv"), tp("ganref.csv")),
                 "--device cpu: the CSV of --device auto (which took the CPU), byte for byte");
        int n = 0;
        for (int label = 1; label <= 28; label++) {
            char x[1400], y[1400];
            snprintf(x, sizeof x, "%s/CT_fake/ph0000_%d.nii.gz", tp("nifti"), label);
            snprintf(y, sizeof y, "%s/CT_fake/ph0000_%d.nii.gz", tp("nifti_cpu"), label);
            if (!exists(x)) continue;
            n++;
            HV_CHECK(hv_test_same_file(x, y), "--device cpu: %s as auto's, byte for byte", y);
        }
        HV_CHECK(n >= 1, "%d CT_fake files compared", n);
    }
    snprintf(a, sizeof a, DEVICE_RUN, msk, ct, tp("tiny.h5"), tp("nifti_cuda"), tp("gancuda.csv"), "cuda");
    int rc = measure(a);
    if (gpu) {
        HV_CHECK(rc == 0 && exists(tp("gancuda.csv")), "--device cuda with a GPU runs: %s", err);
    } else {
        HV_CHECK(rc == 2 && strstr(err, "--device cuda: ") &&
                     strstr(err, "; use --device auto or cpu to run on the CPU") &&
                     (strstr(err, "no usable CUDA device") || strstr(err, "has no CUDA") ||
                      strstr(err, "cannot be used")),
                 "--device cuda without a GPU: exit 2 (%d) and why: %s", rc, err);
        HV_CHECK(!exists(tp("nifti_cuda")) && !exists(tp("gancuda.csv")),
                 "--device cuda refused: neither --nifti nor --csv written");
    }
    snprintf(a, sizeof a, DEVICE_RUN, msk, ct, tp("tiny.h5"), tp("nifti_bad"), tp("ganbad.csv"), "gpu");
    HV_CHECK(measure(a) == 2 && strstr(err, "--device must be auto, cpu or cuda, not 'gpu'") &&
                 !exists(tp("nifti_bad")) && !exists(tp("ganbad.csv")),
             "--device gpu refused: %s", err);
    snprintf(a, sizeof a, "--mask '%s' --device cpu", msk);
    HV_CHECK(measure(a) == 2 && strstr(err, "--device, --precision and --seg-threshold go with --synth gan"),
             "--device without --synth gan refused: %s", err);
    const char *fx = HV_TEST_SOURCE_DIR "/measure/fixtures/synth_mask";
    snprintf(a, sizeof a, "--synth-mask '%s/label_fake/fx_20.nii.gz' --synth-orig "
             "'%s/label/fx_20.nii.gz' --device cuda", fx, fx);
    HV_CHECK(measure(a) == 2 && strstr(err, "--device, --precision and --seg-threshold go with --synth gan"),
             "--device with a crop pair refused: %s", err);
#undef DEVICE_RUN
}

/* --precision: bf16 against the --device cpu fp32 run of check_device
 * (gancpu.csv) where this CPU has avx512_bf16/AMX; refused with the reason
 * (exit 2, nothing written) where oneDNN's ISA is capped below it
 * (ONEDNN_MAX_CPU_ISA, as on a CPU without it); bad uses refused. */
static void check_precision(const char *ct, const char *msk)
{
    char a[4000];
#define PREC_RUN                                                                                   \
    "--mask '%s' --ct '%s' --synth gan --target-only --model '%s' --rhlv reference --csv '%s' "    \
    "--device cpu --precision %s"
    hv_nn_backend *be = NULL;
    int have = hv_nn_backend_create_cpu(&be) == HV_OK && hv_nn_backend_set_precision(be, HV_NN_BF16) == HV_OK;
    hv_nn_backend_free(be);
    if (have) {
        snprintf(a, sizeof a, PREC_RUN, msk, ct, tp("tiny.h5"), tp("ganbf16.csv"), "bf16");
        HV_CHECK(measure(a) == 0, "--precision bf16 runs: %s", err);
        int rows = 0;
        double worst = 0;
        for (int label = 1; label <= 28; label++) {
            double v[13], w[13];
            if (csv_row(tp("gancpu.csv"), label, v)) continue;
            HV_CHECK(csv_row(tp("ganbf16.csv"), label, w) == 0, "bf16: a row for label %d", label);
            rows++;
            for (int k = 6; k <= 9; k++) {
                double d = fabs(w[k] - v[k]);
                if (isfinite(v[k]) && !(d <= worst)) worst = isfinite(w[k]) ? d : INFINITY;
            }
        }
        printf("  --precision bf16: %d vertebrae, largest RHLV difference to fp32 %.5f\n", rows, worst);
        HV_CHECK(rows >= 1 && worst <= 0.005, "bf16: RHLV within 0.5 points of fp32 (%d rows, worst %.5f)",
                 rows, worst);
    } else {
        printf("  --precision bf16: this CPU has no bf16 (the run is only checked refused)\n");
    }
    /* refused where oneDNN may not use bf16: exit 2 before anything is written */
    setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI", 1);
    snprintf(a, sizeof a, PREC_RUN, msk, ct, tp("tiny.h5"), tp("ganbf16no.csv"), "bf16");
    int rc = measure(a);
    unsetenv("ONEDNN_MAX_CPU_ISA");
    HV_CHECK(rc == 2 && strstr(err, "--precision bf16: ") && strstr(err, "avx512_bf16"),
             "--precision bf16 without avx512_bf16: exit 2 (%d) and why: %s", rc, err);
    HV_CHECK(!exists(tp("ganbf16no.csv")), "--precision bf16 refused: no CSV written");
    snprintf(a, sizeof a, PREC_RUN, msk, ct, tp("tiny.h5"), tp("ganfp16.csv"), "fp16");
    HV_CHECK(measure(a) == 2 && strstr(err, "--precision must be fp32 or bf16, not 'fp16'") &&
                 !exists(tp("ganfp16.csv")),
             "--precision fp16 refused: %s", err);
    snprintf(a, sizeof a, "--mask '%s' --precision bf16", msk);
    HV_CHECK(measure(a) == 2 && strstr(err, "--precision and --seg-threshold go with --synth gan"),
             "--precision without --synth gan refused: %s", err);
#undef PREC_RUN
}

static void check_gan(const char *ct, const char *msk)
{
    char a[4000];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --seed 4 --seg-bias 8 && '%s' '%s' --broken", make_model, tp("tiny.h5"),
             make_model, tp("broken.h5"));
    HV_REQUIRE_V(system(cmd) == 0, "models");
    /* one run (the generator is the cost; robust mode is test_pipe_gan's) */
    snprintf(a, sizeof a,
             "--mask '%s' --ct '%s' --synth gan --target-only --model '%s' --rhlv reference "
             "--nifti '%s' --csv '%s' --device auto",
             msk, ct, tp("tiny.h5"), tp("nifti"), tp("ganref.csv"));
    HV_CHECK(measure(a) == 0, "measure --synth gan --rhlv reference runs: %s", err);
    HV_CHECK(strstr(out, "gan pseudo-healthy") != NULL, "says gan: %.200s", out);
    /* --device auto says where it ran; on the CPU it names why not CUDA */
    int gpu = strstr(err, "compute: cuda (--device auto): gpu ") != NULL;
    HV_CHECK(gpu || strstr(err, "compute: cpu (--device auto: ") != NULL,
             "--device auto says its choice: %s", err);
    check_device(ct, msk, gpu);
    check_precision(ct, msk);
    /* the files --nifti wrote are a crop pair: reading them back gives the
     * reference-mode numbers of the same vertebra */
    int n = 0;
    for (int label = 1; label <= 28; label++) {
        char fake[1400], orig[1400];
        snprintf(fake, sizeof fake, "%s/label_fake/ph0000_%d.nii.gz", tp("nifti"), label);
        snprintf(orig, sizeof orig, "%s/label/ph0000_%d.nii.gz", tp("nifti"), label);
        if (!exists(fake)) continue;
        HV_CHECK(exists(orig), "%s beside %s", orig, fake);
        char ctf[1400];
        snprintf(ctf, sizeof ctf, "%s/CT_fake/ph0000_%d.nii.gz", tp("nifti"), label);
        HV_CHECK(exists(ctf), "%s written", ctf);
        snprintf(a, sizeof a, "--synth-mask '%s' --synth-orig '%s' --csv '%s'", fake, orig, tp("back.csv"));
        HV_CHECK(measure(a) == 0, "crop pair of the gan's files: %s", err);
        double v[13], w[13];
        if (csv_row(tp("back.csv"), label, v) == 0 && csv_row(tp("ganref.csv"), label, w) == 0) {
            n++;
            for (int r = 6; r <= 9; r++)
                HV_CHECK(fabs(v[r] - w[r]) < 1e-5, "label %d RHLV column %d: files %.5f, run %.5f",
                         label, r, v[r], w[r]);
        }
    }
    HV_CHECK(n >= 1, "%d synthesized vertebrae read back from the NIfTI files", n);
    snprintf(a, sizeof a, "--mask '%s' --ct '%s' --synth gan --model '%s'", msk, ct, tp("nosuch.h5"));
    HV_CHECK(measure(a) == 1 && strstr(err, "nosuch.h5"), "missing model named: %s", err);
    snprintf(a, sizeof a, "--mask '%s' --ct '%s' --synth gan --model '%s'", msk, ct, tp("broken.h5"));
    HV_CHECK(measure(a) == 1 && strstr(err, "broken.h5") && strstr(err, "coarse_generator.conv1"),
             "a model of another architecture refused, the parameter named: %s", err);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_measure_synthmask HEALTHIVERT HV_MAKE_GAN_MODEL\n");
        return 2;
    }
    bin = argv[1];
    make_model = argv[2];
    snprintf(tmp, sizeof tmp, "%s/tmp-synthmask", HV_TEST_BINARY_DIR);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    HV_REQUIRE(system(cmd) == 0, "scratch folder");
    const char *fx = HV_TEST_SOURCE_DIR "/measure/fixtures/synth_mask";
    check_crop_pair(fx);

    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 19; /* T12 .. L2 */
    po.last_label = 21;
    po.spacing[0] = po.spacing[1] = po.spacing[2] = 2.0;
    po.fracture_rate = 1.0;
    po.scoliosis_rate = 0;
    po.seed = 5;
    HV_REQUIRE(hv_phantom_cohort_write(&po, tp("fractured"), 1, NULL, NULL) == HV_OK, "phantom");
    hv_phantom_opts ph = po;
    ph.fracture_rate = 0;
    HV_REQUIRE(hv_phantom_cohort_write(&ph, tp("healthy"), 1, NULL, NULL) == HV_OK, "healthy phantom");
    hv_phantom_case *pc = NULL;
    HV_REQUIRE(hv_phantom_case_make(&po, 0, &pc) == HV_OK, "phantom model");
    char ct[1400], msk[1400], hm[1400];
    snprintf(ct, sizeof ct, "%s/raw/%s/%s.nii.gz", tp("fractured"), pc->id, pc->id);
    snprintf(msk, sizeof msk, "%s/raw/%s/%s_msk.nii.gz", tp("fractured"), pc->id, pc->id);
    snprintf(hm, sizeof hm, "%s/raw/%s/%s_msk.nii.gz", tp("healthy"), pc->id, pc->id);
    check_scanner_grid(fx, ct, msk, hm, pc);
    check_gan(ct, msk);
    hv_phantom_case_free(pc);
    return hv_test_done();
}
