/*
 * config.c: the run configuration (INI + "section.key=value" overrides).
 *
 * Every key is declared once in the table below with its default and help
 * text; that table is the single source for parsing, for `run --help`, for
 * configs/example.ini and for the canonical text stored in the run's
 * provenance. Unknown keys are errors: a misspelt key silently falling back
 * to its default would make a run quietly do something else. Values are kept
 * as text; the users (run.c) convert and range-check them.
 */
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

static const hv_run_key keys[] = {
    {"input", "source", "phantom",
     "where the cases come from: phantom (generate a cohort into output.dir/cohort "
     "first) or dataset (input.dataset)"},
    {"input", "dataset", "",
     "dataset root when source = dataset: reference layout <root>/raw/<id>/<id>.nii.gz + "
     "<id>_msk.nii.gz, or VerSe's rawdata/ + derivatives/ layout"},
    {"input", "split", "",
     "split JSON {train|val|test: {<case>_<label>: grade}}; empty: the phantom's own "
     "split.json, or none for a dataset (then the Genant rule grades)"},
    {"input", "check_headers", "0",
     "1: validate every NIfTI header while building the manifest (inflates every .gz once)"},
    {"phantom", "cases", "24", "number of phantom cases"},
    {"phantom", "seed", "1", "phantom seed (the cohort is identical for the same options)"},
    {"phantom", "first", "T1", "top vertebra of every phantom spine (level name)"},
    {"phantom", "last", "L5", "bottom vertebra (level name)"},
    {"phantom", "spacing", "1.0", "voxel spacing in mm: one value or sx,sy,sz"},
    {"phantom", "orientation", "ras", "voxel grid: ras, lps, pir or oblique"},
    {"phantom", "fracture_rate", "0.15", "probability that a vertebra is fractured"},
    {"phantom", "scoliosis_rate", "0.3", "probability that a spine is scoliotic"},
    {"phantom", "noise_hu", "20", "CT noise sigma in HU"},
    {"measure", "min_volume_ml", "3", "labels with a smaller body are flagged small"},
    {"measure", "lateral_rays", "5", "parasagittal rays per region (odd)"},
    {"measure", "lateral_frac", "0.12", "rays span +- this fraction of the body width"},
    {"measure", "map_step_mm", "1", "grid step of the height maps, mm"},
    {"measure", "deform_thresh", "0.12",
     "baseline: a neighbour with RHLV above this is not used as a reference"},
    {"measure", "max_ref_distance", "3", "baseline: search at most this many levels away"},
    {"measure", "use_centroids", "1",
     "1: use the case's centroid JSON (when present) for the spine axis"},
    {"synthesis", "method", "baseline",
     "pseudo-healthy synthesis: baseline (neighbour heights; the GAN plugs in here later)"},
    {"grader", "method", "auto",
     "auto (SVM protocol when the split has train, val and test, else the Genant rule), "
     "svm or rule"},
    {"grader", "folds", "5", "SVM protocol: stratified folds over train+test"},
    {"grader", "seed", "0", "SVM protocol: seed for libsvm's rand()"},
    {"output", "dir", "runs/phantom",
     "output folder: store, journal/, cohort/ (phantom), CSV tables, PNG plots, summary.md"},
    {"output", "store", "", "HDF5 store path; empty: <output.dir>/store.h5"},
    {"output", "images", "none",
     "per-vertebra images in the store: none, qc (height-loss map) or full "
     "(height-loss, measured and pseudo-healthy height maps); qc and full also run the "
     "spine stage and keep mid-sagittal/mid-coronal QC pictures of each vertebra's "
     "straightened crop (export --csv writes them as PNGs)"},
    {"run", "threads", "1",
     "OpenMP threads per rank for the per-case stages (0: leave OMP_NUM_THREADS alone)"},
    {"run", "progress_interval", "10", "seconds between rank 0's overall progress lines"},
    {"run", "retry_failed", "0", "1: on resume, run failed cases again"},
    {"run", "fresh", "0",
     "1: discard the journal of an earlier attempt and start over (otherwise resume)"},
    {"run", "order", "largest", "case order: largest (estimated cost first) or index"},
    {"run", "shard_index", "0",
     "sharded runs (jobs/slurm/run-array.sbatch): this job runs the cases whose index % "
     "shard_count == shard_index"},
    {"run", "shard_count", "1",
     "number of shards; > 1 writes output.dir/store-shard-KKKK.h5 and leaves grading to an "
     "unsharded run of the same config"},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

struct hv_run_config {
    char *value[N_KEYS];
};

const hv_run_key *hv_run_config_keys(size_t *n)
{
    if (n) *n = N_KEYS;
    return keys;
}

static long key_index(const char *section, const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) return (long)i;
    return -1;
}

