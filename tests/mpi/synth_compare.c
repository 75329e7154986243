/*
 * synth_compare.c: test tool for tests/mpi/test_gan.sh: the synthesized
 * crops a run's store holds (/vertebrae/synth_label and, when present,
 * synth_ct) against the reference-layout NIfTI files the same run wrote
 * (synthesis.nifti = on: DIR/label_fake/ and DIR/CT_fake/<case>_<label>
 * .nii.gz).
 *
 *   synth_compare STORE DIR
 *
 * For every vertebra of every done case:
 *  - a slot holding a crop: its label_fake file exists, and on every LR
 *    slice the file is either all zero (a slice not synthesized: spec 8
 *    writes zeros there) or equal voxel for voxel to the stored label crop
 *    read through the reference layout (row r, AP c, LR s of the file is
 *    crop voxel (s, C-1-c, R-1-r)), with at least one synthesized slice;
 *    with synth_ct, CT_fake on those same synthesized slices is the stored
 *    byte before its uint8 cast (stored == the float64 value truncated,
 *    clamped to 0..255), and zero on the others;
 *  - with the original crops (/vertebrae/orig_ct, orig_label: full since
 *    journal layout 7): orig_label is the target of the label/ file (the
 *    original label crop in the reference layout): the vertebra's label
 *    where the file holds it, 0 elsewhere, every voxel; orig_ct equals
 *    synth_ct on every LR slice not synthesized (synth_ct holds the input
 *    crop's CT there, truncated the same way), and holds the target's CT
 *    somewhere (not all zero);
 *  - a slot without one (all zero): the vertebra is flagged synth_fallback
 *    and has no label_fake file, and the original crops' slots are empty.
 * Prints "vertebrae N crops C synthesized-slices S fallbacks F" and exits 1
 * on any difference (naming case, level and what differs) or when no crop
 * was compared and no fallback seen. The files are the independent source:
 * the pipeline writes them from the generator's output directly, the store
 * gets its bytes through the rank's deflate, the journal and rank 0.
 *
 *   synth_compare --same STORE_A STORE_B
 *
 * Both stores have the same crop datasets (synthesized and original) and
 * every vertebra slot of them
 * holds the same bytes (read through the filter); prints "slots N equal,
 * E with a crop" and exits 1 otherwise. Not h5diff: h5diff 1.10 calls a
 * dataset with no chunk allocated "not comparable" and exits 0, so a store
 * that lost every crop would compare equal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/io.h"
#include "hv/store.h"

#define I_ HV_RUN_CAM_I
#define J_ HV_RUN_CAM_J
#define K_ HV_RUN_CAM_K

static size_t vox(int64_t i, int64_t j, int64_t k)
{
    return (size_t)i + (size_t)I_ * ((size_t)j + (size_t)J_ * (size_t)k);
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Compare one vertebra; returns the number of problems, adds the
 * synthesized slices to *n_slices. */
