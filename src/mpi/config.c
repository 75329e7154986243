/*
 * config.c: the run configuration (INI + "section.key=value" overrides).
 *
 * Every key is declared once in the typed table below: its type, range or
 * choices, default, whether it changes results, help text, and the field of
 * hv_run_params (run_internal.h) it fills, by offsetof. That table is the
 * single source for parsing, for `run --keys`, for configs/example.ini, for
 * the canonical text stored in the run's provenance, for the journal
 * compatibility text and for the phantom cohort's options file; one generic
 * parser (parse_value) converts every value.
 *
 * Strictness: unknown sections and keys are errors (a misspelt key silently
 * falling back to its default would make a run quietly do something else);
 * every value is checked as soon as it is set, whole string (no trailing
 * junk), range and choices, and a bad one is an error naming the key, the
 * value, what is allowed and where it came from (file:line or --set); a key
 * given twice in the file is an error naming both lines, and so is a key
 * given twice on the command line, while --set over a file value is what
 * --set is for. Values are kept as the text given (the canonical provenance
 * text is that text); hv_run_config_params converts them.
 *
 * Why our own INI reader and not libinih's ini_parse: libinih (Debian 12,
 * r55) reads lines into a 200-byte buffer, so a longer line (a long dataset
 * path) is cut and its rest parsed as another line; an indented line is
 * silently appended to the previous key's value (multi-line values); and it
 * reports no line number to the handler. The format we read is the subset
 * the shipped configs use: [section], key = value, whole-line comments
 * starting with ';' or '#', inline comments starting with ';' after
 * whitespace (as libinih), a UTF-8 byte-order mark, CRLF line ends.
 *
 * Texts are built with hv_sbuf (growable), never in fixed buffers.
 *
 * The parser is not tied to the run's table: a configuration carries the
 * table it was made for (hv_run_config_new_table), so `train` has its own
 * keys (train_config.c) with the same strictness, messages and --set.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* ------------------------------------------------------------ string builder */

void hv_sbuf_printf(hv_sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        va_end(ap2);
        return;
    }
    size_t need = b->len + (size_t)n + 1;
    if (need > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < need) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            va_end(ap2);
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

char *hv_sbuf_take(hv_sbuf *b)
{
    char *s = NULL;
    if (!b->oom) s = b->s ? b->s : hv_strdup("");
    else free(b->s);
    memset(b, 0, sizeof *b);
    return s;
}

