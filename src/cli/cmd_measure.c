/*
 * cmd_measure.c: `healthivert measure`, heights, RHLV and a Genant grade for
 * every vertebra of one label map, from the mask alone.
 *
 * It reads the mask in its own orientation and spacing (the robust method
 * works in world millimetres, so nothing is resampled), measures every
 * vertebra, predicts pseudo-healthy heights with the baseline estimator,
 * grades with the Genant rule or a saved SVM, prints a table, and optionally
 * writes the CSV and the height-loss figures. `--rhlv reference` replaces
 * the heights and RHLV by the reference's column counts on straightened 1 mm
 * crops (hv_measure_reference_case), for comparison with published numbers.
 *
 * The pseudo-healthy vertebra can also come from the GAN (`--synth gan
 * --model FILE`: the pipeline's `gan` method, which needs the CT for its
 * crops) or from a label map made elsewhere (`--synth-mask FILE`): on the
 * case's grid it is measured with the original's rays (the pipeline's `mask`
 * method); a reference label_fake crop with its original label crop
 * (`--synth-orig`) goes to the reference's column counting directly, since
 * a crop alone does not say where it lies in the scan. The generator runs
 * where --device says (hv/compute.h: auto, cpu or cuda, as compute.device
 * of `run`), chosen before anything is read or written, in the precision
 * --precision says (hv_nn_backend_set_precision; as synthesis.precision).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "hv/compute.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/measure.h"
#include "hv/model.h"
#include "hv/nn.h"
#include "hv/pipeline.h"

static void measure_usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert measure --mask MASK.nii[.gz] [--ct CT.nii[.gz]]\n"
            "                           [--centroids JSON] [--synth baseline|gan|aotgan]\n"
            "                           [--model FILE [--model-coronal FILE] [--nifti DIR]\n"
            "                            [--target-only] [--device auto|cpu|cuda]\n"
            "                            [--precision fp32|bf16] [--seg-threshold T]]\n"
            "                           [--synth-mask FILE]\n"
            "                           [--rhlv robust|reference]\n"
            "                           [--grader genant|svm:MODEL|senet3d:MODEL]\n"
            "                           [--csv FILE [--append]] [--png DIR] [--case ID]\n"
            "                           [--compat totalseg] [--map-step MM] [--synth-mask-out DIR]\n"
            "       healthivert measure --synth-mask FAKE_CROP --synth-orig LABEL_CROP\n"
            "                           [--label N] [--case ID] [--csv FILE [--append]]\n"
            "\n"
            "Measure every labelled vertebra (VerSe labels: 8 = T1 ... 24 = L5) of a label\n"
            "map, in any orientation and voxel spacing:\n"
            "  - original heights (mm) along each vertebra's local spine axis at the\n"
            "    anterior, middle and posterior thirds of its body (1/6, 1/2, 5/6 of the\n"
            "    depth), sub-voxel, pooled over parasagittal rays (docs/measure.md);\n"
            "  - pseudo-healthy heights from the nearest undeformed neighbours above and\n"
            "    below, scaled by level size priors (the baseline; no model needed);\n"
            "  - RHLV = (healthy - original) / healthy for all/anterior/middle/posterior;\n"
            "  - a Genant grade: the rule on the largest of anterior/middle/posterior RHLV\n"
            "    (< 20 %% -> 0, 20-25 %% -> 1, 25-40 %% -> 2, >= 40 %% -> 3), an SVM\n"
            "    saved by `healthivert svm`, or the 3-D SupCon-SENet a run saved.\n"
            "A vertebra that cannot be measured is flagged (truncated: cut by the field\n"
            "of view; small: a sliver; empty_region: a region had no valid ray; deformed:\n"
            "not used as a reference; no_reference: healthy heights from the level prior\n"
            "only) and its unknown values are 'nan', never 0. Truncated or unmeasurable\n"
            "vertebrae get grade -1 (not graded).\n"
            "\n"
            "options:\n"
            "  --mask FILE        label map (required); whole vertebrae or bodies only\n"
            "  --ct FILE          CT on the mask's grid (same dimensions and affine,\n"
            "                     checked): adds the mean body value (mean_hu)\n"
            "  --centroids JSON   VerSe centroid file (voxel coordinates of the mask's\n"
            "                     grid) used for the spine axis instead of the mask's own\n"
            "  --synth baseline   pseudo-healthy estimate: baseline (neighbour heights, the\n"
            "                     default) or gan (the generator of --model; needs --ct,\n"
            "                     on the mask's grid: the crops are cut from it). A\n"
            "                     vertebra the GAN fails on keeps the baseline's values,\n"
            "                     flagged synth_fallback; aotgan: the same with an AOT-GAN\n"
            "                     generator (train.generator = aotgan; issue 15)\n"
            "  --model FILE       --synth gan: the sagittal generator (model file)\n"
            "  --model-coronal FILE  --synth gan: the coronal generator (optional)\n"
            "  --device D         --synth gan: where the generator runs: auto (default: a\n"
            "                     CUDA GPU when the build has CUDA and one is usable,\n"
            "                     else the CPU; one log line says which), cpu, or cuda\n"
            "                     (exit 2 before anything is written when no GPU is\n"
            "                     usable); as compute.device of `healthivert run`\n"
            "  --precision P      --synth gan: the generator's convolutions in fp32\n"
            "                     (default) or bf16: 1.2-2x faster on a CPU with\n"
            "                     avx512_bf16 or AMX, RHLV within ~1.6 points of fp32; exit 2\n"
            "                     before anything is read elsewhere (no such CPU, or the\n"
            "                     generator on CUDA); as synthesis.precision of `run`\n"
            "  --seg-threshold T  --synth gan: the synthesized vertebra is where the fine\n"
            "                     segmentation's probability exceeds T, in (0, 1) (default\n"
            "                     0.5, the reference's); as synthesis.seg_threshold of\n"
            "                     `healthivert run`, which says how to choose it\n"
            "  --target-only      --synth gan: synthesize the target alone, without the\n"
            "                     neighbour steps of spec 8 (about 3x faster)\n"
            "  --nifti DIR        --synth gan: DIR/CT_fake/CASE_LABEL.nii.gz and\n"
            "                     DIR/label_fake/CASE_LABEL.nii.gz as the reference writes\n"
            "                     them (float64, 256 rows x 256 AP x 64 LR, zeros off the\n"
            "                     synthesized slices) and DIR/label/CASE_LABEL.nii.gz, the\n"
            "                     original label crop in that layout (--synth-orig reads it)\n"
            "  --synth-mask FILE  a pseudo-healthy label map made elsewhere, measured with\n"
            "                     our RHLV code. Two layouts are accepted:\n"
            "                     - a scanner-grid mask on the --mask's grid (same dims and\n"
            "                       affine, checked): every vertebra of --mask is measured\n"
            "                       in both with the original's rays (robust RHLV only);\n"
            "                     - a reference label_fake crop of one vertebra (256 rows\n"
            "                       cranial first x 256 AP anterior first x 64 LR, as the\n"
            "                       reference and --nifti write it) with its original label\n"
            "                       crop given by --synth-orig (same dims): the reference's\n"
            "                       column counting (spec 9, T = 0.7); no --mask then.\n"
            "                     Anything else (another grid, crops of different dims) is\n"
            "                     refused\n"
            "  --synth-orig FILE  the original label crop for a label_fake --synth-mask\n"
            "  --label N          the vertebra of a crop pair (default: the number at the\n"
            "                     end of the --synth-mask file name, CASE_N.nii.gz)\n"
            "  --rhlv robust      heights and RHLV with our method (default); 'reference'\n"
            "                     is the published column counting on straightened,\n"
            "                     de-pedicled 1 mm crops (spec section 9; heights in mm)\n"
            "  --grader genant    Genant rule (default); svm:MODEL applies a model saved\n"
            "                     by `healthivert svm` (MODEL and MODEL.scaler);\n"
            "                     senet3d:MODEL the 3-D SupCon-SENet a run with\n"
            "                     grader.method = senet3d saved (OUTPUT/senet3d_model.h5)\n"
            "                     on each vertebra's 64^3 box of its straightened CT crop\n"
            "                     (needs --ct; every vertebra with a crop is graded, a\n"
            "                     truncated one too, as a run grades it; none: -1)\n"
            "  --csv FILE         write one row per vertebra (header: case,label,level,\n"
            "                     h_ori_ant_mm,...,rhlv_post,grade, then extras and flags)\n"
            "  --append           append rows to an existing CSV without a header\n"
            "  --png DIR          per vertebra: CASE_LEVEL_loss_map.png (AP x LR heatmap of\n"
            "                     the relative height loss, colour bar, A/P marked),\n"
            "                     CASE_LEVEL_loss_curve.png (loss from anterior to\n"
            "                     posterior) and CASE_LEVEL_loss_map.csv (the map's data)\n"
            "  --case ID          case id for the CSV (default: the mask's file name)\n"
            "  --compat totalseg  measure like TotalSegmentator's spine report (points at\n"
            "                     15/50/85 %% of the AP chord, the sagittal plane with the\n"
            "                     largest spread) to compare with its numbers\n"
            "  --map-step MM      grid step of the height-loss maps (default 1)\n"
            "  --synth-mask-out DIR  per vertebra: CASE_LEVEL_synth.nii.gz, the mask with\n"
            "                     that vertebra's body stretched to its baseline\n"
            "                     pseudo-healthy heights\n"
            "  -h, --help         this text\n"
            "\n"
            "Exit status: 0 on success, 1 on failure (message on stderr), 2 on a bad\n"
            "command line, --device cuda without a usable GPU or --precision bf16 where\n"
            "it cannot run.\n");
}

/* "path/to/0007_msk.nii.gz" -> "0007"; "sub-verse004_seg-vert_msk.nii.gz" -> "sub-verse004" */
static void case_from_path(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    static const char *suffix[] = {".nii.gz", ".nii", "_seg-vert_msk", "_msk", "_seg"};
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
            size_t n = strlen(out), s = strlen(suffix[i]);
            if (n > s && strcmp(out + n - s, suffix[i]) == 0) out[n - s] = '\0';
        }
}

