/*
 * synth.c: model files for the synthesis (issue 12, spec 8; the contract is
 * hv/model.h "synthesis"): open a sagittal (and optionally a coronal)
 * generator, plan its inference graph, export a training checkpoint's
 * generator as a model file. The synthesis itself is synth_run.c.
 *
 * A model file is an hv_nn checkpoint holding one generator under the
 * reference's state_dict names, at /params (hv_model_synth_export,
 * scripts/pth_to_hv.py) or at /G/params (a training checkpoint of
 * hv_model_gan_save). Why the checks are done here and not left to
 * hv_nn_checkpoint_load: the width is not stored reliably (a converted .pth
 * file has no cnum), so it is read from the shape of the first convolution
 * (coarse_generator.conv1.conv.weight_orig is (cnum, 3, 5, 5)); then every
 * parameter of a generator of that width is probed for presence and shape
 * before anything is read, and a mismatch names the parameter and both
 * shapes (the engine's loader says only "has another shape"). Only then do
 * the engine's loaders read the values. The opening and the shape check are
 * model_file.c's, shared with the classifier's reader (gradcam.c); /meta
 * plane and step are read here.
 *
 * AOT-GAN's generator (issue 15; hv_model_aotgan_*) is the other kind a
 * model file may hold: told apart by its first convolution
 * (encoder.1.weight, (width, 3, 7, 7): img_ch 2 + the mask), its block count
 * read from the middle.<b>.fuse.1.weight present. Each opener says which
 * kind it takes (hv_model_synth_opts.generator; the model being filled for
 * hv_model_gan_load_generator) and refuses the other naming both.
 *
 * Spectral norm at inference: the reference evaluates in eval mode, where
 * PyTorch's spectral_norm does no power iteration and divides by
 * u^T W v with the stored u, v (spec 5 says one iteration per TRAINING
 * forward). The engine's inference graphs (plan flags 0) do exactly that,
 * folded once, so the stored u, v of the file are used as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "model_file.h"
#include "synth_internal.h"

#define FIRST_CONV "coarse_generator.conv1.conv.weight_orig"
#define AOT_FIRST_CONV "encoder.1.weight"

void hv_model_synth_opts_default(hv_model_synth_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->batch = 8;
    o->band_rows = 40;
    o->neighbour_min_px = 200;
    o->clean_min_px = 50;
    o->neighbours = 1;
    o->seg_threshold = 0.5;
}

static const char *plane_name(int plane)
{
    return plane == HV_SPINE_CORONAL ? "coronal" : "sagittal";
}

static const hv__model_kind GENERATOR = {
    .net = "generator", .ckpt_group = "G", .meta_kind = NULL, .first_conv = FIRST_CONV,
    .in_ch = 3, .ksize = 5, .even = 1, .first_needs = "[cnum, 3, 5, 5] with an even cnum >= 2",
    .width_name = "width cnum"};
static const hv__model_kind AOT_GENERATOR = {
    .net = "AOT-GAN generator", .ckpt_group = "G", .meta_kind = NULL, .first_conv = AOT_FIRST_CONV,
    .in_ch = 3, .ksize = 7, .even = 0,
    .first_needs = "[width, 3, 7, 7] (CT and label channels + the mask)", .width_name = "width"};

static const hv__model_kind *kind_of(int kind)
{
    return kind == HV_MODEL_GEN_AOTGAN ? &AOT_GENERATOR : &GENERATOR;
}

/* The generator kind in path: AOTGAN when its parameter group (/params, or
 * /G/params of a checkpoint; only the latter when need_g) holds AOT-GAN's
 * first convolution, else HEALTHIVERT (whose checks then say what is
 * wrong with a file that is neither). */
static int file_kind(const char *path, int need_g)
{
    int kind = HV_MODEL_GEN_HEALTHIVERT;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return kind;
    static const char *const groups[2] = {"params", "G/params"};
    for (int i = need_g ? 1 : 0; i < 2; i++) {
        const char *gn = groups[i];
        if (i == 1 && H5Lexists(f, "G", H5P_DEFAULT) <= 0) continue;
        if (H5Lexists(f, gn, H5P_DEFAULT) <= 0) continue;
        hid_t g = H5Gopen2(f, gn, H5P_DEFAULT);
        if (g >= 0) {
            if (H5Lexists(g, AOT_FIRST_CONV, H5P_DEFAULT) > 0) kind = HV_MODEL_GEN_AOTGAN;
            H5Gclose(g);
        }
        break; /* the group the opener reads (/params first) */
    }
    H5Fclose(f);
    return kind;
}

