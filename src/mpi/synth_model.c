/*
 * synth_model.c: the generator(s) of synthesis.method = gan for a run.
 *
 * Opened once per rank, before the run writes anything (no lock, journal or
 * store yet), and lent to every case the rank runs: loading and planning
 * the generator's graphs costs far more than one vertebra's synthesis, and
 * a missing or wrong model file must stop the run before its first case,
 * not fail every case with the same message. Every rank opens its own copy
 * (an hv_model_synth is not shareable between processes, and the ranks may
 * be on different nodes); the runner checks that all ranks succeeded.
 *
 * The provenance line names each file with its size and CRC-32 and the
 * width read from its weights, so a store says which weights made its
 * numbers even when the file at that path is later replaced (and bf16 when
 * synthesis.precision asked for it: the numbers then differ slightly).
 *
 * synthesis.precision = bf16 is set on the generator's backend before the
 * model is planned (hv_nn_backend_set_precision), so a CPU without
 * avx512_bf16/AMX, or a CUDA backend, stops the run before its first case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "run_internal.h"

hv_status hv_run_file_crc(const char *path, long long *size, unsigned long *crc)
{
    FILE *f = fopen(path, "rb");
    if (!f) return hv_error_set(HV_ERR_IO, "%s: cannot be read", path);
    unsigned char buf[1 << 16];
    unsigned long c = crc32(0L, Z_NULL, 0);
    long long n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)got);
        n += (long long)got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return hv_error_set(HV_ERR_IO, "%s: read error", path);
    *size = n;
    *crc = c;
    return HV_OK;
}

hv_status hv_run_synth_open(const hv_run_params *k, const hv_mpi_compute *c, hv_run_synth *out)
{
    hv_status st;
    memset(out, 0, sizeof *out);
    if (k->synth != 1 && k->synth != 2) return HV_OK; /* gan, aotgan */
    const char *sag = k->synth_model, *cor = k->synth_model_coronal[0] ? k->synth_model_coronal : NULL;
    if (!sag[0])
        return hv_error_set(HV_ERR_ARG, "synthesis.method = %s needs synthesis.model",
                            k->synth == 2 ? "aotgan" : "gan");
    if ((st = hv_file_check_regular(sag, "synthesis.model")) != HV_OK) return st;
    if (cor && (st = hv_file_check_regular(cor, "synthesis.model_coronal")) != HV_OK) return st;
    long long sz[2] = {0, 0};
    unsigned long crc[2] = {0, 0};
    if ((st = hv_run_file_crc(sag, &sz[0], &crc[0])) != HV_OK) return hv_error_wrap(st, "synthesis.model");
    if (cor && (st = hv_run_file_crc(cor, &sz[1], &crc[1])) != HV_OK)
        return hv_error_wrap(st, "synthesis.model_coronal");
    if ((st = hv_mpi_compute_backend(c, &out->be)) != HV_OK) return st;
    /* before the model is planned: a CPU without bf16 stops the run here */
    if (k->synth_precision != HV_NN_FP32 &&
        (st = hv_nn_backend_set_precision(out->be, (hv_nn_precision)k->synth_precision)) != HV_OK) {
        hv_error_wrap(st, "synthesis.precision = %s", hv_nn_precision_name((hv_nn_precision)k->synth_precision));
        hv_run_synth_close(out);
        return st;
    }
    hv_model_synth_opts so;
    hv_model_synth_opts_default(&so);
    so.batch = k->synth_batch;
    so.neighbours = k->synth_neighbours;
    so.seg_threshold = k->synth_seg_threshold;
    so.generator = k->synth == 2 ? HV_MODEL_GEN_AOTGAN : HV_MODEL_GEN_HEALTHIVERT;
    st = hv_model_synth_open(sag, cor, &so, out->be, &out->model);
    if (st != HV_OK) {
        hv_error_wrap(st, "synthesis.model%s", cor ? " / synthesis.model_coronal" : "");
        hv_run_synth_close(out);
        return st;
    }
    out->fallback = k->synth_fallback == 0;
    out->crops = k->synth_crops;
    if (k->synth_nifti) snprintf(out->nifti_dir, sizeof out->nifti_dir, "%s", k->out_dir);
    int cnum = hv_model_synth_cnum(out->model);
    int n = snprintf(out->provenance, sizeof out->provenance,
                     "sagittal: %s (%lld bytes, crc32 %08lx), %s%d%s%s", sag, sz[0], crc[0],
                     k->synth == 2 ? "AOT-GAN width " : "cnum ", cnum,
                     k->synth_neighbours ? "" : ", target only (no neighbour steps)",
                     k->synth_precision == HV_NN_BF16 ? ", bf16 convolutions" : "");
    if (cor && n > 0 && (size_t)n < sizeof out->provenance)
        n += snprintf(out->provenance + n, sizeof out->provenance - (size_t)n,
                      "; coronal: %s (%lld bytes, crc32 %08lx)", cor, sz[1], crc[1]);
    /* a threshold other than the reference's is part of what made the numbers */
    if (k->synth_seg_threshold != 0.5 && n > 0 && (size_t)n < sizeof out->provenance)
        snprintf(out->provenance + n, sizeof out->provenance - (size_t)n,
                 "; segmentation threshold %g", k->synth_seg_threshold);
    return HV_OK;
}

void hv_run_synth_close(hv_run_synth *rs)
{
    if (!rs) return;
    hv_model_synth_free(rs->model);
    hv_nn_backend_free(rs->be);
    memset(rs, 0, sizeof *rs);
}