void hv_sbuf_free(hv_sbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- the table */

static const char *const ch_source[] = {"phantom", "dataset", "manifest", NULL};
static const char *const ch_orient[] = {"ras", "lps", "pir", "oblique", NULL}; /* hv_phantom_orient */
static const char *const ch_synth[] = {"baseline", "gan", "aotgan", NULL};
static const char *const ch_onoff[] = {"off", "on", NULL};
static const char *const ch_fallback[] = {"baseline", "none", NULL};
static const char *const ch_astore[] = {"none", "summary", "full", NULL};
static const char *const ch_crops[] = {"none", "masks", "full", NULL};
static const char *const ch_grader[] = {"auto", "svm", "rule", "senet3d", NULL};
static const char *const ch_shrink[] = {"1", "2", "4", NULL};
static const char *const ch_solver[] = {"auto", "libsvm", "liblinear", NULL};
static const char *const ch_images[] = {"none", "qc", "full", NULL};
static const char *const ch_order[] = {"largest", "index", NULL};
static const char *const ch_precision[] = {"fp32", "bf16", NULL}; /* hv_nn_precision */

#define FIELD(f) .offset = offsetof(hv_run_params, f), .size = sizeof(((hv_run_params *)0)->f)
#define RES .results = 1
#define RES_NEW .results = 2 /* results, added later: see hv_run_key */

static const hv_run_key keys[] = {
    {"input", "source", "phantom",
     "where the cases come from: phantom (generate a cohort into output.dir/cohort "
     "first), dataset (input.dataset) or manifest (input.manifest)",
     HV_KEY_CHOICE, .choices = ch_source, RES, FIELD(source)},
    {"input", "dataset", "",
     "dataset root when source = dataset: reference layout <root>/raw/<id>/<id>.nii.gz + "
     "<id>_msk.nii.gz, or VerSe's rawdata/ + derivatives/ layout",
     HV_KEY_PATH, RES, FIELD(dataset)},
    {"input", "manifest", "",
     "CSV listing the cases when source = manifest: header id,ct,mask[,centroids][,split]"
     "[,grades], relative paths from the CSV's folder; every row is checked before the run "
     "starts (docs/architecture.md, Inputs)",
     HV_KEY_PATH, RES_NEW, FIELD(manifest)},
    {"input", "split", "",
     "split JSON {train|val|test: {<case>_<label>: grade}}; empty: the phantom's own "
     "split.json, a manifest's split and grades columns, or none for a dataset (then the "
     "Genant rule grades); not together with a manifest that has grades",
     HV_KEY_PATH, RES, FIELD(split)},
    {"input", "check_headers", "0",
     "1: validate every NIfTI header while building the manifest (inflates every .gz once)",
     HV_KEY_BOOL, FIELD(check_headers)},
    {"phantom", "cases", "24", "number of phantom cases", HV_KEY_INT, 1, 10000000, RES,
     FIELD(pcases)},
    {"phantom", "seed", "1", "phantom seed (the cohort is identical for the same options)",
     HV_KEY_INT, 0, 2147483647.0, RES, FIELD(pseed)},
    {"phantom", "first", "T1", "top vertebra of every phantom spine (level name)", HV_KEY_LEVEL,
     RES, FIELD(first_label)},
    {"phantom", "last", "L5", "bottom vertebra (level name)", HV_KEY_LEVEL, RES,
     FIELD(last_label)},
    {"phantom", "spacing", "1.0", "voxel spacing in mm: one value or sx,sy,sz", HV_KEY_DOUBLE3,
     0.1, 10, .min_open = 1, RES, FIELD(spacing)},
    {"phantom", "orientation", "ras", "voxel grid: ras, lps, pir or oblique", HV_KEY_CHOICE,
     .choices = ch_orient, RES, FIELD(orientation)},
    {"phantom", "fracture_rate", "0.15", "probability that a vertebra is fractured",
     HV_KEY_DOUBLE, 0, 1, RES, FIELD(fracture_rate)},
    {"phantom", "scoliosis_rate", "0.3", "probability that a spine is scoliotic", HV_KEY_DOUBLE,
     0, 1, RES, FIELD(scoliosis_rate)},
    {"phantom", "noise_hu", "20", "CT noise sigma in HU", HV_KEY_DOUBLE, 0, 1000, RES,
     FIELD(noise_hu)},
    {"measure", "min_volume_ml", "3", "labels with a smaller body are flagged small",
     HV_KEY_DOUBLE, 0, 1000, RES, FIELD(min_volume_ml)},
    {"measure", "lateral_rays", "5", "parasagittal rays per region (odd)", HV_KEY_INT, 1, 99,
     RES, FIELD(lateral_rays)},
    {"measure", "lateral_frac", "0.12", "rays span +- this fraction of the body width",
     HV_KEY_DOUBLE, 0, 0.5, RES, FIELD(lateral_frac)},
    {"measure", "map_step_mm", "1", "grid step of the height maps, mm", HV_KEY_DOUBLE, 0.1, 10,
     RES, FIELD(map_step_mm)},
    {"measure", "deform_thresh", "0.12",
     "baseline: a neighbour with RHLV above this is not used as a reference", HV_KEY_DOUBLE, 0,
     1, RES, FIELD(deform_thresh)},
    {"measure", "max_ref_distance", "3", "baseline: search at most this many levels away",
     HV_KEY_INT, 1, 25, RES, FIELD(max_ref_distance)},
    {"measure", "use_centroids", "1",
     "1: use the case's centroid JSON (when present) for the spine axis", HV_KEY_BOOL, RES,
     FIELD(use_centroids)},
    {"synthesis", "method", "baseline",
     "pseudo-healthy synthesis: baseline (neighbour heights, no model), gan (the two-stage "
     "generator of synthesis.model, spec 8; docs/model.md, Synthesis) or aotgan (AOT-GAN's "
     "generator trained with train.generator = aotgan, the same steps; issue 15)",
     HV_KEY_CHOICE, .choices = ch_synth, RES, FIELD(synth)},
    {"synthesis", "model", "",
     "method = gan: the sagittal generator (a model file: healthivert train's export or "
     "scripts/pth_to_hv.py); relative paths from the working folder, like every path key. "
     "Opened once per rank before the run starts: a missing or wrong file stops the run there",
     HV_KEY_PATH, RES_NEW, FIELD(synth_model)},
    {"synthesis", "model_coronal", "",
     "method = gan: the coronal generator (optional; empty: sagittal only); fused with the "
     "sagittal one (docs/model.md)",
     HV_KEY_PATH, RES_NEW, FIELD(synth_model_coronal)},
    {"synthesis", "batch", "8",
     "method = gan: slices per generator call (1 = the reference's slice-by-slice loop; the "
     "results do not depend on it)",
     HV_KEY_INT, 1, 256, FIELD(synth_batch)},
    {"synthesis", "neighbours", "1",
     "method = gan: 1 synthesizes the upper and lower neighbours first and feeds the target "
     "step their output (spec 8); 0 the target only (about 3x faster; not the reference's "
     "method)",
     HV_KEY_BOOL, RES_NEW, FIELD(synth_neighbours)},
    {"synthesis", "seg_threshold", "0.5",
     "method = gan: the synthesized vertebra is where the fine segmentation's probability "
     "exceeds this (0.5: the reference, spec 8; with two planes, their mean probability). "
     "Choose it from the training's val.csv (seg_threshold: the Dice-best threshold of the val "
     "items) or `healthivert train --validate-model`, never on the cases being evaluated "
     "(docs/model.md)",
     HV_KEY_DOUBLE, 0.01, 0.99, RES_NEW, FIELD(synth_seg_threshold)},
    {"synthesis", "nifti", "off",
     "method = gan: on writes the reference's CT_fake/<case>_<label>.nii.gz and "
     "label_fake/<case>_<label>.nii.gz under output.dir (float64, the reference's crop layout, "
     "zeros outside the synthesized slices) and label/<case>_<label>.nii.gz, the original label "
     "crop in that layout",
     HV_KEY_CHOICE, .choices = ch_onoff, RES_NEW, FIELD(synth_nifti)},
    {"synthesis", "crops", "none",
     "method = gan: what the store keeps of the synthesized crops: none, masks (the synthesized "
     "label crop of every vertebra, u8, /vertebrae/synth_label) or full (also the synthesized "
     "CT crop, /vertebrae/synth_ct, and the original crop it replaces, /vertebrae/orig_ct and "
     "orig_label: what reproduce's quality table compares with); crop layout 64 LR x 256 AP x 256 rows, one deflated chunk "
     "per vertebra, all zero for a vertebra flagged synth_fallback; `export` writes them as "
     "synth/<case>_<level>_label.nii.gz and _ct.nii.gz. With another method it has no effect, "
     "and a value other than none then draws a warning at the start",
     HV_KEY_CHOICE, .choices = ch_crops, RES_NEW, FIELD(synth_crops)},
    {"synthesis", "fallback", "baseline",
     "method = gan: what a vertebra gets where the synthesis fails or gives non-finite values: "
     "baseline (the neighbour estimate) or none (NaN); both flagged synth_fallback",
     HV_KEY_CHOICE, .choices = ch_fallback, RES_NEW, FIELD(synth_fallback)},
    {"synthesis", "precision", "fp32",
     "method = gan: the generator's convolutions in fp32 or bf16 (CPU with avx512_bf16 or AMX "
     "only; 1.2-2x faster, RHLV within ~1.6 points of fp32 on a phantom case; elsewhere, and on "
     "compute.device = cuda, bf16 stops the run before its first case; docs/model.md, Inference "
     "precision)",
     HV_KEY_CHOICE, .choices = ch_precision, RES_NEW, FIELD(synth_precision)},
    {"attention", "model", "",
     "the fracture classifier (a model file of hv_model_classifier_save_file or `healthivert "
     "train-classifier`); set: the attention stage runs after crop and makes a Grad-CAM++ map "
     "and a fracture probability per vertebra (spec 7), which the gan's HGAM input then uses "
     "(1 - CAM; empty: an all-ones input). Opened once per rank before the run starts: a "
     "missing or wrong file stops the run there; its size and CRC-32 are part of the run's "
     "settings (a resume with other weights is refused)",
     HV_KEY_PATH, RES_NEW, FIELD(attn_model)},
    {"attention", "store", "summary",
     "what the store keeps of the attention stage: none, summary (per vertebra p_fracture, the "
     "map's mass fraction in the target's body on the 30 slices and the slice of its maximum: "
     "columns of /vertebrae/table) or full (also the map itself, u8 x255, "
     "/vertebrae/cam; about 0.6 MiB per vertebra compressed); without attention.model it has "
     "no effect, and a value other than summary then draws a warning at the start",
     HV_KEY_CHOICE, .choices = ch_astore, RES_NEW, FIELD(attn_store)},
    {"attention", "batch", "30",
     "slices per classifier call (the 30 middle slices of a crop; results do not depend on "
     "it)",
     HV_KEY_INT, 1, 30, FIELD(attn_batch)},
    {"grader", "method", "auto",
     "auto (SVM protocol when the split has train, val and test, else the Genant rule), "
     "svm, rule, or senet3d (the 3-D SupCon-SENet of issue 15 in the SVM's protocol, trained "
     "on each vertebra's 64^3 box of its straightened crop, which the run then keeps in "
     "/vertebrae/crop3d; needs a split with train, val and test; docs/model.md, 3-D "
     "SupCon-SENet)",
     HV_KEY_CHOICE, .choices = ch_grader, FIELD(grader)},
    {"grader", "folds", "5", "SVM protocol: stratified folds over train+test", HV_KEY_INT, 2, 16,
     FIELD(folds)},
    {"grader", "seed", "0",
     "SVM protocol: seed for libsvm's rand(); senet3d: seed of the initial weights and the "
     "batches", HV_KEY_INT, 0, 2147483647.0, FIELD(gseed)},
    {"grader", "solver", "auto",
     "SVM protocol's solver: libsvm (the reference's SVC), liblinear (one-vs-one over "
     "liblinear's dual solver, linear in the rows; a few rows near a boundary may grade "
     "differently) or auto (liblinear above grader.liblinear_above train+test rows)",
     HV_KEY_CHOICE, .choices = ch_solver, FIELD(solver)},
    {"grader", "liblinear_above", "20000",
     "solver = auto: liblinear when the train+test rows exceed this (docs/measure.md, SVM "
     "solvers: libsvm's time grows about quadratically, ~3 s of CPU at 20,000 rows)",
     HV_KEY_INT, 0, 2147483647.0, FIELD(liblinear_above)},
    {"grader", "senet3d_width", "4",
     "senet3d: stem channels (layers of width, 2x, 4x, 8x)", HV_KEY_INT, 1, 256,
     FIELD(se_width)},
    {"grader", "senet3d_blocks", "1",
     "senet3d: SE basic blocks in each of the four layers (2: SE-ResNet-18)", HV_KEY_INT, 1, 16,
     FIELD(se_blocks)},
    {"grader", "senet3d_shrink", "2",
     "senet3d: the 64^3 box is averaged over shrink^3 voxels: 1 (64^3 input), 2 (32^3) or 4 "
     "(16^3)",
     HV_KEY_CHOICE, .choices = ch_shrink, FIELD(se_shrink)},
    {"grader", "senet3d_batch", "8",
     "senet3d: boxes per training step (SupCon contrasts the items of one batch)", HV_KEY_INT, 2,
     256, FIELD(se_batch)},
    {"grader", "senet3d_supcon_steps", "20",
     "senet3d: supervised contrastive pre-training steps per model (0: none)", HV_KEY_INT, 0,
     1000000, FIELD(se_supcon_steps)},
    {"grader", "senet3d_cls_steps", "40",
     "senet3d: classification (weighted cross entropy) steps per model", HV_KEY_INT, 1, 1000000,
     FIELD(se_cls_steps)},
    {"grader", "senet3d_lr_supcon", "0.001", "senet3d: Adam's learning rate in pre-training",
     HV_KEY_DOUBLE, 0, 10, .min_open = 1, FIELD(se_lr_supcon)},
    {"grader", "senet3d_lr_cls", "0.001", "senet3d: Adam's learning rate in classification",
     HV_KEY_DOUBLE, 0, 10, .min_open = 1, FIELD(se_lr_cls)},
    {"grader", "senet3d_temperature", "0.07", "senet3d: SupCon's temperature",
     HV_KEY_DOUBLE, 0, 100, .min_open = 1, FIELD(se_temperature)},
    {"grader", "retrain", "0",
     "senet3d: 1: train the networks again even when <output.dir>/senet3d_model.h5 was "
     "written by a training of the same settings and rows (0: a re-grade reuses it)",
     HV_KEY_BOOL, FIELD(se_retrain)},
    {"output", "dir", "runs/phantom",
     "output folder: store, journal/, cohort/ (phantom), CSV tables, PNG plots, summary.md",
     HV_KEY_PATH, FIELD(out_dir)},
    {"output", "store", "", "HDF5 store path; empty: <output.dir>/store.h5", HV_KEY_PATH,
     FIELD(store)},
    {"output", "images", "none",
     "per-vertebra images in the store: none, qc (height-loss map) or full "
     "(height-loss, measured and pseudo-healthy height maps); qc and full also run the "
     "spine stage and keep mid-sagittal/mid-coronal QC pictures of each vertebra's "
     "straightened crop (export --csv writes them as PNGs)",
     HV_KEY_CHOICE, .choices = ch_images, RES, FIELD(images)},
    {"prepare", "enabled", "0",
     "1: also write the GAN's training set: every cropped vertebra of every case into "
     "output.dir/prepare/<case>.h5, merged at the end into prepare.output "
     "(`healthivert prepare` sets it; docs/model.md)",
     HV_KEY_BOOL, RES_NEW, FIELD(prepare_enabled)},
    {"prepare", "output", "",
     "the training set file; empty: <output.dir>/train.h5", HV_KEY_PATH,
     FIELD(prepare_output)},
    {"prepare", "skip_fov", "1",
     "1: a vertebra touching the volume's border (cut by the field of view) is not a "
     "training target (recorded as skipped); it stays in its neighbours' crops",
     HV_KEY_BOOL, RES_NEW, FIELD(prepare_skip_fov)},
    {"run", "threads", "1",
     "OpenMP threads per rank for the per-case stages (0: leave OMP_NUM_THREADS alone)",
     HV_KEY_INT, 0, 1024, FIELD(threads)},
    {"run", "progress_interval", "10", "seconds between rank 0's overall progress lines",
     HV_KEY_DOUBLE, 0, 86400, FIELD(progress_interval)},
    {"run", "retry_failed", "0", "1: on resume, run failed cases again", HV_KEY_BOOL,
     FIELD(retry_failed)},
    {"run", "fresh", "0",
     "1: discard the journal of an earlier attempt and start over (otherwise resume)",
     HV_KEY_BOOL, FIELD(fresh)},
    {"run", "order", "largest", "case order: largest (estimated cost first) or index",
     HV_KEY_CHOICE, .choices = ch_order, FIELD(order)},
    {"run", "prefetch", "1",
     "1: read the next case's mask and CT on two helper threads while this case is "
     "computed (one case ahead: twice the volumes in memory); 0: read each case when it "
     "starts",
     HV_KEY_BOOL, FIELD(prefetch)},
    {"run", "shard_index", "0",
     "sharded runs (jobs/slurm/run-array.sbatch): this job runs the cases whose index % "
     "shard_count == shard_index",
     HV_KEY_INT, 0, 999999, FIELD(shard_index)},
    {"run", "shard_count", "1",
     "number of shards; > 1 writes output.dir/store-shard-KKKK.h5 and leaves grading to an "
     "unsharded run of the same config",
     HV_KEY_INT, 1, 1000000, FIELD(shard_count)},
    {"compute", "device", "auto",
     "where the networks run (the gan's generator, the attention classifier): auto (the CUDA "
     "backend when the program was built with CUDA and every rank has a usable GPU, else the "
     "CPU), cpu, or cuda (refused before the run starts when there is no usable GPU); each rank "
     "takes GPU (node-local rank mod GPUs per node); docs/nn.md, Placement",
     HV_KEY_CHOICE, .choices = hv_compute_choices, FIELD(compute_device)},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

/* A configuration over one key table: the run's (above) or another
 * command's (`train`: hv_train_config_keys), parsed by the same code.
 * Where a value came from, for messages. */
struct hv_run_config {
    const hv_run_key *keys; /* the table (static)                              */
    size_t n;               /* its length                                      */
    char **value;
    int *line;            /* line in `file` that set it; 0: not from the file */
    int *by_set;          /* 1: set by hv_run_config_set                     */
    char *file;           /* name of the file read, or NULL                  */
};

const hv_run_key *hv_run_config_keys(size_t *n)
{
    if (n) *n = N_KEYS;
    return keys;
}

static long key_index(const hv_run_config *c, const char *section, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i].section, section) && !strcmp(c->keys[i].key, key)) return (long)i;
    return -1;
}

