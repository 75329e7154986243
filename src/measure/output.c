/*
 * output.c: the per-vertebra CSV, the height-loss map (data and PNG heatmap)
 * and the anterior-to-posterior loss curve.
 *
 * The reference shows these figures in its paper but ships no code for them
 * (spec section 9), so the layout is ours: the heatmap puts anterior on the
 * left (as the reference's crop columns do) and the patient's right on top,
 * left at the bottom, one
 * cell per map ray, a fixed colour scale from -20 % to 60 % so maps of
 * different vertebrae compare at a glance, the Genant thresholds marked on
 * the colour bar, and grey where the ray missed the body. The curve plots
 * the loss of each AP position over the central 40 % of the width.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/measure.h"
#include "measure_internal.h"

#define LOSS_MIN (-20.0)
#define LOSS_MAX 60.0

static void fmt_num(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "nan");
}

hv_status hv_measure_write_csv(const char *path, const char *case_id,
                               const hv_spine_measure *m, int append)
{
    FILE *f;
    if (!path || !m) return hv_error_set(HV_ERR_ARG, "csv: NULL argument");
    f = fopen(path, append ? "a" : "w");
    if (!f) return hv_error_set(HV_ERR_IO, "csv: %s: %s", path, strerror(errno));
    if (!append)
        fprintf(f, "case,label,level,h_ori_ant_mm,h_ori_mid_mm,h_ori_post_mm,h_syn_ant_mm,"
                   "h_syn_mid_mm,h_syn_post_mm,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post,grade,"
                   "h_ori_all_mm,h_syn_all_mm,depth_mm,width_mm,volume_ml,mean_hu,truncated,flags\n");
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        char b[16][32], fl[160];
        const char *lv = hv_label_name(v->label);
        fmt_num(b[0], 32, v->h_ori[HV_REG_ANT], 3);
        fmt_num(b[1], 32, v->h_ori[HV_REG_MID], 3);
        fmt_num(b[2], 32, v->h_ori[HV_REG_POST], 3);
        fmt_num(b[3], 32, v->h_syn[HV_REG_ANT], 3);
        fmt_num(b[4], 32, v->h_syn[HV_REG_MID], 3);
        fmt_num(b[5], 32, v->h_syn[HV_REG_POST], 3);
        for (int r = 0; r < 4; r++) fmt_num(b[6 + r], 32, v->rhlv[r], 5);
        fmt_num(b[10], 32, v->h_ori[HV_REG_ALL], 3);
        fmt_num(b[11], 32, v->h_syn[HV_REG_ALL], 3);
        fmt_num(b[12], 32, v->depth_mm, 3);
        fmt_num(b[13], 32, v->width_mm, 3);
        fmt_num(b[14], 32, v->volume_ml, 3);
        fmt_num(b[15], 32, v->mean_hu, 1);
        hv_measure_flags_str(v->flags, fl, sizeof fl);
        fprintf(f, "%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%d,%s,%s,%s,%s,%s,%s,%d,%s\n",
                case_id ? case_id : "", v->label, lv ? lv : "?", b[0], b[1], b[2], b[3], b[4],
                b[5], b[6], b[7], b[8], b[9], v->grade, b[10], b[11], b[12], b[13], b[14], b[15],
                (v->flags & HV_MEAS_TRUNCATED) ? 1 : 0, fl);
    }
    if (fclose(f) != 0) return hv_error_set(HV_ERR_IO, "csv: %s: write failed", path);
    return HV_OK;
}

/* Loss in % at map cell (ia, il); NaN where either height is missing. */
static double cell_loss(const hv_vert_measure *v, int ia, int il)
{
    const hv_height_map *o = &v->ori_map, *s = &v->syn_map;
    double ho = o->h[ia + o->na * il], hs = s->h[ia + o->na * il];
    if (!isfinite(ho) || !isfinite(hs) || hs <= 0) return NAN;
    return 100.0 * (hs - ho) / hs;
}

static hv_status check_maps(const hv_vert_measure *v)
{
    if (!v) return hv_error_set(HV_ERR_ARG, "loss map: NULL vertebra");
    if (!v->ori_map.h || !v->syn_map.h || v->ori_map.na != v->syn_map.na ||
        v->ori_map.nl != v->syn_map.nl)
        return hv_error_set(HV_ERR_EMPTY, "loss map: label %d has no height maps", v->label);
    return HV_OK;
}