static void fmt(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "nan");
}

/* "dir/0007_20.nii.gz" -> 20; 0 when the name does not end in _<number>. */
static int label_from_name(const char *path)
{
    char base[256];
    const char *b = strrchr(path, '/');
    snprintf(base, sizeof base, "%s", b ? b + 1 : path);
    char *dot = strstr(base, ".nii");
    if (dot) *dot = 0;
    char *us = strrchr(base, '_');
    if (!us || !us[1]) return 0;
    char *end;
    long l = strtol(us + 1, &end, 10);
    return *end || l < 1 || l > HV_LABEL_MAX ? 0 : (int)l;
}

/* A reference label_fake crop against its original label crop: the
 * reference's column counting (spec 9), nothing else (no mask, no grid). */
static int measure_crop_pair(const char *fake_path, const char *orig_path, const char *label_arg,
                             const char *case_id, const char *csv, int append)
{
    hv_volume *fake = NULL, *orig = NULL;
    hv_status st;
    int rc = HV_EXIT_FAIL, label = 0;
    char cid[256];
    if (label_arg) {
        char *end;
        long l = strtol(label_arg, &end, 10);
        if (*end || l < 1 || l > HV_LABEL_MAX || !hv_label_name((int)l)) {
            fprintf(stderr, "healthivert measure: --label must be a VerSe vertebra label (1-25, 28)\n");
            return HV_EXIT_USAGE;
        }
        label = (int)l;
    } else if (!(label = label_from_name(fake_path))) {
        fprintf(stderr, "healthivert measure: the --synth-mask file name does not end in "
                        "_<label>.nii[.gz]: give --label N\n");
        return HV_EXIT_USAGE;
    }
    if (case_id) {
        snprintf(cid, sizeof cid, "%s", case_id);
    } else {
        /* the reference's names: <case>_<label>.nii.gz */
        case_from_path(fake_path, cid, sizeof cid);
        char *us = strrchr(cid, '_');
        if (us && us != cid && label_from_name(fake_path) == label) *us = 0;
    }
    if ((st = hv_file_check_regular(fake_path, "--synth-mask")) != HV_OK ||
        (st = hv_file_check_regular(orig_path, "--synth-orig")) != HV_OK)
        goto fail;
    /* label ids as the reference writes them (float64 label ids) */
    if ((st = hv_io_nifti_read(fake_path, HV_DTYPE_I16, NULL, &fake, NULL)) != HV_OK) goto fail;
    if ((st = hv_io_nifti_read(orig_path, HV_DTYPE_I16, NULL, &orig, NULL)) != HV_OK) goto fail;
    if (memcmp(fake->dim, orig->dim, sizeof fake->dim)) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "--synth-mask %s is %lld x %lld x %lld, --synth-orig %s is %lld x %lld "
                          "x %lld: a crop pair must have the same dims",
                          fake_path, (long long)fake->dim[0], (long long)fake->dim[1],
                          (long long)fake->dim[2], orig_path, (long long)orig->dim[0],
                          (long long)orig->dim[1], (long long)orig->dim[2]);
        goto fail;
    }
    if (fake->dim[2] > fake->dim[0] || fake->dim[2] > fake->dim[1]) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s is %lld x %lld x %lld: not the reference's crop layout (rows x AP x "
                          "LR, e.g. 256 x 256 x 64: the LR slices last and fewest); healthivert's "
                          "own crops (64 x 256 x 256) are written in that layout by measure "
                          "--nifti and synthesis.nifti",
                          fake_path, (long long)fake->dim[0], (long long)fake->dim[1],
                          (long long)fake->dim[2]);
        goto fail;
    }
    hv_rhlv_ref r;
    st = hv_measure_rhlv_reference_vol(orig, fake, label, 0.7, &r);
    if (st != HV_OK) {
        hv_error_wrap(st, "label %d (%s)", label, hv_label_name(label) ? hv_label_name(label) : "?");
        goto fail;
    }
    hv_vert_measure v;
    memset(&v, 0, sizeof v);
    v.label = label;
    v.depth_mm = v.width_mm = v.volume_ml = v.mean_hu = NAN;
    for (int g = 0; g < HV_REG_COUNT; g++) {
        v.h_ori[g] = r.h_ori[g];
        v.h_syn[g] = r.h_syn[g];
        v.rhlv[g] = r.rhlv[g];
    }
    v.grade = hv_measure_genant_vert(&v);
    printf("case %s: label %d (%s), reference RHLV (column counting, T = 0.7) of a "
           "label_fake crop, %d slices\n", cid, label,
           hv_label_name(label) ? hv_label_name(label) : "?", r.n_slices_used);
    printf("%-6s %10s %10s %10s\n", "region", "h_ori", "h_syn", "RHLV");
    static const char *const reg[] = {"all", "ant", "mid", "post"};
    for (int g = 0; g < HV_REG_COUNT; g++) {
        char a[32], b[32], c[32];
        fmt(a, sizeof a, r.h_ori[g], 3);
        fmt(b, sizeof b, r.h_syn[g], 3);
        fmt(c, sizeof c, 100.0 * r.rhlv[g], 2);
        printf("%-6s %10s %10s %9s%%\n", reg[g], a, b, c);
    }
    printf("grade (Genant rule) %d\n", v.grade);
    if (csv) {
        hv_spine_measure one = {1, &v};
        if ((st = hv_measure_write_csv(csv, cid, &one, append)) != HV_OK) goto fail;
    }
    rc = HV_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "healthivert measure: %s: %s\n", hv_status_name(st), hv_error_detail());