static int section_known(const hv_run_config *c, const char *section)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i].section, section)) return 1;
    return 0;
}

/* ------------------------------------------------------------ value parsing */

void hv_run_key_allowed(const hv_run_key *k, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = 0;
    size_t len = 0;
    switch (k->type) {
    case HV_KEY_INT:
        snprintf(buf, cap, "an integer in [%.0f, %.0f]", k->min, k->max);
        break;
    case HV_KEY_DOUBLE:
        snprintf(buf, cap, "a number in %c%g, %g]", k->min_open ? '(' : '[', k->min, k->max);
        break;
    case HV_KEY_DOUBLE3:
        snprintf(buf, cap, "one number or three comma-separated numbers x,y,z, each in %c%g, %g]",
                 k->min_open ? '(' : '[', k->min, k->max);
        break;
    case HV_KEY_STRING:
        snprintf(buf, cap, "text of at most %zu characters", k->size - 1);
        break;
    case HV_KEY_PATH:
        snprintf(buf, cap, "a path of at most %zu characters", k->size - 1);
        break;
    case HV_KEY_BOOL:
        snprintf(buf, cap, "0 or 1");
        break;
    case HV_KEY_LEVEL:
        snprintf(buf, cap, "a vertebra level name: C1-C7, T1-T13 or L1-L6");
        break;
    case HV_KEY_CHOICE:
        len = (size_t)snprintf(buf, cap, "one of:");
        for (size_t i = 0; k->choices[i] && len < cap; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s %s", i ? "," : "", k->choices[i]);
        break;
    }
}

/* A decimal number, the whole text: no hex, no inf/nan, no spaces. */
static int parse_double(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !strchr(".eE+-", s[i])) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double x = strtod(tmp, &end);
    if (*end || end == tmp || errno == ERANGE || !isfinite(x)) return -1;
    *out = x;
    return 0;
}

