/*
 * cmd_straighten.c: `healthivert straighten`, the spine stage of one case on
 * the command line: read a CT and its vertebra label map (and optionally a
 * VerSe centroid file), straighten the spine, cut the per-vertebra crops and
 * write everything, with a table of the vertebrae and their flags, into one
 * folder. It runs the case through the pipeline's own stages (load ->
 * straighten -> crop, hv/pipeline.h), so what you see here is what a batch
 * run sees.
 * The id must be a plain file name and every input a regular file; both are
 * checked before anything is read or written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/pipeline.h"
#include "hv/spine.h"

static void straighten_usage(FILE *f)
{
    fprintf(f,
        "usage: healthivert straighten --ct CT.nii.gz --mask MASK.nii.gz --out DIR\n"
        "                              [--centroids CTD.json] [--png] [options]\n"
        "\n"
        "Straighten one spine along a smooth curve through its vertebral bodies and\n"
        "cut one crop per vertebra, as the pipeline does before synthesis and\n"
        "measurement. CT and mask may have any orientation and voxel spacing (even\n"
        "different grids): everything is done in world (RAS+ mm) coordinates.\n"
        "The mask holds VerSe labels (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 28 T13);\n"
        "other labels are ignored.\n"
        "\n"
        "Writes into DIR (created if needed), ID = --id or the CT file name:\n"
        "  ID_ct_straight.nii.gz     straightened CT in HU (float32, trilinear)\n"
        "  ID_mask_straight.nii.gz   straightened labels (nearest neighbour)\n"
        "  ID_body_straight.nii.gz   the same after de-pedicle (vertebral bodies)\n"
        "  ID_map.csv                the exact mapping: per row k the curve point\n"
        "                            and frame; world = p_k + (i-ci) r_k + (j-cj) a_k\n"
        "  ID_vertebrae.csv          label, level, flags, voxels, centroids (world\n"
        "                            mm), straightened row of each body\n"
        "  crops/ID_LABEL_ct.nii.gz  64 x 256 x 256 (LR x AP x rows) crop, CT\n"
        "                            windowed [-300, 800] HU -> [0, 255]\n"
        "  crops/ID_LABEL_label.nii.gz  the de-pedicled labels of that crop\n"
        "  qc/ID_LABEL.png           with --png: mid-sagittal | mid-coronal slice\n"
        "                            with label contours (target in red)\n"
        "Straightened grid: i = patient right, j = anterior, k = superior (row 0 is\n"
        "the caudal end), 1 mm; its NIfTI affine is exact on the central row and\n"
        "approximate elsewhere (use ID_map.csv for exact positions). See docs/spine.md.\n"
        "\n"
        "Flags in ID_vertebrae.csv (a flagged vertebra must not be measured blindly):\n"
        "  fov (touches the volume border), small (dropped by --end-rule),\n"
        "  outside (--centroids point outside the volume; the label's own centre is\n"
        "  used), ctd_far (--centroids point > 20 mm from its label's voxels; the\n"
        "  label's own centre is used), no_mask (centroid but no voxels),\n"
        "  gap (an adjacent level is missing), single (only vertebra: no curve),\n"
        "  no_canal (de-pedicle found no canal), off_curve (not a curve point).\n"
        "\n"
        "options:\n"
        "  --ct FILE          CT in Hounsfield units (required)\n"
        "  --mask FILE        vertebra label map (required)\n"
        "  --centroids FILE   VerSe centroid JSON (voxel coordinates in the mask's\n"
        "                     grid) instead of centroids computed from the mask\n"
        "  --out DIR          output folder (required)\n"
        "  --id ID            case id used in file names (default: from --ct)\n"
        "  --png              write the QC pictures\n"
        "  --no-crops         write only the straightened volumes and tables\n"
        "  --size N           straightened cross-section N x N voxels (default 128)\n"
        "  --step MM          row and pixel spacing in mm (default 1)\n"
        "  --reference        the reference's geometry for fidelity runs: polyline\n"
        "                     curve, coronal-plane frame, curve through whole-vertebra\n"
        "                     centroids, end-vertebra size rule\n"
        "  --end-rule         drop small end vertebrae as the reference does (< 6000\n"
        "                     mm^3 cranial, < 8000 mm^3 caudal)\n"
        "  -h, --help         this text\n"
        "\n"
        "Exit status: 0 done (flagged vertebrae are reported, not fatal), 1 the case\n"
        "failed (one message on stderr says why), 2 bad command line.\n");
}

static hv_status write_table(const char *path, const hv_spine_case *c)
{
    FILE *f = fopen(path, "w");
    if (!f) return hv_error_set(HV_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "label,level,flags,nvox,volume_mm3,cx,cy,cz,has_body,bx,by,bz,row\n");
    for (size_t n = 0; n < c->verts->n; n++) {
        const hv_spine_vert *v = &c->verts->v[n];
        const char *name = hv_label_name(v->label);
        fprintf(f, "%d,%s,%s,%zu,%.1f,%.3f,%.3f,%.3f,%d,", v->label, name ? name : "",
                hv_spine_flags_str(v->flags), v->nvox, v->volume_mm3, v->centroid[0],
                v->centroid[1], v->centroid[2], v->has_body);
        if (v->has_body)
            fprintf(f, "%.3f,%.3f,%.3f,%.3f\n", v->body_centroid[0], v->body_centroid[1],
                    v->body_centroid[2], v->row);
        else
            fprintf(f, ",,,\n");
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return hv_error_set(HV_ERR_IO, "writing %s failed", path);
    return HV_OK;
}

static hv_status write_nii(const char *dir, const char *id, const char *suffix, const hv_volume *v,
                           int is_label)
{
    char *p = hv_strfmt("%s/%s%s", dir, id, suffix);
    if (!p) return hv_error_set(HV_ERR_NOMEM, "path");
    hv_nifti_write_opts o = {0};
    o.intent_label = is_label;
    o.descrip = is_label ? "healthivert straightened labels" : "healthivert straightened CT";
    hv_status st = hv_io_nifti_write(p, v, &o);
    free(p);
    return st;
}

/* Every NIfTI/PNG output, written in parallel: job 0..2 the straightened
 * CT, labels and bodies, job 3 + q the crops (and QC picture) of vertebra q.
 * The first failure in job order is the one reported. */
