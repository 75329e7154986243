/*
 * nifti_internal.h: what the three NIfTI files of src/io share (not API):
 * the constants, the datatype table, the decoded header, and the few
 * functions one file defines and another calls. nifti.c has the design
 * notes; nifti_read.c and nifti_write.c say what they add.
 */
#ifndef HV_NIFTI_INTERNAL_H
#define HV_NIFTI_INTERNAL_H

#include <stdint.h>
#include <zlib.h>

#include "hv/io.h"

/* -------------------------------------------------------------- constants */

#define NII1_HDR_SIZE 348
#define NII2_HDR_SIZE 540
#define HV_NII_SPACING_MIN 1e-3         /* voxel spacings accepted (mm): a */
#define HV_NII_SPACING_MAX 1e3          /* micrometre to a metre           */
#define NII_CHUNK (1u << 20)          /* bytes per read/convert/write step   */
#define DEFLATE_MAX_RATIO 1032u       /* 258-byte match in 2 bits            */
#define NII_FAST_MAX_DEFAULT (1ull << 30) /* largest raw buffer, fast path */

typedef struct nii_dtype {
    int code;
    int bits;
    const char *name;
    int supported;                    /* integer or real scalar              */
    int is_int, is_signed;
} nii_dtype;

/* The datatype of a NIfTI code, or NULL when the code is unknown. */
const nii_dtype *hv_io_nii_dtype_find(int code);

/* Everything the header says that we use, decoded to native types. */
typedef struct nii_hdr {
    hv_nifti_info info;
    const nii_dtype *dt;
    int hdr_size;
    double quatern[3], qoffset[3];
    double srow[3][4];
    int xyzt_units;
    int scaled;                       /* scl_slope is finite and non-zero    */
    double affine[4][4];
    uint64_t file_size;               /* on disk (compressed size for .gz)   */
} nii_hdr;

/* Read up to len bytes (*got: how many arrived). 0 on success or a clean
 * end of input, -1 on a stream error (details via gzerror). */
int hv_io_nii_gz_read_full(gzFile gz, void *buf, size_t len, size_t *got);
/* HV_ERR_FORMAT/HV_ERR_IO naming what failed and zlib's reason. */
hv_status hv_io_nii_gz_fail(const char *path, gzFile gz, const char *what);
/* Open `path` and read and validate its header into *h; the stream *gz
 * (owned by the caller: gzclose it) is left just after the header. */
hv_status hv_io_nii_open(const char *path, const hv_nifti_opts *opts, nii_hdr *h, gzFile *gz);
/* Bytes the data needs from the start of the file: vox_offset + data. */
uint64_t hv_io_nii_needed(const nii_hdr *h);
/* The error for a file that ends before its data does. */
hv_status hv_io_nii_short(const char *path, const nii_hdr *h, uint64_t have, const char *unit);
/* The NIfTI datatype code a volume dtype is written as by default. */
int hv_io_nii_default_datatype(hv_dtype dt);
/* Largest raw size for the libdeflate whole-buffer paths (read and write). */
uint64_t hv_io_nii_fast_max_bytes(void);

#endif /* HV_NIFTI_INTERNAL_H */