static int in_range(const hv_run_key *k, double x)
{
    if (!(x <= k->max)) return 0;
    return k->min_open ? x > k->min : x >= k->min;
}

/* Parse `v` as a value of key k into dst (k->size bytes; NULL: check only).
 * 0 on success, -1 when the value is not allowed. */
static int parse_value(const hv_run_key *k, const char *v, void *dst)
{
    size_t n = strlen(v);
    switch (k->type) {
    case HV_KEY_INT:
    case HV_KEY_BOOL: {
        size_t i = (v[0] == '-' || v[0] == '+') ? 1 : 0;
        if (i == n) return -1;
        for (size_t j = i; j < n; j++)
            if (!isdigit((unsigned char)v[j])) return -1;
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (*end || errno == ERANGE) return -1;
        if (k->type == HV_KEY_BOOL) {
            if (strcmp(v, "0") && strcmp(v, "1")) return -1;
        } else if (!((double)x >= k->min && (double)x <= k->max)) {
            return -1;
        }
        if (dst) *(int *)dst = (int)x;
        return 0;
    }
    case HV_KEY_DOUBLE: {
        double x;
        if (parse_double(v, n, &x) || !in_range(k, x)) return -1;
        if (dst) *(double *)dst = x;
        return 0;
    }
    case HV_KEY_DOUBLE3: {
        double x[3];
        const char *p = v;
        int m = 0;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (m == 3 || parse_double(p, len, &x[m]) || !in_range(k, x[m])) return -1;
            m++;
            if (!comma) break;
            p = comma + 1;
        }
        if (m == 1) x[1] = x[2] = x[0];
        else if (m != 3) return -1;
        if (dst) memcpy(dst, x, sizeof x);
        return 0;
    }
    case HV_KEY_STRING:
    case HV_KEY_PATH:
        if (n >= k->size) return -1;
        if (dst) memcpy(dst, v, n + 1);
        return 0;
    case HV_KEY_LEVEL: {
        int l = hv_label_from_name(v);
        if (l <= 0) return -1;
        if (dst) *(int *)dst = l;
        return 0;
    }
    case HV_KEY_CHOICE:
        for (int i = 0; k->choices[i]; i++)
            if (!strcmp(v, k->choices[i])) {
                if (dst) *(int *)dst = i;
                return 0;
            }
        return -1;
    }
    return -1;
}