static int compare_one(const char *dir, const char *id, const hv_run_vrow *v, const uint8_t *lab,
                       const uint8_t *ct, const uint8_t *oct, const uint8_t *olab, long *n_slices)
{
    char pl[4200], pc[4200], po[4200];
    snprintf(pl, sizeof pl, "%s/label_fake/%s_%d.nii.gz", dir, id, v->label);
    snprintf(pc, sizeof pc, "%s/CT_fake/%s_%d.nii.gz", dir, id, v->label);
    /* (read as float32: the files hold float32 values widened to float64,
     * so the conversion back is exact) */
    hv_volume *fl = NULL, *fc = NULL, *fo = NULL;
    int bad = 0;
    snprintf(po, sizeof po, "%s/label/%s_%d.nii.gz", dir, id, v->label);
    if (olab && hv_io_nifti_read(po, HV_DTYPE_F32, NULL, &fo, NULL) != HV_OK) {
        printf("%s %s: %s\n", id, v->level, hv_error_detail());
        return 1;
    }
    if (hv_io_nifti_read(pl, HV_DTYPE_F32, NULL, &fl, NULL) != HV_OK) {
        printf("%s %s: %s\n", id, v->level, hv_error_detail());
        return 1;
    }
    if (ct && hv_io_nifti_read(pc, HV_DTYPE_F32, NULL, &fc, NULL) != HV_OK) {
        printf("%s %s: %s\n", id, v->level, hv_error_detail());
        hv_vol_free(fl);
        hv_vol_free(fo);
        return 1;
    }
    const int64_t R = K_, C = J_, S = I_;
    if (fl->dim[0] != R || fl->dim[1] != C || fl->dim[2] != S ||
        (fc && (fc->dim[0] != R || fc->dim[1] != C || fc->dim[2] != S)) ||
        (fo && (fo->dim[0] != R || fo->dim[1] != C || fo->dim[2] != S))) {
        printf("%s %s: the NIfTI files are not %lld x %lld x %lld\n", id, v->level, (long long)R,
               (long long)C, (long long)S);
        bad = 1;
        goto done;
    }
    const float *a = fl->data, *b = fc ? fc->data : NULL, *o = fo ? fo->data : NULL;
    long syn = 0, odiff = 0, oct_nonzero = 0;
    for (int64_t s = 0; s < S && !bad; s++) {
        int zero = 1;
        long diff = 0, cdiff = 0, cnonzero = 0, offdiff = 0;
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++) {
                size_t q = (size_t)(r + R * (c + C * s)), p = vox(s, C - 1 - c, R - 1 - r);
                zero &= a[q] == 0;
                diff += a[q] != (float)lab[p];
                if (b) {
                    double x = (double)b[q];
                    uint8_t want = !(x > 0) ? 0 : x >= 255 ? 255 : (uint8_t)x;
                    cdiff += want != ct[p];
                    cnonzero += x != 0;
                }
                if (o) odiff += (lrintf(o[q]) == v->label ? (uint8_t)v->label : 0) != olab[p];
                if (oct) {
                    offdiff += oct[p] != ct[p];
                    oct_nonzero += oct[p] != 0;
                }
            }
        if (zero) {
            if (cnonzero) {
                printf("%s %s: LR slice %lld: CT_fake not zero off the synthesized slices\n", id,
                       v->level, (long long)s);
                bad = 1;
            }
            if (offdiff) {
                printf("%s %s: LR slice %lld (not synthesized): %ld voxels of orig_ct differ from "
                       "synth_ct\n", id, v->level, (long long)s, offdiff);
                bad = 1;
            }
            continue;
        }
        if (diff) {
            printf("%s %s: LR slice %lld: %ld label voxels differ from label_fake\n", id, v->level,
                   (long long)s, diff);
            bad = 1;
        }
        if (cdiff) {
            printf("%s %s: LR slice %lld: %ld CT voxels differ from CT_fake\n", id, v->level,
                   (long long)s, cdiff);
            bad = 1;
        }
        syn++;
    }
    if (!bad && syn == 0) {
        printf("%s %s: label_fake has no synthesized slice\n", id, v->level);
        bad = 1;
    }
    if (odiff) {
        printf("%s %s: %ld voxels of orig_label differ from the target of %s\n", id, v->level,
               odiff, po);
        bad = 1;
    }
    if (oct && !bad && oct_nonzero == 0) {
        printf("%s %s: orig_ct is all zero\n", id, v->level);
        bad = 1;
    }
    *n_slices += syn;
done:
    hv_vol_free(fl);
    hv_vol_free(fc);
    hv_vol_free(fo);
    return bad;
}

