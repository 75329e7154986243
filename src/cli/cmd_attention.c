/*
 * cmd_attention.c: `healthivert attention`, the attention stage of one case
 * on the command line (issue 13, spec 7): read a CT and its vertebra label
 * map, straighten, crop, and make the fracture classifier's Grad-CAM++ map
 * of every vertebra (or of the --label ones), then write the reference's
 * files: per vertebra the map as NIfTI and a JET overlay PNG, and one CSV
 * of the fracture probabilities and where the maps put their mass.
 *
 * The case goes through hv_pipe_run with the default table (load ->
 * straighten -> crop -> attention), as `measure` and `straighten` do, so
 * what it shows is what a batch run computes; --label adds one row after
 * crop that keeps only the asked-for crops (the classifier then runs on
 * those alone). The classifier is opened, and every input checked, before
 * anything is read or written: a missing model file, or a file that is not
 * a classifier (a GAN model, say), is one message and no output. The
 * classifier runs where --device says (hv/compute.h: auto, cpu or cuda, as
 * compute.device of `run`); a refused cuda is exit 2, also before any output.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/compute.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/model.h"
#include "hv/nn.h"
#include "hv/pipeline.h"
#include "hv/spine.h"

#define MAX_LABELS 32

static void attention_usage(FILE *f)
{
    fprintf(f,
        "usage: healthivert attention --ct CT.nii.gz --mask MASK.nii.gz --model FILE --out DIR\n"
        "                             [--label L]... [--centroids CTD.json] [options]\n"
        "\n"
        "The fracture classifier's Grad-CAM++ attention maps of one case (spec 7; the\n"
        "pipeline's `attention` stage, docs/model.md): the spine is straightened and\n"
        "cropped as a batch run does it (64 x 256 x 256 per vertebra), and on each of\n"
        "the middle 30 LR slices of a crop (17..46 of 64, the straightened, unmasked CT\n"
        "/ 255) the classifier's class-1 (fracture) Grad-CAM++ map is computed at its\n"
        "last bottleneck's first 1x1 convolution, resized to 256 x 256. Other slices\n"
        "are 0. The same maps are the gan's HGAM input (1 - CAM) in `healthivert run`\n"
        "with attention.model set.\n"
        "\n"
        "Writes into DIR (created if needed), ID = --id or the CT file name, LABEL =\n"
        "the VerSe label number:\n"
        "  ID_LABEL_cam.nii.gz   the map, float32 in [0, 1], in the reference's array\n"
        "                        layout (256 rows cranial first x 256 AP x 64 LR) with\n"
        "                        an affine that keeps every voxel's world position\n"
        "  ID_LABEL_cam.png      the CT slice (grey) with the map in the JET colour map\n"
        "                        at alpha 0.4 (the reference's figure); slice --slice\n"
        "  ID_attention.csv      label, level, p_fracture (the classifier's mean\n"
        "                        P(fracture) over the 30 slices), cam_mass_body (the\n"
        "                        fraction of the map's mass inside the vertebra's own\n"
        "                        body, de-pedicled), cam_max_slice (LR slice of its\n"
        "                        maximum), nonfinite (1: the classifier gave NaN/Inf,\n"
        "                        no map written)\n"
        "\n"
        "options:\n"
        "  --ct FILE          CT in Hounsfield units (required)\n"
        "  --mask FILE        vertebra label map, VerSe labels (required)\n"
        "  --model FILE       classifier model file (required): written by\n"
        "                     `healthivert train-classifier` or\n"
        "                     hv_model_classifier_save_file; a GAN model is refused\n"
        "  --out DIR          output folder (required)\n"
        "  --label L          only vertebra L (a number, e.g. 20, or a level, e.g.\n"
        "                     L1); repeat for several (default: every vertebra with\n"
        "                     a body). A label with no crop is an error\n"
        "  --centroids FILE   VerSe centroid JSON for the spine axis\n"
        "  --id ID            case id used in file names (default: from --ct)\n"
        "  --slice N|max      overlay slice: an LR index 0..63 (default 32, the\n"
        "                     reference's) or max (the slice of the map's maximum)\n"
        "  --batch N          slices per classifier call, 1..30 (default 30; the\n"
        "                     maps do not depend on it)\n"
        "  --device D         where the classifier runs: auto (default: a CUDA GPU\n"
        "                     when the build has CUDA and one is usable, else the\n"
        "                     CPU; one log line says which), cpu, or cuda (exit 2\n"
        "                     before anything is written when no GPU is usable);\n"
        "                     as compute.device of `healthivert run`\n"
        "  -h, --help         this text\n"
        "\n"
        "Exit status: 0 done, 1 failed (one message on stderr says why; nothing is\n"
        "written when the model or an input is wrong), 2 bad command line or\n"
        "--device cuda without a usable GPU.\n");
}

/* A label given as a number or a level name; -1 when neither. */
static int parse_label(const char *s)
{
    char *e;
    long v = strtol(s, &e, 10);
    if (!*e && e != s) return v >= 1 && v <= HV_LABEL_MAX && hv_label_name((int)v) ? (int)v : -1;
    for (int l = 1; l <= HV_LABEL_MAX; l++) {
        const char *n = hv_label_name(l);
        if (n && !strcmp(n, s)) return l;
    }
    return -1;
}