/* AOT-GAN's blocks in an open group: middle.<b>.fuse.1.weight for b = 0, 1, ... */
static int aot_blocks_in(hid_t gp)
{
    int b = 0;
    char nm[64];
    for (; b < 256; b++) {
        snprintf(nm, sizeof nm, "middle.%d.fuse.1.weight", b);
        if (H5Lexists(gp, nm, H5P_DEFAULT) <= 0) break;
    }
    return b;
}

static const char *method_of(int kind)
{
    return kind == HV_MODEL_GEN_AOTGAN ? "aotgan" : "gan";
}

/* A model file opened for reading: the generator's group and its width
 * (mf.width: cnum), and what the generator's /meta says. */
typedef struct model_file {
    hv__model_file mf; /* mf.in_ckpt: 1 /G/params (training checkpoint), 0 /params */
    char plane[64];    /* /meta plane, "sagittal" when absent */
    char step[64];     /* /meta step, "" when absent */
    int kind;          /* hv_model_generator_kind */
    int aot_blocks;    /* AOTGAN: blocks in the file */
} model_file;

/* String attribute `key` of /meta into buf; 0 absent, 1 read, -1 unreadable. */
static int meta_str(hid_t f, const char *key, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Lexists(f, "meta", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(f, "meta", H5P_DEFAULT);
    if (g < 0) return -1;
    int rc = 0;
    if (H5Aexists(g, key) > 0) {
        rc = -1;
        hid_t a = H5Aopen(g, key, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
        hid_t mt = -1;
        if (t >= 0 && H5Tget_class(t) == H5T_STRING && (mt = H5Tcopy(H5T_C_S1)) >= 0 &&
            H5Tset_cset(mt, H5Tget_cset(t)) >= 0) {
            if (H5Tis_variable_str(t) > 0) {
                char *vs = NULL;
                if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &vs) >= 0) {
                    snprintf(buf, len, "%s", vs ? vs : "");
                    rc = 1;
                }
                H5free_memory(vs);
            } else {
                size_t sz = H5Tget_size(t);
                char *tmp = calloc(sz + 1, 1);
                if (tmp && H5Tset_size(mt, sz) >= 0 && H5Aread(a, mt, tmp) >= 0) {
                    snprintf(buf, len, "%s", tmp);
                    rc = 1;
                }
                free(tmp);
            }
        }
        if (mt >= 0) H5Tclose(mt);
        if (t >= 0) H5Tclose(t);
        if (a >= 0) H5Aclose(a);
    }
    H5Gclose(g);
    return rc;
}

/* Open path (what = "sagittal model", "checkpoint", ...), find the
 * generator's group (only /G/params when need_g) and its width
 * (model_file.c), then /meta plane and step. */
static hv_status model_file_open(const char *path, const char *pfx, int need_g, model_file *m)
{
    memset(m, 0, sizeof *m);
    m->kind = file_kind(path, need_g);
    hv_status st = hv__model_file_open(path, pfx, kind_of(m->kind), need_g, &m->mf);
    if (st != HV_OK) return st;
    if (m->kind == HV_MODEL_GEN_AOTGAN && (m->aot_blocks = aot_blocks_in(m->mf.gp)) < 1) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': an AOT-GAN generator without blocks (no "
                          "middle.0.fuse.1.weight)", pfx, path);
        goto done;
    }
    char buf[64];
    int rc = meta_str(m->mf.f, "plane", buf, sizeof buf);
    if (rc < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': /meta plane unreadable", pfx, path);
        goto done;
    }
    snprintf(m->plane, sizeof m->plane, "%s", rc ? buf : "sagittal");
    if (strcmp(m->plane, "sagittal") && strcmp(m->plane, "coronal")) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': /meta plane is '%s' (sagittal or coronal)", pfx,
                          path, m->plane);
        goto done;
    }
    if (meta_str(m->mf.f, "step", m->step, sizeof m->step) <= 0) m->step[0] = '\0';
done:
    if (st != HV_OK) hv__model_file_close(&m->mf);
    return st;
}

/* The generator's values into ps (shapes already checked): from /G/params
 * of a training checkpoint (in_g) or /params of a model file. */
static hv_status load_values(const char *path, int in_g, hv_nn_params *ps)
{
    if (!in_g) return hv_nn_checkpoint_load(path, ps, NULL, 1);
    const char *gn[1] = {"G"};
    hv_nn_params *pss[1] = {ps};
    return hv_nn_checkpoint_load_groups(path, 1, gn, pss, NULL);
}