done:
    hv_vol_free(fake);
    hv_vol_free(orig);
    return rc;
}

/* --grader senet3d:MODEL: every vertebra of s->m with a crop (by label, as
 * the run's store keeps its box) gets the network's grade of that crop's box,
 * truncated ones too (as a run's gather grades every box); one without a crop
 * gets -1 (not graded), said on stderr. */
static hv_status grade_senet3d(hv_model_senet3d_grader *g, hv_pipe_state *s)
{
    const hv_model_senet3d_info *in = hv_model_senet3d_grader_info(g);
    hv_spine_measure *m = s->m;
    hv_status st = HV_OK;
    hv_volume **box = calloc(m->n ? m->n : 1, sizeof *box);
    const uint8_t **u = calloc(m->n ? m->n : 1, sizeof *u);
    size_t *at = calloc(m->n ? m->n : 1, sizeof *at), k = 0;
    int *gr = calloc(m->n ? m->n : 1, sizeof *gr);
    if (!box || !u || !at || !gr) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d: out of memory");
        goto done;
    }
    for (size_t i = 0; i < m->n; i++) {
        m->v[i].grade = -1;
        const hv_spine_crop *cr = NULL;
        for (size_t c = 0; c < s->n_crops && !cr; c++)
            if (s->crops[c] && s->crops[c]->label == m->v[i].label) cr = s->crops[c];
        if (!cr) {
            const char *lv = hv_label_name(m->v[i].label);
            fprintf(stderr, "healthivert measure: %s (label %d) has no straightened crop: not "
                            "graded by senet3d (grade -1)\n", lv ? lv : "?", m->v[i].label);
            continue;
        }
        if ((st = hv_spine_crop_box(cr, in->box, &box[i])) != HV_OK) goto done;
        u[k] = box[i]->data;
        at[k++] = i;
    }
    if ((st = hv_model_senet3d_grade(g, u, k, gr)) != HV_OK) goto done;
    for (size_t q = 0; q < k; q++) m->v[at[q]].grade = gr[q];