typedef struct select_ctx {
    int labels[MAX_LABELS];
    int n;
} select_ctx;

/* The --label row: keep the asked-for crops only; one that is not there
 * fails the case naming it. */
static hv_status select_run(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const select_ctx *sc = o->user;
    for (int q = 0; q < sc->n; q++)
        if (!hv_pipe_crop_find(s, sc->labels[q])) {
            const char *name = hv_label_name(sc->labels[q]);
            return hv_error_set(HV_ERR_NOT_FOUND,
                                "--label %d (%s): no crop of it (not in the mask, or the spine "
                                "stage found no body)",
                                sc->labels[q], name ? name : "?");
        }
    for (size_t i = 0; i < s->n_crops; i++) {
        if (!s->crops[i]) continue;
        int keep = 0;
        for (int q = 0; q < sc->n; q++) keep |= s->crops[i]->label == sc->labels[q];
        if (!keep) {
            hv_spine_crop_free(s->crops[i]);
            s->crops[i] = NULL;
        }
    }
    return HV_OK;
}

static hv_status write_csv(const char *path, const hv_pipe_state *s)
{
    FILE *f = fopen(path, "w");
    if (!f) return hv_error_set(HV_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "label,level,p_fracture,cam_mass_body,cam_max_slice,nonfinite\n");
    for (size_t i = 0; i < s->n_attn; i++) {
        const hv_pipe_attn *a = &s->attn[i];
        if (a->label <= 0) continue;
        const char *name = hv_label_name(a->label);
        fprintf(f, "%d,%s,", a->label, name ? name : "");
        if (isnan(a->p_fracture)) fprintf(f, ",");
        else fprintf(f, "%.6f,", a->p_fracture);
        if (isnan(a->mass_in_body)) fprintf(f, ",");
        else fprintf(f, "%.6f,", a->mass_in_body);
        fprintf(f, "%d,%d\n", a->max_slice, a->nonfinite);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return hv_error_set(HV_ERR_IO, "writing %s failed", path);
    return HV_OK;
}

int hv_cmd_attention(int argc, char **argv)
{
    const char *ct_path = NULL, *mask_path = NULL, *ctd_path = NULL, *out = NULL, *id_opt = NULL;
    const char *model_path = NULL;
    long slice = 32, batch = 30;
    int device = HV_COMPUTE_AUTO, refused = 0;
    select_ctx sel;
    memset(&sel, 0, sizeof sel);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            attention_usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(a, "--ct") && has) {
            ct_path = argv[++i];
        } else if (!strcmp(a, "--mask") && has) {
            mask_path = argv[++i];
        } else if (!strcmp(a, "--model") && has) {
            model_path = argv[++i];
        } else if (!strcmp(a, "--centroids") && has) {
            ctd_path = argv[++i];
        } else if (!strcmp(a, "--out") && has) {
            out = argv[++i];
        } else if (!strcmp(a, "--id") && has) {
            id_opt = argv[++i];
        } else if (!strcmp(a, "--label") && has) {
            int l = parse_label(argv[++i]);
            if (l < 0) {
                fprintf(stderr,
                        "healthivert attention: --label '%s' is not a VerSe label (a number "
                        "1-25 or 28, or a level such as T12)\n",
                        argv[i]);
                return HV_EXIT_USAGE;
            }
            if (sel.n == MAX_LABELS) {
                fprintf(stderr, "healthivert attention: at most %d --label options\n", MAX_LABELS);
                return HV_EXIT_USAGE;
            }
            sel.labels[sel.n++] = l;
        } else if (!strcmp(a, "--slice") && has) {
            const char *v = argv[++i];
            char *e;
            if (!strcmp(v, "max")) slice = -1;
            else {
                slice = strtol(v, &e, 10);
                if (*e || e == v || slice < 0 || slice > 63) {
                    fprintf(stderr, "healthivert attention: --slice must be 0..63 or max\n");
                    return HV_EXIT_USAGE;
                }
            }
        } else if (!strcmp(a, "--device") && has) {
            if ((device = hv_compute_parse(argv[++i])) < 0) {
                fprintf(stderr, "healthivert attention: --device must be auto, cpu or cuda, not "
                                "'%s'\n", argv[i]);
                return HV_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--batch") && has) {
            char *e;
            batch = strtol(argv[++i], &e, 10);
            if (*e || batch < 1 || batch > 30) {
                fprintf(stderr, "healthivert attention: --batch must be an integer in [1, 30]\n");
                return HV_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "healthivert attention: %s '%s' (see --help)\n",
                    a[0] == '-' ? (has ? "unknown option" : "unknown option or missing value")
                                : "unexpected argument",
                    a);
            return HV_EXIT_USAGE;
        }
    }
    if (!ct_path || !mask_path || !model_path || !out) {
        fprintf(stderr,
                "healthivert attention: --ct, --mask, --model and --out are required (see "
                "--help)\n");
        return HV_EXIT_USAGE;
    }

    hv_status st = HV_OK;
    hv_pipe_state ps;
    hv_nn_backend *be = NULL;
    hv_model_cam *cam = NULL;
    hv_compute comp;
    char *id = NULL;
    char *path = NULL;
    size_t n_written = 0, n_crops = 0;
    hv_pipe_state_init(&ps, NULL);
    /* before anything is read or written: the id, the inputs, the model */
    if ((st = hv_cli_case_id(id_opt, ct_path, &id)) ||
        (st = hv_cli_case_inputs(ct_path, mask_path, model_path, ctd_path)))
        goto done;
    /* where the classifier runs: a refused --device cuda is a usage error */
    if ((st = hv_compute_open(device, "--device", &comp)) != HV_OK) {
        refused = st == HV_ERR_ARG;
        goto done;
    }
    if ((st = hv_compute_backend(&comp, &be)) != HV_OK) goto done;
    if ((st = hv_model_cam_open(model_path, batch, be, &cam)) != HV_OK) {
        hv_error_wrap(st, "--model");
        goto done;
    }

    /* load -> straighten -> crop [-> select] -> attention through the
     * pipeline (hv/pipeline.h); CT and mask may lie on different grids */
    const hv_pipe_table *def = hv_pipe_default();
    hv_pipe_stage rows[HV_PIPE_MAX_STAGES];
    hv_pipe_table t = *def;
    if (sel.n > 0) {
        if (def->n + 1 > HV_PIPE_MAX_STAGES) {
            st = hv_error_set(HV_ERR_LIMIT, "the stage table is full");
            goto done;
        }
        int k = 0;
        for (int i = 0; i < def->n; i++) {
            rows[k++] = def->stage[i];
            if (!strcmp(def->stage[i].name, "crop"))
                rows[k++] = (hv_pipe_stage){"select", "keep the --label crops", HV_PIPE_CROPS, 0,
                                            HV_PIPE_EXTRA0, NULL, NULL, select_run};
        }
        t.stage = rows;
        t.n = k;
    }
    hv_pipe_opts po;
    hv_pipe_opts_default(&po);
    po.same_grid = 0;
    po.attention_model = cam;
    po.user = &sel;
    hv_case cs = {id, (char *)ct_path, (char *)mask_path, (char *)ctd_path, HV_OK, NULL};
    hv_pipe_plan plan;
    st = hv_pipe_plan_make(&t, &po, HV_PIPE_ATTENTION | (sel.n ? HV_PIPE_EXTRA0 : 0u), &plan);
    if (st) goto done;
    hv_pipe_state_init(&ps, &cs);
    if ((st = hv_pipe_run(&plan, &ps)) != HV_OK) goto done;
    char tb[256];
    hv_log_info("%s: attention (seconds: %s)", id, hv_pipe_timings(&plan, &ps, tb, sizeof tb));

    if ((st = hv_mkdir_p(out)) != HV_OK) goto done;
    for (size_t i = 0; i < ps.n_attn; i++) {
        const hv_pipe_attn *a = &ps.attn[i];
        if (a->label <= 0) continue;
        n_crops++;
        if (!a->cam) {
            const char *name = hv_label_name(a->label);
            fprintf(stderr, "healthivert attention: %s %s (%d): no map%s\n", id, name ? name : "?",
                    a->label, a->nonfinite ? " (non-finite classifier output)" : "");
            continue;
        }
        if ((st = hv_pipe_attn_write(out, id, ps.crops[i], a, slice)) != HV_OK) goto done;
        n_written++;
    }
    if (!(path = hv_strfmt("%s/%s_attention.csv", out, id))) {
        st = hv_error_set(HV_ERR_NOMEM, "path");
        goto done;
    }
    if ((st = write_csv(path, &ps)) != HV_OK) goto done;
    printf("%s: %zu vertebrae, %zu attention maps (width %d) -> %s\n", id, n_crops, n_written,
           hv_model_cam_width(cam), out);
done:
    if (st) fprintf(stderr, "healthivert attention: %s: %s\n", id ? id : ct_path, hv_error_detail());
    hv_pipe_state_clear(&ps);
    hv_model_cam_free(cam);
    hv_nn_backend_free(be);
    free(path);
    free(id);
    return refused ? HV_EXIT_USAGE : st ? HV_EXIT_FAIL : HV_EXIT_OK;
}
