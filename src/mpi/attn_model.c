/*
 * attn_model.c: the fracture classifier of attention.model for a run.
 *
 * Opened once per rank before the run writes anything, exactly as the
 * gan's generator (synth_model.c says why): loading and planning the
 * Grad-CAM++ graph costs more than a vertebra, and a missing or wrong file
 * (a GAN model given as a classifier, say) must stop the run before its
 * first case with the same answer on every rank (the runner checks), not
 * fail every case with the same message.
 *
 * The provenance line names the file with its size and CRC-32 and the
 * width read from its weights; the runner adds it to the journal's
 * settings (a resume with other weights at the same path is refused) and
 * to the store's /provenance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

hv_status hv_run_attn_open(const hv_run_params *k, const hv_mpi_compute *c, hv_run_attn *out)
{
    hv_status st;
    memset(out, 0, sizeof *out);
    if (!k->attn_model[0]) return HV_OK;
    const char *path = k->attn_model;
    if ((st = hv_file_check_regular(path, "attention.model")) != HV_OK) return st;
    long long sz = 0;
    unsigned long crc = 0;
    if ((st = hv_run_file_crc(path, &sz, &crc)) != HV_OK) return hv_error_wrap(st, "attention.model");
    if ((st = hv_mpi_compute_backend(c, &out->be)) != HV_OK) return st;
    st = hv_model_cam_open(path, k->attn_batch, out->be, &out->model);
    if (st != HV_OK) {
        hv_error_wrap(st, "attention.model");
        hv_run_attn_close(out);
        return st;
    }
    out->store = k->attn_store;
    snprintf(out->provenance, sizeof out->provenance, "%s (%lld bytes, crc32 %08lx), width %d",
             path, sz, crc, hv_model_cam_width(out->model));
    return HV_OK;
}

void hv_run_attn_close(hv_run_attn *ra)
{
    if (!ra) return;
    hv_model_cam_free(ra->model);
    hv_nn_backend_free(ra->be);
    memset(ra, 0, sizeof *ra);
}