/* The value as quoted in a message: at most 80 characters of it. */
#define QUOTE_MAX 80

/* "PATH:LINE: " or "--set " in front of a message about key i. */
static void origin(const hv_run_config *c, size_t i, char *buf, size_t cap)
{
    if (c->by_set[i]) snprintf(buf, cap, "--set ");
    else if (c->line[i] && c->file) snprintf(buf, cap, "%s:%d: ", c->file, c->line[i]);
    else buf[0] = 0;
}

static hv_status bad_value(const char *where, const hv_run_key *k, const char *v)
{
    char allowed[256];
    hv_run_key_allowed(k, allowed, sizeof allowed);
    size_t n = strlen(v);
    if (n > QUOTE_MAX)
        return hv_error_set(HV_ERR_ARG, "%s%s.%s = '%.*s...' (%zu characters): expected %s",
                            *where ? where : "config ", k->section, k->key, QUOTE_MAX, v, n,
                            allowed);
    return hv_error_set(HV_ERR_ARG, "%s%s.%s = '%s': expected %s", *where ? where : "config ",
                        k->section, k->key, v, allowed);
}

/* ------------------------------------------------------------------ config */

hv_status hv_run_config_new_table(const hv_run_key *table, size_t n, hv_run_config **out)
{
    *out = NULL;
    hv_run_config *c = calloc(1, sizeof *c);
    if (!c) return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    c->keys = table;
    c->n = n;
    c->value = calloc(n ? n : 1, sizeof *c->value);
    c->line = calloc(n ? n : 1, sizeof *c->line);
    c->by_set = calloc(n ? n : 1, sizeof *c->by_set);
    if (!c->value || !c->line || !c->by_set) {
        hv_run_config_free(c);
        return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (parse_value(&table[i], table[i].def, NULL)) {
            hv_run_config_free(c);
            return hv_error_set(HV_ERR_INTERNAL, "config: the default of %s.%s is not valid",
                                table[i].section, table[i].key);
        }
        c->value[i] = hv_strdup(table[i].def);
        if (!c->value[i]) {
            hv_run_config_free(c);
            return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
        }
    }
    *out = c;
    return HV_OK;
}