static hv_status write_outputs(const hv_pipe_state *ps, const char *out, const char *crop_dir,
                               const char *qc_dir, const char *id, int crops, int png)
{
    const hv_spine_case *c = ps->spine;
    const long n_jobs = 3 + (crops ? (long)c->verts->n : 0);
    hv_status *sts = calloc((size_t)n_jobs, sizeof *sts);
    char (*msg)[512] = calloc((size_t)n_jobs, sizeof *msg);
    if (!sts || !msg) {
        free(sts);
        free(msg);
        return hv_error_set(HV_ERR_NOMEM, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (long j = 0; j < n_jobs; j++) {
        hv_status st = HV_OK;
        if (j == 0) st = write_nii(out, id, "_ct_straight.nii.gz", c->ct, 0);
        else if (j == 1) st = write_nii(out, id, "_mask_straight.nii.gz", c->labels_whole, 1);
        else if (j == 2) st = write_nii(out, id, "_body_straight.nii.gz", c->labels, 1);
        else {
            const hv_spine_vert *v = &c->verts->v[j - 3];
            if (!v->has_body) continue;
            const hv_spine_crop *cr = hv_pipe_crop_find(ps, v->label);
            char *stem = hv_strfmt("%s_%d", id, v->label), *path = NULL;
            if (!stem) st = hv_error_set(HV_ERR_NOMEM, "path");
            else if (!cr) st = hv_error_set(HV_ERR_NUMERIC, "no crop of label %d", v->label);
            if (!st) st = write_nii(crop_dir, stem, "_ct.nii.gz", cr->ct, 0);
            if (!st) st = write_nii(crop_dir, stem, "_label.nii.gz", cr->labels, 1);
            if (!st && png) {
                path = hv_strfmt("%s/%s.png", qc_dir, stem);
                st = path ? hv_spine_qc_png(path, cr) : hv_error_set(HV_ERR_NOMEM, "path");
            }
            free(path);
            free(stem);
        }
        sts[j] = st;
        if (st) {
            snprintf(msg[j], sizeof msg[j], "%s", hv_error_detail());
            hv_error_clear();
        }
    }
    hv_status st = HV_OK;
    for (long j = 0; j < n_jobs && !st; j++)
        if (sts[j]) st = hv_error_set(sts[j], "%s", msg[j]);
    free(sts);
    free(msg);
    return st;
}

int hv_cmd_straighten(int argc, char **argv)
{
    const char *ct_path = NULL, *mask_path = NULL, *ctd_path = NULL, *out = NULL, *id_opt = NULL;
    int png = 0, crops = 1, reference = 0, end_rule = 0;
    long size = 128;
    double step = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            straighten_usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(a, "--ct") && has) {
            ct_path = argv[++i];
        } else if (!strcmp(a, "--mask") && has) {
            mask_path = argv[++i];
        } else if (!strcmp(a, "--centroids") && has) {
            ctd_path = argv[++i];
        } else if (!strcmp(a, "--out") && has) {
            out = argv[++i];
        } else if (!strcmp(a, "--id") && has) {
            id_opt = argv[++i];
        } else if (!strcmp(a, "--png")) {
            png = 1;
        } else if (!strcmp(a, "--no-crops")) {
            crops = 0;
        } else if (!strcmp(a, "--reference")) {
            reference = 1;
        } else if (!strcmp(a, "--end-rule")) {
            end_rule = 1;
        } else if (!strcmp(a, "--size") && has) {
            char *e;
            size = strtol(argv[++i], &e, 10);
            if (*e || size < 16 || size > 1024) {
                fprintf(stderr, "healthivert straighten: --size must be an integer in [16, 1024]\n");
                return HV_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--step") && has) {
            char *e;
            step = strtod(argv[++i], &e);
            if (*e || !(step >= 0.1 && step <= 5.0)) {
                fprintf(stderr, "healthivert straighten: --step must be a number of mm in [0.1, 5]\n");
                return HV_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "healthivert straighten: %s '%s' (see --help)\n",
                    a[0] == '-' ? (has ? "unknown option" : "unknown option or missing value")
                                : "unexpected argument", a);
            return HV_EXIT_USAGE;
        }
    }
    if (!ct_path || !mask_path || !out) {
        fprintf(stderr, "healthivert straighten: --ct, --mask and --out are required (see --help)\n");
        return HV_EXIT_USAGE;
    }

    hv_status st = HV_OK;
    hv_pipe_state ps;
    const hv_spine_case *c = NULL;
    char *id = NULL;
    char *crop_dir = hv_strfmt("%s/crops", out), *qc_dir = hv_strfmt("%s/qc", out);
    char *path = NULL;
    size_t n_crops = 0, n_flagged = 0;
    hv_pipe_state_init(&ps, NULL);
    if (!crop_dir || !qc_dir) { st = hv_error_set(HV_ERR_NOMEM, "paths"); goto done; }
    /* Before anything is read or written: the id names files in --out, and
     * every input must be a regular file (a FIFO would block). */
    if ((st = hv_cli_case_id(id_opt, ct_path, &id)) ||
        (st = hv_cli_case_inputs(ct_path, mask_path, NULL, ctd_path)))
        goto done;

    /* The pipeline's load -> straighten [-> crop], as a batch run does it
     * (hv/pipeline.h); CT and mask may lie on different grids here. */
    hv_pipe_opts po;
    hv_pipe_opts_default(&po);
    po.same_grid = 0;
    po.spine.straighten.width = po.spine.straighten.height = size;
    po.spine.straighten.step_mm = step;
    po.spine.centroids.reference_end_rule = end_rule || reference;
    if (reference) {
        po.spine.straighten.curve = HV_SPINE_CURVE_POLYLINE;
        po.spine.straighten.frame = HV_SPINE_FRAME_REFERENCE;
        po.spine.straighten.through = HV_SPINE_THROUGH_WHOLE;
    }
    hv_case cs = {id, (char *)ct_path, (char *)mask_path, (char *)ctd_path, HV_OK, NULL};
    hv_pipe_plan plan;
    st = hv_pipe_plan_make(hv_pipe_default(), &po, crops ? HV_PIPE_CROPS : HV_PIPE_SPINE, &plan);
    if (st) goto done;
    hv_pipe_state_init(&ps, &cs);
    st = hv_pipe_run(&plan, &ps);
    if (st) goto done;
    c = ps.spine;
    char tb[256];
    hv_log_info("%s: straightened to %lldx%lldx%lld (seconds: %s)", id, (long long)c->ct->dim[0],
                (long long)c->ct->dim[1], (long long)c->ct->dim[2],
                hv_pipe_timings(&plan, &ps, tb, sizeof tb));

    st = hv_mkdir_p(out);
    if (!st && crops) st = hv_mkdir_p(crop_dir);
    if (!st && crops && png) st = hv_mkdir_p(qc_dir);
    if (st) goto done;
    if (!(path = hv_strfmt("%s/%s_map.csv", out, id))) { st = hv_error_set(HV_ERR_NOMEM, "path"); goto done; }
    st = hv_spine_map_write(path, c->map);
    free(path);
    path = NULL;
    if (st) goto done;
    if (!(path = hv_strfmt("%s/%s_vertebrae.csv", out, id))) { st = hv_error_set(HV_ERR_NOMEM, "path"); goto done; }
    st = write_table(path, c);
    free(path);
    path = NULL;
    if (st) goto done;
    for (size_t q = 0; q < c->verts->n; q++) {
        const hv_spine_vert *v = &c->verts->v[q];
        const char *name = hv_label_name(v->label);
        if (v->flags) {
            n_flagged++;
            fprintf(stderr, "healthivert straighten: %s %s (%d) flagged: %s\n", id, name ? name : "?",
                    v->label, hv_spine_flags_str(v->flags));
        }
        if (crops && v->has_body) n_crops++;
    }
    /* The outputs are written several at once: compressing them is most of
     * the command's time (one .nii.gz per volume, two per crop). */
    double t0 = hv_time_now();
    st = write_outputs(&ps, out, crop_dir, qc_dir, id, crops, png);
    if (st) goto done;
    hv_log_info("%s: wrote %zu volumes in %.2f s", id, 3 + 2 * n_crops, hv_time_now() - t0);
    printf("%s: %zu vertebrae (%zu flagged), %zu crops, straightened %lldx%lldx%lld -> %s\n", id,
           c->verts->n, n_flagged, n_crops, (long long)c->ct->dim[0], (long long)c->ct->dim[1],
           (long long)c->ct->dim[2], out);
done:
    if (st) fprintf(stderr, "healthivert straighten: %s: %s\n", id ? id : ct_path, hv_error_detail());
    hv_pipe_state_clear(&ps);
    free(id);
    free(crop_dir);
    free(qc_dir);
    return st ? HV_EXIT_FAIL : HV_EXIT_OK;
}