/* The generator of path into a new parameter set (*ps owned by the caller). */
static hv_status read_generator(const char *path, const char *what, int need_g, model_file *m,
                                hv_nn_params **ps_out)
{
    *ps_out = NULL;
    hv_nn_params *ps = NULL;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char pfx[96];
    snprintf(pfx, sizeof pfx, "model synth: %s file", what);
    hv_status st = model_file_open(path, pfx, need_g, m);
    if (st != HV_OK) goto done;
    hv_rng rng;
    hv_rng_seed(&rng, 0, 0); /* values are overwritten by the file's */
    if ((st = hv_nn_params_create(&ps))) goto done;
    st = m->kind == HV_MODEL_GEN_AOTGAN
             ? hv_model_aotgan_params(ps, 2, m->mf.width, m->aot_blocks, &rng)
             : hv_model_generator_params(ps, m->mf.width, &rng);
    if (st != HV_OK) goto done;
    st = hv__model_file_check_shapes(&m->mf, path, pfx, kind_of(m->kind), ps);
    const int in_g = m->mf.in_ckpt;
    hv__model_file_close(&m->mf);
    if (st != HV_OK) goto done;
    st = load_values(path, in_g, ps);
    if (st != HV_OK) hv_error_wrap(st, "model synth: %s file '%s'", what, path);
done:
    hv__model_file_close(&m->mf);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (st != HV_OK) hv_nn_params_free(ps);
    else *ps_out = ps;
    return st;
}

hv_status hv_model_gan_load_generator(hv_model_gan *m, const char *path, char *plane_out,
                                      size_t plane_cap)
{
    if (!m || !path) return hv_error_set(HV_ERR_ARG, "model gan load generator: bad arguments");
    hv_nn_params *g = hv_model_gan_params(m, 0);
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *pfx = "model gan: generator file";
    model_file mf;
    hv_status st = model_file_open(path, pfx, 0, &mf);
    if (st != HV_OK) goto done;
    const int kind = hv_nn_params_find(g, AOT_FIRST_CONV) ? HV_MODEL_GEN_AOTGAN : HV_MODEL_GEN_HEALTHIVERT;
    if (mf.kind != kind) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds a %s generator, the model being filled is "
                          "a %s one (train.generator = %s)", pfx, path,
                          hv_model_generator_kind_name(mf.kind), hv_model_generator_kind_name(kind),
                          hv_model_generator_kind_name(kind));
        hv__model_file_close(&mf.mf);
        goto done;
    }
    if (kind == HV_MODEL_GEN_AOTGAN) {
        /* the shapes below check the model's parameters only: a file with more
         * blocks would pass them */
        int mine = 0;
        char nm[64];
        for (;; mine++) {
            snprintf(nm, sizeof nm, "middle.%d.fuse.1.weight", mine);
            if (!hv_nn_params_find(g, nm)) break;
        }
        if (mine != mf.aot_blocks) {
            st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds an AOT-GAN generator of %d blocks, the "
                              "model being filled has %d (train.aot_blocks)", pfx, path,
                              mf.aot_blocks, mine);
            hv__model_file_close(&mf.mf);
            goto done;
        }
    }
    /* the width first (read from the first convolution, as for the file),
     * then every shape: a file of this width may still miss a parameter */
    const hv_nn_param *c1 = hv_nn_params_find(g, kind_of(kind)->first_conv);
    int64_t sh[HV_NN_MAX_DIMS];
    if (c1 && hv_nn_param_shape(c1, sh) == 4 && sh[0] != mf.mf.width && kind == HV_MODEL_GEN_AOTGAN) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds an AOT-GAN generator of width %d, the "
                          "model being filled has width %lld (train.cnum)", pfx, path,
                          mf.mf.width, (long long)sh[0]);
        hv__model_file_close(&mf.mf);
        goto done;
    }
    if (c1 && hv_nn_param_shape(c1, sh) == 4 && sh[0] != mf.mf.width) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds a generator of width cnum %d "
                          "(coarse_generator.conv1.conv.weight_orig is [%d, 3, 5, 5]), the model "
                          "being filled has cnum %lld ([%lld, 3, 5, 5])", pfx, path, mf.mf.width,
                          mf.mf.width, (long long)sh[0], (long long)sh[0]);
        hv__model_file_close(&mf.mf);
        goto done;
    }
    st = hv__model_file_check_shapes(&mf.mf, path, pfx, kind_of(kind), g);
    const int in_g = mf.mf.in_ckpt;
    hv__model_file_close(&mf.mf);
    if (st != HV_OK) goto done;
    st = load_values(path, in_g, g);
    if (st != HV_OK) hv_error_wrap(st, "%s '%s'", pfx, path);
    if (st == HV_OK && plane_out && plane_cap) snprintf(plane_out, plane_cap, "%s", mf.plane);