hv_status hv_run_config_new(hv_run_config **out)
{
    return hv_run_config_new_table(keys, N_KEYS, out);
}

void hv_run_config_free(hv_run_config *c)
{
    if (!c) return;
    if (c->value)
        for (size_t i = 0; i < c->n; i++) free(c->value[i]);
    free(c->value);
    free(c->line);
    free(c->by_set);
    free(c->file);
    free(c);
}

/* Set one value; line > 0: from the file at that line, line == 0: --set. */
static hv_status set_value(hv_run_config *c, const char *section, const char *key,
                           const char *value, int line)
{
    char where[1200];
    if (line > 0) snprintf(where, sizeof where, "%s:%d: ", c->file ? c->file : "config", line);
    else snprintf(where, sizeof where, "--set ");
    long i = key_index(c, section, key);
    if (i < 0) {
        if (!section_known(c, section))
            return hv_error_set(HV_ERR_FORMAT, "%sunknown config section [%s]", where, section);
        if (c->keys != keys)
            return hv_error_set(HV_ERR_FORMAT,
                                "%sunknown config key '%s' in [%s] (--keys lists every key)",
                                where, key, section);
        return hv_error_set(HV_ERR_FORMAT,
                            "%sunknown config key '%s' in [%s] (configs/example.ini lists every key)",
                            where, key, section);
    }
    /* A value must mean the same when the canonical text (the journal's
     * config, hv_run_config_text, written "key = value") is read back as an
     * INI file, where a ';' at the start of a value or after a blank starts
     * a comment (found by fuzz_config; tests/fuzz/regress/config). */
    for (const char *v = value; *v; v++) {
        if (*v != ';') continue;
        const char *b = v;
        while (b > value && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b == value || b != v)
            return hv_error_set(HV_ERR_FORMAT,
                                "%s%s.%s: a ';' at the start of a value or after a blank starts "
                                "a comment in an INI file; got '%.*s'",
                                where, section, key, QUOTE_MAX, value);
    }
    if (line > 0 && c->line[i])
        return hv_error_set(HV_ERR_FORMAT, "%s%s.%s given twice (first on line %d)", where,
                            section, key, c->line[i]);
    if (line == 0 && c->by_set[i])
        return hv_error_set(HV_ERR_ARG, "--set %s.%s given twice on the command line", section,
                            key);
    if (parse_value(&c->keys[i], value, NULL)) return bad_value(where, &c->keys[i], value);
    char *v = hv_strdup(value);
    if (!v) return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    free(c->value[i]);
    c->value[i] = v;
    if (line > 0) c->line[i] = line;
    else c->by_set[i] = 1;
    return HV_OK;
}