static int section_known(const char *section)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].section, section)) return 1;
    return 0;
}

hv_status hv_run_config_new(hv_run_config **out)
{
    *out = NULL;
    hv_run_config *c = calloc(1, sizeof *c);
    if (!c) return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    for (size_t i = 0; i < N_KEYS; i++) {
        c->value[i] = hv_strdup(keys[i].def);
        if (!c->value[i]) {
            hv_run_config_free(c);
            return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
        }
    }
    *out = c;
    return HV_OK;
}

void hv_run_config_free(hv_run_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < N_KEYS; i++) free(c->value[i]);
    free(c);
}

static hv_status set_value(hv_run_config *c, const char *section, const char *key,
                           const char *value)
{
    long i = key_index(section, key);
    if (i < 0) {
        if (!section_known(section))
            return hv_error_set(HV_ERR_FORMAT, "unknown config section [%s]", section);
        return hv_error_set(HV_ERR_FORMAT,
                            "unknown config key '%s' in [%s] (configs/example.ini lists every key)",
                            key, section);
    }
    char *v = hv_strdup(value);
    if (!v) return hv_error_set(HV_ERR_NOMEM, "config: out of memory");
    free(c->value[i]);
    c->value[i] = v;
    return HV_OK;
}

typedef struct {
    hv_run_config *c;
    hv_status st;
    int line;
} parse_state;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    parse_state *ps = user;
    if (ps->st != HV_OK) return 0;
    ps->st = set_value(ps->c, section, name, value ? value : "");
    return ps->st == HV_OK;
}

hv_status hv_run_config_load(const char *path, hv_run_config **out)
{
    *out = NULL;
    hv_run_config *c = NULL;
    hv_status st = hv_run_config_new(&c);
    if (st != HV_OK) return st;
    parse_state ps = {c, HV_OK, 0};
    int rc = ini_parse(path, on_ini, &ps);
    if (rc < 0) {
        st = hv_error_set(HV_ERR_IO, "cannot read config '%s'", path);
    } else if (ps.st != HV_OK) {
        st = hv_error_wrap(ps.st, "%s", path);
    } else if (rc > 0) {
        st = hv_error_set(HV_ERR_FORMAT, "%s:%d: malformed line", path, rc);
    }
    if (st != HV_OK) {
        hv_run_config_free(c);
        return st;
    }
    *out = c;
    return HV_OK;
}

hv_status hv_run_config_set(hv_run_config *c, const char *assignment)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1)
        return hv_error_set(HV_ERR_ARG, "--set expects section.key=value, got '%s'", assignment);
    char section[64], key[64];
    size_t ls = (size_t)(dot - assignment), lk = (size_t)(eq - dot - 1);
    if (ls >= sizeof section || lk >= sizeof key)
        return hv_error_set(HV_ERR_ARG, "--set: name too long in '%s'", assignment);
    memcpy(section, assignment, ls);
    section[ls] = 0;
    memcpy(key, dot + 1, lk);
    key[lk] = 0;
    return set_value(c, section, key, eq + 1);
}

const char *hv_run_config_get(const hv_run_config *c, const char *section, const char *key)
{
    long i = key_index(section, key);
    return i < 0 ? NULL : c->value[i];
}

char *hv_run_config_text(const hv_run_config *c)
{
    size_t cap = 64;
    for (size_t i = 0; i < N_KEYS; i++)
        cap += strlen(keys[i].section) + strlen(keys[i].key) + strlen(c->value[i]) + 8;
    char *t = malloc(cap);
    if (!t) return NULL;
    size_t len = 0;
    const char *cur = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(cur, keys[i].section)) {
            cur = keys[i].section;
            len += (size_t)snprintf(t + len, cap - len, "%s[%s]\n", len ? "\n" : "", cur);
        }
        len += (size_t)snprintf(t + len, cap - len, "%s = %s\n", keys[i].key, c->value[i]);
    }
    return t;
}
