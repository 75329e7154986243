/*
 * pictures.c: the `pictures` stage: per measured vertebra, the height-loss
 * planes and the two QC slices (hv/pipeline.h says their layout).
 *
 * Both are small fixed-size arrays so that the store can keep them in
 * per-vertebra slots. The QC slices come from the crops the `crop` stage
 * made, on the slices hv_spine_qc_slices picks (as `straighten --png`
 * draws them), so this stage costs only the resampling of two slices per
 * vertebra: straightening and cropping are timed as their own stages. A
 * vertebra without a crop (the spine stage failed on it, or the case has no
 * CT) keeps an all-zero QC slot; the log already said why.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"

/* Nearest-neighbour resample of a height map onto IMG x IMG: rows run from
 * anterior (top) to posterior, columns left to right along the map's l. */
static void map_to_img(const hv_height_map *a, const hv_height_map *b, int what, float *img)
{
    for (int y = 0; y < HV_PIPE_IMG; y++) {
        int ia = (int)((y + 0.5) * a->na / HV_PIPE_IMG);
        for (int x = 0; x < HV_PIPE_IMG; x++) {
            int il = (int)((x + 0.5) * a->nl / HV_PIPE_IMG);
            size_t k = (size_t)ia + (size_t)a->na * (size_t)il;
            double ho = a->h ? a->h[k] : NAN;
            double hs = (b && b->h) ? b->h[k] : NAN;
            double v;
            if (what == HV_IMG_ORI) v = ho;
            else if (what == HV_IMG_SYN) v = hs;
            else v = hv_measure_rhlv(hs, ho);
            img[(size_t)y * HV_PIPE_IMG + (size_t)x] = (float)v;
        }
    }
}

/* Nearest resample of a rows x cols slice onto QC x QC bytes: CT clipped and
 * rounded to 0..255, labels to 255 where the slice holds `label`. The crop's
 * default slices are already 256 x 256; this only guards other crop sizes. */
static void slice_to_qc(const float *in, int64_t rows, int64_t cols, int label, uint8_t *out)
{
    for (int y = 0; y < HV_PIPE_QC; y++) {
        int64_t sy = (int64_t)((y + 0.5) * (double)rows / HV_PIPE_QC);
        for (int x = 0; x < HV_PIPE_QC; x++) {
            int64_t sx = (int64_t)((x + 0.5) * (double)cols / HV_PIPE_QC);
            float v = in[sy * cols + sx];
            uint8_t b;
            if (label > 0) b = lrintf(v) == label ? 255 : 0;
            else b = hv_spine_qc_grey(v);
            out[(size_t)y * HV_PIPE_QC + (size_t)x] = b;
        }
    }
}

/* Both views of one crop into qc (HV_PIPE_QC_BYTES). */
static hv_status crop_to_qc(const hv_spine_crop *cr, uint8_t *qc)
{
    hv_status st = HV_OK;
    float *buf = NULL;
    const size_t plane = (size_t)HV_PIPE_QC * HV_PIPE_QC;
    int64_t isag, jcor;
    hv_spine_qc_slices(cr, &isag, &jcor);
    for (int view = 0; view < HV_QC_VIEWS; view++) {
        hv_spine_plane pl = view == HV_QC_SAG ? HV_SPINE_SAGITTAL : HV_SPINE_CORONAL;
        int64_t idx = view == HV_QC_SAG ? isag : jcor;
        int64_t rows, cols;
        hv_spine_slice_dims(cr->ct, pl, &rows, &cols);
        if (rows < 1 || cols < 1) {
            st = hv_error_set(HV_ERR_LIMIT, "empty crop slice");
            goto done;
        }
        free(buf);
        buf = malloc((size_t)(rows * cols) * sizeof *buf);
        if (!buf) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory for a QC slice");
            goto done;
        }
        uint8_t *dst = qc + (size_t)view * HV_QC_CHANNELS * plane;
        if ((st = hv_spine_slice_extract(cr->ct, pl, idx, buf)) != HV_OK) goto done;
        slice_to_qc(buf, rows, cols, 0, dst + HV_QC_CT * plane);
        if ((st = hv_spine_slice_extract(cr->labels, pl, idx, buf)) != HV_OK) goto done;
        slice_to_qc(buf, rows, cols, cr->label, dst + HV_QC_LABEL * plane);
    }
done:
    free(buf);
    return st;
}

hv_status hv_pipe_pictures_run(const hv_pipe_opts *o, hv_pipe_state *s)
{
    const hv_spine_measure *m = s->m;
    const size_t plane = (size_t)HV_PIPE_IMG * HV_PIPE_IMG;
    const int n_img = o->pictures == HV_PIPE_PICTURES_FULL ? HV_IMG_COUNT : 1;
    const size_t nv = m->n ? m->n : 1;
    s->img = malloc(nv * (size_t)n_img * plane * sizeof(float));
    s->qc = calloc(nv, HV_PIPE_QC_BYTES);
    if (!s->img || !s->qc)
        return hv_error_set(HV_ERR_NOMEM, "out of memory for the pictures of %zu vertebrae",
                            m->n);
    s->n_img = n_img;
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        for (int p = 0; p < n_img; p++) {
            float *dst = s->img + (i * (size_t)n_img + (size_t)p) * plane;
            if (!v->ori_map.h || v->ori_map.na < 1 || v->ori_map.nl < 1) {
                for (size_t q = 0; q < plane; q++) dst[q] = NAN;
                continue;
            }
            const hv_height_map *syn =
                v->syn_map.h && v->syn_map.na == v->ori_map.na && v->syn_map.nl == v->ori_map.nl
                    ? &v->syn_map
                    : NULL;
            map_to_img(&v->ori_map, syn, p, dst);
        }
    }
    /* no crops: the case has no CT, or straightening failed; the stage that
     * failed said why, and the QC slots stay zero */
    if (!(s->have & HV_PIPE_CROPS)) return HV_OK;
    /* one vertebra per thread: the slices are read across whole crops
     * (4 MB of labels each), so this is bound by memory, not arithmetic */
    const long nv_l = (long)m->n;
    int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : oom)
    for (long i = 0; i < nv_l; i++) {
        int label = m->v[i].label;
        const char *name = hv_label_name(label) ? hv_label_name(label) : "?";
        const hv_spine_crop *cr = hv_pipe_crop_find(s, label);
        if (!cr) {
            hv_log_warn("case %s %s: the spine stage found no vertebral body, QC picture left "
                        "blank", s->cs->id, name);
            continue;
        }
        uint8_t *dst = s->qc + (size_t)i * HV_PIPE_QC_BYTES;
        hv_status st = crop_to_qc(cr, dst);
        if (st != HV_OK) {
            memset(dst, 0, HV_PIPE_QC_BYTES);
            if (st == HV_ERR_NOMEM) oom = 1;
            else hv_log_warn("case %s %s: QC picture left blank: %s", s->cs->id, name,
                             hv_error_detail());
            hv_error_clear();
        }
    }
    if (oom) return hv_error_set(HV_ERR_NOMEM, "out of memory for a QC slice");
    return HV_OK;
}