done:
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

static hv_status open_net(hv_model_synth *s, int plane, const char *path)
{
    char what[32];
    snprintf(what, sizeof what, "%s model", plane_name(plane));
    model_file m;
    hv__synth_net *n = &s->net[plane];
    hv_status st = read_generator(path, what, 0, &m, &n->ps);
    if (st != HV_OK) return st;
    if (m.kind != s->o.generator)
        return hv_error_set(HV_ERR_FORMAT, "model synth: '%s' holds a %s generator (%s), "
                            "synthesis.method = %s takes a %s one (%s)", path,
                            hv_model_generator_kind_name(m.kind), kind_of(m.kind)->first_conv,
                            method_of(s->o.generator), hv_model_generator_kind_name(s->o.generator),
                            kind_of(s->o.generator)->first_conv);
    n->kind = m.kind;
    n->aot_blocks = m.aot_blocks;
    if (strcmp(m.plane, plane_name(plane)))
        return hv_error_set(HV_ERR_FORMAT, "model synth: '%s' is a %s model (/meta plane), given as "
                            "the %s one", path, m.plane, plane_name(plane));
    n->cnum = m.mf.width;
    /* into the backend's memory (nothing moves on a host-memory backend) */
    if ((st = hv_nn_params_bind(n->ps, s->be)))
        return hv_error_wrap(st, "model synth: placing the %s generator", plane_name(plane));
    if ((st = hv_nn_graph_create(&n->g))) return st;
    if (n->kind == HV_MODEL_GEN_AOTGAN) {
        const int64_t in2[4] = {s->o.batch, 2, HV__SYNTH_ROWS, HV__SYNTH_COLS},
                      in1[4] = {s->o.batch, 1, HV__SYNTH_ROWS, HV__SYNTH_COLS};
        n->ax = hv_nn_input(n->g, "x", 4, in2);
        n->amask = hv_nn_input(n->g, "mask", 4, in1);
        n->aout = hv_model_aotgan_build(n->g, n->ps, hv_model_aotgan_rates, n->ax, n->amask);
        if (!n->aout) {
            st = hv_nn_graph_status(n->g);
            st = st ? st : HV_ERR_INTERNAL;
        } else {
            hv_nn_set_output(n->aout);
        }
    } else {
        st = hv_model_generator_build(n->g, n->ps, n->cnum, s->o.batch, HV__SYNTH_ROWS, HV__SYNTH_COLS,
                                      &n->io);
    }
    if (st == HV_OK) st = hv_nn_graph_plan(n->g, s->be, 0);
    if (st != HV_OK)
        return hv_error_wrap(st, "model synth: planning the %s generator (cnum %d, batch %lld)",
                             plane_name(plane), n->cnum, (long long)s->o.batch);
    return HV_OK;
}

hv_status hv_model_synth_open(const char *sagittal_path, const char *coronal_path,
                              const hv_model_synth_opts *o, hv_nn_backend *be,
                              hv_model_synth **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "model synth open: NULL output");
    *out = NULL;
    if (!sagittal_path || !be)
        return hv_error_set(HV_ERR_ARG, "model synth open: %s", !be ? "no backend"
                                                                    : "no sagittal model path");
    hv_model_synth_opts def;
    if (!o) {
        hv_model_synth_opts_default(&def);
        o = &def;
    }
    if (o->batch < 1 || o->batch > 4096)
        return hv_error_set(HV_ERR_ARG, "model synth open: batch %lld outside 1..4096",
                            (long long)o->batch);
    if (o->band_rows < 2 || o->band_rows > HV__SYNTH_ROWS)
        return hv_error_set(HV_ERR_ARG, "model synth open: band_rows %lld outside 2..%d",
                            (long long)o->band_rows, HV__SYNTH_ROWS);
    if (!(o->seg_threshold > 0 && o->seg_threshold < 1))
        return hv_error_set(HV_ERR_ARG, "model synth open: segmentation threshold %g outside (0, 1)",
                            o->seg_threshold);
    if (o->neighbour_min_px < 0 || o->clean_min_px < 0)
        return hv_error_set(HV_ERR_ARG, "model synth open: negative pixel thresholds");
    if (!hv_model_generator_kind_name(o->generator))
        return hv_error_set(HV_ERR_ARG, "model synth open: generator kind %d (0 healthivert, 1 "
                            "aotgan)", o->generator);
    hv_model_synth *s = calloc(1, sizeof *s);
    if (!s) return hv_error_set(HV_ERR_NOMEM, "model synth open: out of memory");
    s->o = *o;
    s->be = be;
    hv_status st = open_net(s, HV_SPINE_SAGITTAL, sagittal_path);
    if (st == HV_OK && coronal_path) st = open_net(s, HV_SPINE_CORONAL, coronal_path);
    if (st != HV_OK) goto fail;
    const size_t pl = (size_t)(o->batch * HV__SYNTH_ROWS * HV__SYNTH_COLS), nb = (size_t)o->batch;
    float **planes[6] = {&s->in_x, &s->in_mask, &s->in_cam, &s->in_ratio, &s->out_xs2, &s->out_fseg};
    for (int i = 0; i < 6; i++)
        if (!(*planes[i] = malloc(pl * sizeof(float)))) goto nomem;
    if (!(s->out_chk = malloc(pl * sizeof(float))) || !(s->out_p1 = malloc(nb * sizeof(float))) ||
        !(s->out_p2 = malloc(nb * sizeof(float))))
        goto nomem;
    if (o->generator == HV_MODEL_GEN_AOTGAN && !(s->aot_io = malloc(2 * pl * sizeof(float))))
        goto nomem;
    *out = s;
    return HV_OK;
