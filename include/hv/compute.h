/*
 * hv/compute.h: where one process's networks run, the CPU or a CUDA device
 * (compute.device = auto | cpu | cuda of `run`, `train` and
 * `train-classifier`; --device of `measure --synth gan` and `attention`).
 *
 * Part of hv_mpi, but nothing here calls MPI: the single-case commands call
 * hv_compute_open directly; the MPI commands pick per rank on top of
 * hv_compute_local_device (src/mpi/compute.c) so that both say and mean
 * the same. The choice, not a backend, is what hv_compute_open returns:
 * each model that needs a backend creates its own with hv_compute_backend
 * (a CUDA backend belongs to one thread).
 */
#ifndef HV_COMPUTE_H
#define HV_COMPUTE_H

#include <stddef.h>

#include "hv/core.h"
#include "hv/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A setting, as an index of hv_compute_choices */
enum { HV_COMPUTE_AUTO = 0, HV_COMPUTE_CPU = 1, HV_COMPUTE_CUDA = 2 };
extern const char *const hv_compute_choices[]; /* "auto", "cpu", "cuda", NULL */

/* The HV_COMPUTE_* of a setting's text; -1 when it is none of them. */
int hv_compute_parse(const char *s);

/* The device of the process that is node-local rank `local` (0 for a
 * single process): GPU (local mod device count), tried by creating and
 * freeing a CUDA backend on it. Returns its index, with a one-line `name`
 * ("gpu D of N"); or -1 with the reason in `why` (no device, the device
 * cannot start, or a build without CUDA). name and why are always
 * NUL-terminated (caller-owned buffers of ncap and wcap bytes, both > 0). */
int hv_compute_local_device(int local, char *name, size_t ncap, char *why, size_t wcap);

/* One process's choice. */
typedef struct hv_compute {
    int cuda;       /* 1: CUDA backends on `device`; 0: the CPU backend */
    int device;     /* the GPU's index, -1 on the CPU                   */
    char desc[96];  /* "cpu" or "cuda (gpu D of N)"                     */
} hv_compute;

/* A single process's choice for `setting` (HV_COMPUTE_*), said in one info
 * log line; `key` names the setting in that line and in errors (e.g.
 * "--device"). cuda without a usable device, or in a build without CUDA,
 * is HV_ERR_ARG whose message names the key, says why and points at auto
 * and cpu; an unknown setting is HV_ERR_ARG too. Nothing is written. */
hv_status hv_compute_open(int setting, const char *key, hv_compute *out);

/* A new backend of the choice (*out owned by the caller, freed with
 * hv_nn_backend_free); c NULL or c->cuda 0: the CPU backend. */
hv_status hv_compute_backend(const hv_compute *c, hv_nn_backend **out);

#ifdef __cplusplus
}
#endif
#endif /* HV_COMPUTE_H */