static int cmd_same(const char *pa, const char *pb)
{
    hv_store *a = NULL, *b = NULL;
    uint8_t *u = malloc(HV_RUN_CAM_BYTES), *v = malloc(HV_RUN_CAM_BYTES);
    if (!u || !v || hv_store_open_serial(pa, 0, &a) != HV_OK ||
        hv_store_open_serial(pb, 0, &b) != HV_OK) {
        fprintf(stderr, "synth_compare: %s\n", hv_error_detail());
        return 2;
    }
    int bad = 0;
    long n = hv_store_n_cases(a), slots = 0, with = 0;
    if (n != hv_store_n_cases(b)) {
        printf("%ld cases against %ld\n", n, hv_store_n_cases(b));
        bad = 1;
    }
    static const int vols[4] = {HV_STORE_VOL_SYNTH_LABEL, HV_STORE_VOL_SYNTH_CT,
                                HV_STORE_VOL_ORIG_CT, HV_STORE_VOL_ORIG_LABEL};
    for (int wi = 0; wi < 4 && !bad; wi++) {
        const int w = vols[wi];
        if (hv_store_has_vol(a, w) != hv_store_has_vol(b, w)) {
            printf("/vertebrae/%s in one store only\n", hv_store_vol_name(w));
            bad = 1;
        }
        if (!hv_store_has_vol(a, w)) continue;
        for (long q = 0; q < n * HV_RUN_MAX_VERT && !bad; q++) {
            int ha = 0, hb = 0;
            if (hv_store_read_vol(a, w, q, u, &ha) != HV_OK ||
                hv_store_read_vol(b, w, q, v, &hb) != HV_OK) {
                fprintf(stderr, "synth_compare: %s\n", hv_error_detail());
                return 2;
            }
            slots++;
            with += ha;
            if (ha != hb || memcmp(u, v, HV_RUN_CAM_BYTES)) {
                printf("/vertebrae/%s slot %ld differs (crop %d / %d)\n", hv_store_vol_name(w),
                       q, ha, hb);
                bad = 1;
            }
        }
    }
    if (!bad) printf("slots %ld equal, %ld with a crop\n", slots, with);
    free(u);
    free(v);
    hv_store_close(a);
    hv_store_close(b);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--same")) return cmd_same(argv[2], argv[3]);
    if (argc != 3) {
        fprintf(stderr, "usage: synth_compare STORE DIR | --same STORE_A STORE_B\n");
        return 2;
    }
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    hv_run_vrow *vr = NULL;
    uint8_t *stt = NULL, *lab = malloc(HV_RUN_CAM_BYTES), *ct = malloc(HV_RUN_CAM_BYTES);
    uint8_t *oct = malloc(HV_RUN_CAM_BYTES), *olab = malloc(HV_RUN_CAM_BYTES);
    size_t nv = 0;
    int bad = 0;
    long n_vert = 0, n_crops = 0, n_slices = 0, n_fb = 0;
    if (!lab || !ct || !oct || !olab || hv_store_open_serial(argv[1], 0, &s) != HV_OK) {
        fprintf(stderr, "synth_compare: %s\n", hv_error_detail());
        return 2;
    }
    if (!hv_store_has_vol(s, HV_STORE_VOL_SYNTH_LABEL)) {
        printf("%s has no /vertebrae/synth_label\n", argv[1]);
        return 1;
    }
    const int with_ct = hv_store_has_vol(s, HV_STORE_VOL_SYNTH_CT);
    const int with_orig = hv_store_has_vol(s, HV_STORE_VOL_ORIG_CT) &&
                          hv_store_has_vol(s, HV_STORE_VOL_ORIG_LABEL);
    if (with_ct && !with_orig) {
        printf("%s has /vertebrae/synth_ct without the original crops\n", argv[1]);
        return 1;
    }
    long n = hv_store_n_cases(s);
    cr = malloc((size_t)(n ? n : 1) * sizeof *cr);
    stt = malloc((size_t)(n ? n : 1));
    if (!cr || !stt || hv_store_read_cases(s, cr, stt) != HV_OK ||
        hv_store_read_vertebrae(s, &vr, &nv) != HV_OK) {
        fprintf(stderr, "synth_compare: %s\n", hv_error_detail());
        return 2;
    }
    int32_t last = -1, k = 0;
    for (size_t i = 0; i < nv; i++) {
        const hv_run_vrow *v = &vr[i];
        k = v->case_index == last ? k + 1 : 0;
        last = v->case_index;
        const char *id = cr[v->case_index].id;
        long slot = (long)v->case_index * HV_RUN_MAX_VERT + k;
        int have = 0, have_ct = 0, have_oc = 0, have_ol = 0;
        if (hv_store_read_vol(s, HV_STORE_VOL_SYNTH_LABEL, slot, lab, &have) != HV_OK ||
            (with_ct && hv_store_read_vol(s, HV_STORE_VOL_SYNTH_CT, slot, ct, &have_ct) != HV_OK) ||
            (with_orig &&
             (hv_store_read_vol(s, HV_STORE_VOL_ORIG_CT, slot, oct, &have_oc) != HV_OK ||
              hv_store_read_vol(s, HV_STORE_VOL_ORIG_LABEL, slot, olab, &have_ol) != HV_OK))) {
            fprintf(stderr, "synth_compare: %s\n", hv_error_detail());
            return 2;
        }
        n_vert++;
        char pl[4200];
        snprintf(pl, sizeof pl, "%s/label_fake/%s_%d.nii.gz", argv[2], id, v->label);
        if (!have) {
            n_fb++;
            if (!(v->flags & HV_MEAS_SYNTH_FALLBACK) || have_ct || have_oc || have_ol ||
                exists(pl)) {
                printf("%s %s: empty slot but %s\n", id, v->level,
                       !(v->flags & HV_MEAS_SYNTH_FALLBACK) ? "not flagged synth_fallback"
                       : have_ct                            ? "a CT crop stored"
                       : have_oc || have_ol                 ? "an original crop stored"
                                                            : "a label_fake file");
                bad = 1;
            }
            continue;
        }
        if (v->flags & HV_MEAS_SYNTH_FALLBACK) {
            printf("%s %s: flagged synth_fallback but a crop stored\n", id, v->level);
            bad = 1;
            continue;
        }
        n_crops++;
        if (with_orig && !(have_oc && have_ol)) {
            printf("%s %s: a synthesized crop without its original crops\n", id, v->level);
            bad = 1;
            continue;
        }
        bad |= compare_one(argv[2], id, v, lab, with_ct ? ct : NULL, with_orig ? oct : NULL,
                           with_orig ? olab : NULL, &n_slices);
    }
    printf("vertebrae %ld crops %ld synthesized-slices %ld fallbacks %ld%s\n", n_vert, n_crops,
           n_slices, n_fb,
           with_orig ? " (label and CT, original crops)" : with_ct ? " (label and CT)" : " (label)");
    if (n_vert == 0) bad = 1;
    free(vr);
    free(cr);
    free(stt);
    free(lab);
    free(ct);
    free(oct);
    free(olab);
    hv_store_close(s);
    return bad;
}