done:
    for (size_t i = 0; box && i < m->n; i++) hv_vol_free(box[i]);
    free(box);
    free(u);
    free(at);
    free(gr);
    return st;
}

int hv_cmd_measure(int argc, char **argv)
{
    const char *mask_path = NULL, *ct_path = NULL, *ctd_path = NULL, *synth = "baseline";
    const char *rhlv_mode = "robust", *grader = "genant", *csv = NULL, *png = NULL, *case_id = NULL;
    const char *compat = NULL, *synth_dir = NULL, *model = NULL, *model_cor = NULL;
    const char *nifti_dir = NULL, *synth_in = NULL, *synth_orig = NULL, *label_arg = NULL;
    const char *device_arg = NULL;
    int device = HV_COMPUTE_AUTO;
    const char *prec_arg = NULL;
    hv_nn_precision prec = HV_NN_FP32;
    double map_step = 1.0, seg_thr = 0.5;
    int seg_thr_given = 0;
    int append = 0, rc = HV_EXIT_FAIL, synth_given = 0, target_only = 0;
    const hv_volume *mask = NULL;
    const hv_spine_measure *m = NULL;
    hv_pipe_state ps;
    hv_svm_grader *svm = NULL;
    hv_model_senet3d_grader *se3 = NULL;
    hv_nn_backend *be = NULL;
    hv_model_synth *gan = NULL;
    hv_volume *syn_mask = NULL;
    hv_status st;
    hv_pipe_state_init(&ps, NULL);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            measure_usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(a, "--append")) {
            append = 1;
        } else if (!strcmp(a, "--target-only")) {
            target_only = 1;
        } else if (has && !strcmp(a, "--mask")) mask_path = argv[++i];
        else if (has && !strcmp(a, "--ct")) ct_path = argv[++i];
        else if (has && !strcmp(a, "--centroids")) ctd_path = argv[++i];
        else if (has && !strcmp(a, "--synth")) synth = argv[++i], synth_given = 1;
        else if (has && !strcmp(a, "--model")) model = argv[++i];
        else if (has && !strcmp(a, "--model-coronal")) model_cor = argv[++i];
        else if (has && !strcmp(a, "--nifti")) nifti_dir = argv[++i];
        else if (has && !strcmp(a, "--device")) {
            device_arg = argv[++i];
            if ((device = hv_compute_parse(device_arg)) < 0) {
                fprintf(stderr, "healthivert measure: --device must be auto, cpu or cuda, not '%s'\n",
                        device_arg);
                return HV_EXIT_USAGE;
            }
        }
        else if (has && !strcmp(a, "--precision")) {
            prec_arg = argv[++i];
            if (hv_nn_precision_parse(prec_arg, &prec) != HV_OK) {
                fprintf(stderr, "healthivert measure: --precision must be fp32 or bf16, not '%s'\n",
                        prec_arg);
                return HV_EXIT_USAGE;
            }
        }
        else if (has && !strcmp(a, "--synth-orig")) synth_orig = argv[++i];
        else if (has && !strcmp(a, "--label")) label_arg = argv[++i];
        else if (has && !strcmp(a, "--rhlv")) rhlv_mode = argv[++i];
        else if (has && !strcmp(a, "--grader")) grader = argv[++i];
        else if (has && !strcmp(a, "--csv")) csv = argv[++i];
        else if (has && !strcmp(a, "--png")) png = argv[++i];
        else if (has && !strcmp(a, "--case")) case_id = argv[++i];
        else if (has && !strcmp(a, "--compat")) compat = argv[++i];
        else if (has && !strcmp(a, "--synth-mask")) synth_in = argv[++i];
        else if (has && !strcmp(a, "--synth-mask-out")) synth_dir = argv[++i];
        else if (has && !strcmp(a, "--seg-threshold")) {
            char *end = NULL;
            seg_thr = strtod(argv[++i], &end);
            seg_thr_given = 1;
            if (*end || end == argv[i] || !(seg_thr > 0 && seg_thr < 1)) {
                fprintf(stderr, "healthivert measure: --seg-threshold must be a number in (0, 1), "
                                "not '%s'\n", argv[i]);
                return HV_EXIT_USAGE;
            }
        } else if (has && !strcmp(a, "--map-step")) {
            char *end;
            map_step = strtod(argv[++i], &end);
            if (*end || !(map_step > 0.05) || map_step > 20) {
                fprintf(stderr, "healthivert measure: --map-step must be a number of mm in (0.05, 20]\n");
                return HV_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "healthivert measure: unknown or incomplete option '%s' (see --help)\n", a);
            return HV_EXIT_USAGE;
        }
    }
    /* gan and aotgan (issue 15: AOT-GAN's generator, the same steps) take a model */
    const int learned = !strcmp(synth, "gan") || !strcmp(synth, "aotgan");
    /* first: a crop pair returns below, and must not ignore them either */
    if (!learned &&
        (model || model_cor || nifti_dir || target_only || device_arg || prec_arg || seg_thr_given)) {
        fprintf(stderr, "healthivert measure: --model, --model-coronal, --nifti, --target-only, "
                        "--device, --precision and --seg-threshold go with --synth gan or aotgan\n");
        return HV_EXIT_USAGE;
    }
    if (synth_in) {
        struct stat sb;
        if (stat(synth_in, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "healthivert measure: --synth-mask reads a pseudo-healthy label map "
                            "FILE; '%s' is a folder (to write the baseline's masks into a folder "
                            "use --synth-mask-out DIR)\n", synth_in);
            return HV_EXIT_USAGE;
        }
        if (synth_given) {
            fprintf(stderr, "healthivert measure: --synth-mask is the pseudo-healthy estimate; "
                            "it cannot go with --synth\n");
            return HV_EXIT_USAGE;
        }
        if (synth_orig) {
            if (mask_path || ct_path || ctd_path || png || synth_dir || compat) {
                fprintf(stderr, "healthivert measure: a crop pair (--synth-mask with "
                                "--synth-orig) is measured on its own: no --mask, --ct, "
                                "--centroids, --png, --synth-mask-out or --compat\n");
                return HV_EXIT_USAGE;
            }
            return measure_crop_pair(synth_in, synth_orig, label_arg, case_id, csv, append);
        }
        synth = "mask";
    } else if (synth_orig || label_arg) {
        fprintf(stderr, "healthivert measure: --synth-orig and --label go with --synth-mask\n");
        return HV_EXIT_USAGE;
    }
    if (!mask_path) {
        fprintf(stderr, "healthivert measure: --mask is required (see --help)\n");
        return HV_EXIT_USAGE;
    }
    if (strcmp(synth, "baseline") != 0 && !learned && strcmp(synth, "mask") != 0) {
        fprintf(stderr, "healthivert measure: --synth must be baseline, gan or aotgan\n");
        return HV_EXIT_USAGE;
    }
    if (learned && (!model || !ct_path)) {
        fprintf(stderr, "healthivert measure: --synth %s needs --model FILE and --ct (the "
                        "generator works on crops of the CT)\n", synth);
        return HV_EXIT_USAGE;
    }
    if (strcmp(rhlv_mode, "robust") != 0 && strcmp(rhlv_mode, "reference") != 0) {
        fprintf(stderr, "healthivert measure: --rhlv must be robust or reference\n");
        return HV_EXIT_USAGE;
    }
    if (compat && strcmp(compat, "totalseg") != 0) {
        fprintf(stderr, "healthivert measure: --compat must be totalseg\n");
        return HV_EXIT_USAGE;
    }
    if (strcmp(grader, "genant") != 0 && strncmp(grader, "svm:", 4) != 0 &&
        strncmp(grader, "senet3d:", 8) != 0) {
        fprintf(stderr, "healthivert measure: --grader must be genant, svm:MODEL or "
                        "senet3d:MODEL\n");
        return HV_EXIT_USAGE;
    }
    if (!strncmp(grader, "senet3d:", 8) && !ct_path) {
        fprintf(stderr, "healthivert measure: --grader senet3d:MODEL needs --ct (the network "
                        "grades boxes of the straightened CT)\n");
        return HV_EXIT_USAGE;
    }
    char cid[256];
    if (case_id) snprintf(cid, sizeof cid, "%s", case_id);
    else case_from_path(mask_path, cid, sizeof cid);

    /* Before anything is read or written: the case id names the --png and
     * --synth-mask files (and is a CSV field), and every input must be a
     * regular file (a FIFO would block, a directory mislead). */
    st = hv_file_name_check(cid, case_id ? "--case" : "case id (from the --mask file name; use --case)");
    if (st != HV_OK) goto fail;
    if ((st = hv_file_check_regular(mask_path, "--mask")) != HV_OK ||
        (ct_path && (st = hv_file_check_regular(ct_path, "--ct")) != HV_OK) ||
        (ctd_path && (st = hv_file_check_regular(ctd_path, "--centroids")) != HV_OK))
        goto fail;
    if (!strncmp(grader, "svm:", 4)) {
        st = hv_svm_load(grader + 4, &svm);
        if (st != HV_OK) goto fail;
    }
    if (!strncmp(grader, "senet3d:", 8)) {
        st = hv_model_senet3d_grader_open(grader + 8, &se3);
        if (st != HV_OK) goto fail;
    }
    if (learned) {
        /* opened before the case is read: a wrong model is the first error */
        hv_model_synth_opts so;
        hv_model_synth_opts_default(&so);
        so.generator = !strcmp(synth, "aotgan") ? HV_MODEL_GEN_AOTGAN : HV_MODEL_GEN_HEALTHIVERT;
        so.neighbours = !target_only;
        so.seg_threshold = seg_thr;
        if ((st = hv_file_check_regular(model, "--model")) != HV_OK ||
            (model_cor && (st = hv_file_check_regular(model_cor, "--model-coronal")) != HV_OK))
            goto fail;
        /* where the generator runs: a refused --device cuda is a usage error */
        hv_compute comp;
        if ((st = hv_compute_open(device, "--device", &comp)) != HV_OK) {
            if (st != HV_ERR_ARG) goto fail;
            fprintf(stderr, "healthivert measure: %s\n", hv_error_detail());
            rc = HV_EXIT_USAGE;
            goto done;
        }
        if ((st = hv_compute_backend(&comp, &be)) != HV_OK) goto fail;
        /* likewise a --precision this machine (or the GPU backend) cannot run */
        if (prec != HV_NN_FP32 && hv_nn_backend_set_precision(be, prec) != HV_OK) {
            fprintf(stderr, "healthivert measure: --precision %s: %s\n", hv_nn_precision_name(prec),
                    hv_error_detail());
            rc = HV_EXIT_USAGE;
            goto done;
        }
        if ((st = hv_model_synth_open(model, model_cor, &so, be, &gan)) != HV_OK) goto fail;
    }
    if (!strcmp(synth, "mask")) {
        if ((st = hv_file_check_regular(synth_in, "--synth-mask")) != HV_OK) goto fail;
        st = hv_io_nifti_read(synth_in, HV_DTYPE_I16, NULL, &syn_mask, NULL);
        if (st != HV_OK) goto fail;
    }
    /* The pipeline's load -> measure -> synthesize -> grade, as a batch run
     * does it (hv/pipeline.h): int16 labels, the same checks, the same
     * registered synthesis methods and graders. Unlike the runner, a single
     * vertebra is measured (flagged no_reference) rather than refused. */
    hv_case cs = {cid, (char *)ct_path, (char *)mask_path, (char *)ctd_path, HV_OK, NULL};
    hv_pipe_opts po;
    hv_pipe_opts_default(&po);
    po.measure.map_step_mm = map_step;
    po.measure.totalseg_compat = compat != NULL;
    po.need_neighbour = 0;
    po.synth = synth;
    po.rhlv_reference = !strcmp(rhlv_mode, "reference");
    po.grader = svm ? "svm" : se3 ? "senet3d" : "rule";
    po.grader_model = svm;
    po.synth_model = gan;
    po.synth_nifti_dir = nifti_dir;
    po.synth_mask = syn_mask;
    hv_pipe_plan plan;
    st = hv_pipe_plan_make(hv_pipe_default(), &po, HV_PIPE_GRADES, &plan);
    if (st != HV_OK) goto fail;
    hv_pipe_state_init(&ps, &cs);
    st = hv_pipe_run(&plan, &ps);
    if (st != HV_OK) goto fail;
    mask = ps.mask;
    m = ps.m;
    if (se3 && (st = grade_senet3d(se3, &ps)) != HV_OK) goto fail;

    printf("case %s: %zu vertebrae (%s heights, %s pseudo-healthy, %s grader)\n", cid, m->n,
           !strcmp(rhlv_mode, "reference") ? "reference (column-count)"
           : compat                        ? "TotalSegmentator-compatible"
                                           : "robust",
           learned ? synth : syn_mask ? "--synth-mask" : "baseline",
           svm ? "SVM" : se3 ? "3-D SupCon-SENet" : "Genant rule");
    printf("%-5s %5s | %6s %6s %6s | %6s %6s %6s | %6s %6s %6s | %5s | %s\n", "level", "label",
           "ori_A", "ori_M", "ori_P", "syn_A", "syn_M", "syn_P", "RHLV_A", "RHLV_M", "RHLV_P",
           "grade", "flags");
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        char b[9][16], fl[160];
        for (int r = 0; r < 3; r++) {
            fmt(b[r], 16, v->h_ori[r + 1], 1);
            fmt(b[3 + r], 16, v->h_syn[r + 1], 1);
            fmt(b[6 + r], 16, 100.0 * v->rhlv[r + 1], 1);
        }
        hv_measure_flags_str(v->flags, fl, sizeof fl);
        const char *lv = hv_label_name(v->label);
        printf("%-5s %5d | %6s %6s %6s | %6s %6s %6s | %5s%% %5s%% %5s%% | %5d | %s\n",
               lv ? lv : "?", v->label, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
               v->grade, fl);
    }
    if (csv) {
        st = hv_measure_write_csv(csv, cid, m, append);
        if (st != HV_OK) goto fail;
    }
    if (png) {
        st = hv_mkdir_p(png);
        if (st != HV_OK) goto fail;
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            if (!v->ori_map.h || !v->syn_map.h) continue;
            const char *lv = hv_label_name(v->label);
            char *p1 = hv_strfmt("%s/%s_%s_loss_map.png", png, cid, lv ? lv : "x");
            char *p2 = hv_strfmt("%s/%s_%s_loss_curve.png", png, cid, lv ? lv : "x");
            char *p3 = hv_strfmt("%s/%s_%s_loss_map.csv", png, cid, lv ? lv : "x");
            if (!p1 || !p2 || !p3) st = hv_error_set(HV_ERR_NOMEM, "paths");
            if (st == HV_OK) st = hv_measure_write_loss_map_png(p1, v);
            if (st == HV_OK) st = hv_measure_write_loss_curve_png(p2, v);
            if (st == HV_OK) st = hv_measure_write_loss_map_csv(p3, v);
            free(p1);
            free(p2);
            free(p3);
            if (st != HV_OK) goto fail;
        }
    }
    if (synth_dir) {
        st = hv_mkdir_p(synth_dir);
        if (st != HV_OK) goto fail;
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            if (!v->ori_map.h || !v->syn_map.h) continue;
            hv_volume *syn = NULL;
            st = hv_measure_synth_mask(mask, m, v->label, &syn);
            if (st != HV_OK) goto fail;
            const char *lv = hv_label_name(v->label);
            char *sp = hv_strfmt("%s/%s_%s_synth.nii.gz", synth_dir, cid, lv ? lv : "x");
            hv_nifti_write_opts wo;
            memset(&wo, 0, sizeof wo);
            wo.intent_label = 1;
            wo.descrip = "healthivert baseline pseudo-healthy mask";
            st = sp ? hv_io_nifti_write(sp, syn, &wo) : hv_error_set(HV_ERR_NOMEM, "path");
            free(sp);
            hv_vol_free(syn);
            if (st != HV_OK) goto fail;
        }
    }
    rc = HV_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "healthivert measure: %s: %s\n", hv_status_name(st), hv_error_detail());
    rc = HV_EXIT_FAIL;
done:
    hv_pipe_state_clear(&ps);
    hv_svm_grader_free(svm);
    hv_model_senet3d_grader_free(se3);
    hv_model_synth_free(gan);
    hv_nn_backend_free(be);
    hv_vol_free(syn_mask);
    return rc;
}