hv_status hv_measure_write_loss_map_csv(const char *path, const hv_vert_measure *v)
{
    hv_status st = check_maps(v);
    if (st != HV_OK) return st;
    FILE *f = fopen(path, "w");
    if (!f) return hv_error_set(HV_ERR_IO, "loss map: %s: %s", path, strerror(errno));
    const hv_height_map *o = &v->ori_map;
    fprintf(f, "a_mm,l_mm,h_ori_mm,h_syn_mm,loss_pct\n");
    for (int il = 0; il < o->nl; il++)
        for (int ia = 0; ia < o->na; ia++) {
            char b[3][32];
            fmt_num(b[0], 32, o->h[ia + o->na * il], 3);
            fmt_num(b[1], 32, v->syn_map.h[ia + o->na * il], 3);
            fmt_num(b[2], 32, cell_loss(v, ia, il), 2);
            fprintf(f, "%.2f,%.2f,%s,%s,%s\n", o->a0 - ia * o->step, o->l0 + il * o->step, b[0],
                    b[1], b[2]);
        }
    if (fclose(f) != 0) return hv_error_set(HV_ERR_IO, "loss map: %s: write failed", path);
    return HV_OK;
}

static const double GENANT_EDGES[3] = {20, 25, 40};

hv_status hv_measure_write_loss_map_png(const char *path, const hv_vert_measure *v)
{
    hv_status st = check_maps(v);
    if (st != HV_OK) return st;
    const hv_height_map *o = &v->ori_map;
    double *z = malloc(sizeof(double) * (size_t)o->na * (size_t)o->nl);
    if (!z) return hv_error_set(HV_ERR_NOMEM, "loss map png");
    for (int il = 0; il < o->nl; il++)
        for (int ia = 0; ia < o->na; ia++) z[ia + (size_t)o->na * il] = cell_loss(v, ia, il);
    char title[96], cap[96];
    const char *lv = hv_label_name(v->label);
    snprintf(title, sizeof title, "%s height loss", lv ? lv : "?");
    snprintf(cap, sizeof cap, "AP %.0f mm \u00d7 LR %.0f mm; grey: no body", o->na * o->step,
             o->nl * o->step);
    /* lateral runs along the map's rows with the patient's right on top */
    hv_io_heatmap hm = {.title = title, .caption = cap, .zlabel = "loss %", .left = "A",
                        .right = "P", .top = "R", .bottom = "L", .nx = o->na, .ny = o->nl, .z = z,
                        .zlo = LOSS_MIN, .zhi = LOSS_MAX, .n_marks = 3, .marks = GENANT_EDGES};
    st = hv_io_plot_heatmap(path, &hm);
    free(z);
    return st;
}

hv_status hv_measure_write_loss_curve_png(const char *path, const hv_vert_measure *v)
{
    hv_status st = check_maps(v);
    if (st != HV_OK) return st;
    const hv_height_map *o = &v->ori_map;
    double *loss = malloc(sizeof(double) * (size_t)o->na);
    if (!loss) return hv_error_set(HV_ERR_NOMEM, "loss curve");
    /* central 40 % of the width */
    int l0 = (int)floor(o->nl * 0.3), l1 = (int)ceil(o->nl * 0.7);
    if (l1 <= l0) { l0 = 0; l1 = o->nl; }
    for (int ia = 0; ia < o->na; ia++) {
        double so = 0, ss = 0;
        int n = 0;
        for (int il = l0; il < l1; il++) {
            double ho = o->h[ia + o->na * il], hs = v->syn_map.h[ia + o->na * il];
            if (!isfinite(ho) || !isfinite(hs)) continue;
            so += ho;
            ss += hs;
            n++;
        }
        loss[ia] = (n && ss > 0) ? 100.0 * (ss - so) / ss : NAN;
    }
    char title[96], cap[96];
    const char *lv = hv_label_name(v->label);
    snprintf(title, sizeof title, "%s loss along AP", lv ? lv : "?");
    snprintf(cap, sizeof cap, "loss %% over %.0f mm depth (central 40 %% of the width)",
             o->na * o->step);
    hv_io_series sr = {.name = "loss", .n = o->na, .x = NULL, .y = loss};
    hv_io_lines lp = {.title = title, .xlabel = cap, .ylabel = "height loss %", .xleft = "A",
                      .xright = "P", .n_series = 1, .series = &sr, .ylo = LOSS_MIN,
                      .yhi = LOSS_MAX, .n_marks = 3, .marks = GENANT_EDGES};
    st = hv_io_plot_lines(path, &lp);
    free(loss);
    return st;
}