/* Trim spaces and tabs from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

static hv_status parse_table(const hv_run_key *table, size_t n, const char *text, size_t len,
                             const char *name, hv_run_config **out)
{
    *out = NULL;
    hv_run_config *c = NULL;
    hv_status st = hv_run_config_new_table(table, n, &c);
    if (st != HV_OK) return st;
    const char *fname = name && *name ? name : "config";
    char *section = NULL, *k = NULL, *v = NULL;
    if (!(c->file = hv_strdup(fname))) {
        st = hv_error_set(HV_ERR_NOMEM, "config: out of memory");
        goto done;
    }
    if (memchr(text, 0, len)) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", fname);
        goto done;
    }
    const char *p = text, *end = text + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&ls, &le);
        if (ls == le || *ls == ';' || *ls == '#') continue;
        if (*ls == '[') {
            const char *close = memchr(ls, ']', (size_t)(le - ls));
            const char *after = close ? close + 1 : le;
            trim(&after, &le);
            if (!close || (after < le && *after != ';' && *after != '#')) {
                st = hv_error_set(HV_ERR_FORMAT, "%s:%d: malformed section header", fname, line);
                goto done;
            }
            const char *ss = ls + 1, *se = close;
            trim(&ss, &se);
            free(section);
            section = malloc((size_t)(se - ss) + 1);
            if (!section) {
                st = hv_error_set(HV_ERR_NOMEM, "config: out of memory");
                goto done;
            }
            memcpy(section, ss, (size_t)(se - ss));
            section[se - ss] = 0;
            if (!section_known(c, section)) {
                /* configs/reproduce-*.ini, verse*.ini: one file, two commands */
                if (!strcmp(section, "reproduce") || !strncmp(section, "reproduce.", 10))
                    st = hv_error_set(HV_ERR_FORMAT, "%s:%d: [%s] is read by `healthivert "
                                      "reproduce %s`, which runs this config once per method; "
                                      "`run` takes a config without it", fname, line, section,
                                      fname);
                else
                    st = hv_error_set(HV_ERR_FORMAT, "%s:%d: unknown config section [%s]", fname,
                                      line, section);
                goto done;
            }
            continue;
        }
        const char *eq = memchr(ls, '=', (size_t)(le - ls));
        if (!eq) {
            st = hv_error_set(HV_ERR_FORMAT,
                              "%s:%d: malformed line (expected key = value, [section] or a "
                              "comment starting with ';' or '#')",
                              fname, line);
            goto done;
        }
        const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
        trim(&ks, &ke);
        /* an inline comment: ';' after whitespace (as libinih) */
        for (const char *q = vs; q < ve; q++)
            if (*q == ';' && q > vs && (q[-1] == ' ' || q[-1] == '\t')) {
                ve = q;
                break;
            }
        trim(&vs, &ve);
        if (ks == ke) {
            st = hv_error_set(HV_ERR_FORMAT, "%s:%d: malformed line (no key before '=')", fname,
                              line);
            goto done;
        }
        if (!section) {
            st = hv_error_set(HV_ERR_FORMAT, "%s:%d: key '%.*s' before any [section]", fname,
                              line, (int)(ke - ks), ks);
            goto done;
        }
        free(k);
        free(v);
        k = malloc((size_t)(ke - ks) + 1);
        v = malloc((size_t)(ve - vs) + 1);
        if (!k || !v) {
            st = hv_error_set(HV_ERR_NOMEM, "config: out of memory");
            goto done;
        }
        memcpy(k, ks, (size_t)(ke - ks));
        k[ke - ks] = 0;
        memcpy(v, vs, (size_t)(ve - vs));
        v[ve - vs] = 0;
        if ((st = set_value(c, section, k, v, line)) != HV_OK) goto done;
    }
done:
    free(section);
    free(k);
    free(v);
    if (st != HV_OK) {
        hv_run_config_free(c);
        return st;
    }
    *out = c;
    return HV_OK;
}

/* Configs are small: a 1 MiB limit keeps a wrong path (a CT volume) from
 * being read whole. */
#define CONFIG_MAX_BYTES (1u << 20)

hv_status hv_run_config_parse(const char *text, size_t len, const char *name,
                              hv_run_config **out)
{
    return parse_table(keys, N_KEYS, text, len, name, out);
}

hv_status hv_run_config_parse_table(const hv_run_key *table, size_t n, const char *text,
                                    size_t len, const char *name, hv_run_config **out)
{
    return parse_table(table, n, text, len, name, out);
}

hv_status hv_run_config_load_table(const hv_run_key *table, size_t n, const char *path,
                                   hv_run_config **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    hv_status st = hv_file_read_all(path, "config", CONFIG_MAX_BYTES, &text, &len);
    if (st != HV_OK) return st;
    st = parse_table(table, n, text, len, path, out);
    free(text);
    return st;
}

hv_status hv_run_config_load(const char *path, hv_run_config **out)
{
    return hv_run_config_load_table(keys, N_KEYS, path, out);
}