nomem:
    st = hv_error_set(HV_ERR_NOMEM, "model synth open: buffers for batch %lld", (long long)o->batch);
fail:
    hv_model_synth_free(s);
    return st;
}

void hv_model_synth_free(hv_model_synth *s)
{
    if (!s) return;
    for (int p = 0; p < 2; p++) {
        hv_nn_graph_free(s->net[p].g);
        hv_nn_params_free(s->net[p].ps);
    }
    free(s->in_x);
    free(s->in_mask);
    free(s->in_cam);
    free(s->in_ratio);
    free(s->out_xs2);
    free(s->out_fseg);
    free(s->out_chk);
    free(s->out_p1);
    free(s->out_p2);
    free(s->aot_io);
    free(s);
}

int hv_model_synth_cnum(const hv_model_synth *s)
{
    return s ? s->net[HV_SPINE_SAGITTAL].cnum : 0;
}

int hv_model_synth_generator(const hv_model_synth *s)
{
    return s ? s->net[HV_SPINE_SAGITTAL].kind : HV_MODEL_GEN_HEALTHIVERT;
}

int hv_model_synth_aot_blocks(const hv_model_synth *s)
{
    return s ? s->net[HV_SPINE_SAGITTAL].aot_blocks : 0;
}

int hv_model_synth_has_coronal(const hv_model_synth *s)
{
    return s && s->net[HV_SPINE_CORONAL].ps != NULL;
}

void hv_model_synth_set_trace(hv_model_synth *s, hv_model_synth_trace_fn fn, void *ctx)
{
    if (!s) return;
    s->trace = fn;
    s->trace_ctx = ctx;
}

hv_status hv_model_synth_export(const char *ckpt_path, const char *plane, const char *out_path)
{
    if (!ckpt_path || !plane || !out_path)
        return hv_error_set(HV_ERR_ARG, "model synth export: NULL argument");
    if (strcmp(plane, "sagittal") && strcmp(plane, "coronal"))
        return hv_error_set(HV_ERR_ARG, "model synth export: plane '%s' (sagittal or coronal)", plane);
    model_file m;
    hv_nn_params *ps = NULL;
    hv_status st = read_generator(ckpt_path, "training checkpoint", 1, &m, &ps);
    if (st != HV_OK) return st;
    char cnum[32], blocks[32];
    snprintf(cnum, sizeof cnum, "%d", m.mf.width);
    snprintf(blocks, sizeof blocks, "%d", m.aot_blocks);
    const char *kv[] = {"format", "healthivert-generator", "plane", plane, "cnum", cnum,
                        "step", m.step[0] ? m.step : "unknown", "source", ckpt_path,
                        "exported_by", "hv_model_synth_export",
                        "generator", hv_model_generator_kind_name(m.kind), "aot_blocks", blocks};
    const size_t nkv = sizeof kv / sizeof kv[0] / 2 - (m.kind == HV_MODEL_GEN_AOTGAN ? 0 : 1);
    st = hv_nn_checkpoint_save(out_path, ps, NULL, kv, nkv);
    hv_nn_params_free(ps);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "model synth export: %s -> %s", ckpt_path, out_path);
}