hv_status hv_run_config_set(hv_run_config *c, const char *assignment)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1)
        return hv_error_set(HV_ERR_ARG, "--set expects section.key=value, got '%.*s'", QUOTE_MAX,
                            assignment);
    char section[64], key[64];
    size_t ls = (size_t)(dot - assignment), lk = (size_t)(eq - dot - 1);
    if (ls >= sizeof section || lk >= sizeof key)
        return hv_error_set(HV_ERR_ARG, "--set: name too long in '%.*s'", QUOTE_MAX, assignment);
    memcpy(section, assignment, ls);
    section[ls] = 0;
    memcpy(key, dot + 1, lk);
    key[lk] = 0;
    return set_value(c, section, key, eq + 1, 0);
}

const char *hv_run_config_get(const hv_run_config *c, const char *section, const char *key)
{
    long i = key_index(c, section, key);
    return i < 0 ? NULL : c->value[i];
}

hv_status hv_run_config_fill(const hv_run_config *c, void *dst, size_t size)
{
    memset(dst, 0, size);
    for (size_t i = 0; i < c->n; i++) {
        const hv_run_key *k = &c->keys[i];
        if (k->offset + k->size > size)
            return hv_error_set(HV_ERR_INTERNAL, "config: %s.%s lies outside the parameters",
                                k->section, k->key);
        if (parse_value(k, c->value[i], (char *)dst + k->offset)) {
            char where[1200];
            origin(c, i, where, sizeof where);
            return bad_value(where, k, c->value[i]);
        }
    }
    return HV_OK;
}

hv_status hv_run_config_params(const hv_run_config *c, hv_run_params *p)
{
    if (c->keys != keys)
        return hv_error_set(HV_ERR_INTERNAL, "config: not a run configuration");
    hv_status st = hv_run_config_fill(c, p, sizeof *p);
    if (st != HV_OK) return st;
    char w1[1200], w2[1200];
    long src = key_index(c, "input", "source"), ds = key_index(c, "input", "dataset");
    long od = key_index(c, "output", "dir");
    long si = key_index(c, "run", "shard_index"), sc = key_index(c, "run", "shard_count");
    if (p->source == 1 && !p->dataset[0]) {
        origin(c, (size_t)src, w1, sizeof w1);
        return hv_error_set(HV_ERR_ARG, "%sinput.source = dataset needs input.dataset", *w1 ? w1 : "config ");
    }
    (void)ds;
    if (p->source == 2 && !p->manifest[0]) {
        origin(c, (size_t)src, w1, sizeof w1);
        return hv_error_set(HV_ERR_ARG, "%sinput.source = manifest needs input.manifest", *w1 ? w1 : "config ");
    }
    if (!p->out_dir[0]) {
        origin(c, (size_t)od, w1, sizeof w1);
        return hv_error_set(HV_ERR_ARG, "%soutput.dir is empty", *w1 ? w1 : "config ");
    }
    if ((p->synth == 1 || p->synth == 2) && !p->synth_model[0]) {
        long sm = key_index(c, "synthesis", "method");
        origin(c, (size_t)sm, w1, sizeof w1);
        return hv_error_set(HV_ERR_ARG, "%ssynthesis.method = %s needs synthesis.model (a model "
                            "file)", *w1 ? w1 : "config ", ch_synth[p->synth]);
    }
    if (p->shard_index >= p->shard_count) {
        origin(c, (size_t)si, w1, sizeof w1);
        origin(c, (size_t)sc, w2, sizeof w2);
        return hv_error_set(HV_ERR_ARG,
                            "%srun.shard_index = %d must be below run.shard_count = %d%s%s",
                            *w1 ? w1 : "config ", p->shard_index, p->shard_count, w2[0] ? " (" : "",
                            w2[0] ? "set there too)" : "");
    }
    return HV_OK;
}

hv_status hv_run_config_check(const hv_run_config *c)
{
    hv_run_params *p = malloc(sizeof *p);
    if (!p) return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    hv_status st = hv_run_config_params(c, p);
    free(p);
    return st;
}

char *hv_run_config_text(const hv_run_config *c)
{
    hv_sbuf b = {0};
    const char *cur = "";
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(cur, c->keys[i].section)) {
            cur = c->keys[i].section;
            hv_sbuf_printf(&b, "%s[%s]\n", b.len ? "\n" : "", cur);
        }
        hv_sbuf_printf(&b, "%s = %s\n", c->keys[i].key, c->value[i]);
    }
    return hv_sbuf_take(&b);
}

char *hv_run_config_results_text(const hv_run_config *c)
{
    hv_sbuf b = {0};
    for (size_t i = 0; i < c->n; i++) {
        const hv_run_key *k = &c->keys[i];
        if (k->results == 1 || (k->results == 2 && strcmp(c->value[i], k->def)))
            hv_sbuf_printf(&b, "%s.%s=%s\n", k->section, k->key, c->value[i]);
    }
    return hv_sbuf_take(&b);
}

char *hv_run_config_section_text(const hv_run_config *c, const char *section)
{
    hv_sbuf b = {0};
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i].section, section))
            hv_sbuf_printf(&b, "%s=%s\n", c->keys[i].key, c->value[i]);
    return hv_sbuf_take(&b);
}
