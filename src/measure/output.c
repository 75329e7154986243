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

/* Jet-like colour of t in [0, 1]. */
static void colour(double t, uint8_t out[3])
{
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    double r = fmin(fmax(1.5 - fabs(4 * t - 3), 0), 1);
    double g = fmin(fmax(1.5 - fabs(4 * t - 2), 0), 1);
    double b = fmin(fmax(1.5 - fabs(4 * t - 1), 0), 1);
    out[0] = (uint8_t)lround(255 * r);
    out[1] = (uint8_t)lround(255 * g);
    out[2] = (uint8_t)lround(255 * b);
}

static void fill_rect(uint8_t *img, int w, int h, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            if (x >= 0 && y >= 0 && x < w && y < h) memcpy(img + 3 * ((size_t)y * w + x), c, 3);
}

static void line(uint8_t *img, int w, int h, int x0, int y0, int x1, int y1, const uint8_t c[3],
                 int thick)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        fill_rect(img, w, h, x0 - thick / 2, y0 - thick / 2, x0 - thick / 2 + thick,
                  y0 - thick / 2 + thick, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

static const uint8_t WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0}, GREY[3] = {170, 170, 170};

hv_status hv_measure_write_loss_map_png(const char *path, const hv_vert_measure *v)
{
    hv_status st = check_maps(v);
    if (st != HV_OK) return st;
    const hv_height_map *o = &v->ori_map;
    int big = o->na > o->nl ? o->na : o->nl;
    int cell = 320 / (big > 0 ? big : 1);
    if (cell < 2) cell = 2;
    if (cell > 16) cell = 16;
    int mw = o->na * cell, mh = o->nl * cell;
    int left = 40, top = 40, bar_w = 18, gap = 30;
    int W = left + mw + gap + bar_w + 60, H = top + (mh > 200 ? mh : 200) + 50;
    uint8_t *img = malloc((size_t)W * (size_t)H * 3);
    if (!img) return hv_error_set(HV_ERR_NOMEM, "loss map png");
    memset(img, 255, (size_t)W * (size_t)H * 3);
    char title[96];
    const char *lv = hv_label_name(v->label);
    snprintf(title, sizeof title, "%s HEIGHT LOSS %%", lv ? lv : "?");
    hv_font_draw(img, W, H, left, 12, title, 2, BLACK);
    for (int il = 0; il < o->nl; il++)
        for (int ia = 0; ia < o->na; ia++) {
            double loss = cell_loss(v, ia, il);
            uint8_t c[3];
            if (isfinite(loss)) colour((loss - LOSS_MIN) / (LOSS_MAX - LOSS_MIN), c);
            else memcpy(c, GREY, 3);
            fill_rect(img, W, H, left + ia * cell, top + il * cell, left + (ia + 1) * cell,
                      top + (il + 1) * cell, c);
        }
    /* frame, orientation */
    line(img, W, H, left - 1, top - 1, left + mw, top - 1, BLACK, 1);
    line(img, W, H, left - 1, top + mh, left + mw, top + mh, BLACK, 1);
    line(img, W, H, left - 1, top - 1, left - 1, top + mh, BLACK, 1);
    line(img, W, H, left + mw, top - 1, left + mw, top + mh, BLACK, 1);
    hv_font_draw(img, W, H, left - 16, top + mh / 2 - 7, "A", 2, BLACK);
    hv_font_draw(img, W, H, left + mw + 6, top + mh / 2 - 7, "P", 2, BLACK);
    /* lateral runs along axis x anterior = the patient's left: right on top */
    hv_font_draw(img, W, H, left + mw + 6, top, "R", 1, BLACK);
    hv_font_draw(img, W, H, left + mw + 6, top + mh - 7, "L", 1, BLACK);
    char cap[64];
    snprintf(cap, sizeof cap, "AP %.0f MM X LR %.0f MM", o->na * o->step, o->nl * o->step);
    hv_font_draw(img, W, H, left, top + mh + 10, cap, 1, BLACK);
    /* colour bar with ticks and the Genant thresholds */
    int bx = left + mw + gap, bh = mh > 200 ? mh : 200;
    for (int y = 0; y < bh; y++) {
        uint8_t c[3];
        colour(1.0 - (double)y / (bh - 1), c);
        fill_rect(img, W, H, bx, top + y, bx + bar_w, top + y + 1, c);
    }
    for (int t = -20; t <= 60; t += 20) {
        int y = top + (int)lround((LOSS_MAX - t) / (LOSS_MAX - LOSS_MIN) * (bh - 1));
        char lab[16];
        snprintf(lab, sizeof lab, "%d", t);
        line(img, W, H, bx + bar_w, y, bx + bar_w + 4, y, BLACK, 1);
        hv_font_draw(img, W, H, bx + bar_w + 7, y - 3, lab, 1, BLACK);
    }
    static const int genant[3] = {20, 25, 40};
    for (int q = 0; q < 3; q++) {
        int y = top + (int)lround((LOSS_MAX - genant[q]) / (LOSS_MAX - LOSS_MIN) * (bh - 1));
        line(img, W, H, bx, y, bx + bar_w - 1, y, WHITE, 1);
    }
    hv_font_draw(img, W, H, bx - 4, top + bh + 10, "%", 2, BLACK);
    st = hv_png_write_rgb(path, img, W, H);
    free(img);
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
    const int W = 420, H = 300, left = 50, right = 20, top = 40, bottom = 50;
    const int pw = W - left - right, ph = H - top - bottom;
    uint8_t *img = malloc((size_t)W * H * 3);
    if (!img) {
        free(loss);
        return hv_error_set(HV_ERR_NOMEM, "loss curve png");
    }
    memset(img, 255, (size_t)W * H * 3);
    char title[96];
    const char *lv = hv_label_name(v->label);
    snprintf(title, sizeof title, "%s LOSS ALONG AP", lv ? lv : "?");
    hv_font_draw(img, W, H, left, 12, title, 2, BLACK);
#define YPIX(val) (top + (int)lround((LOSS_MAX - (val)) / (LOSS_MAX - LOSS_MIN) * (ph - 1)))
    for (int t = -20; t <= 60; t += 20) {
        int y = YPIX((double)t);
        char lab[16];
        snprintf(lab, sizeof lab, "%d", t);
        line(img, W, H, left, y, left + pw, y, t == 0 ? BLACK : GREY, 1);
        hv_font_draw(img, W, H, left - hv_font_width(lab, 1) - 6, y - 3, lab, 1, BLACK);
    }
    static const int genant[3] = {20, 25, 40};
    static const uint8_t red[3] = {200, 40, 40};
    for (int q = 0; q < 3; q++) {
        int y = YPIX((double)genant[q]);
        for (int x = left; x < left + pw; x += 8) line(img, W, H, x, y, x + 3, y, red, 1);
    }
    line(img, W, H, left, top, left, top + ph, BLACK, 1);
    static const uint8_t blue[3] = {20, 60, 200};
    int px = -1, py = -1;
    for (int ia = 0; ia < o->na; ia++) {
        if (!isfinite(loss[ia])) { px = -1; continue; }
        double val = fmin(fmax(loss[ia], LOSS_MIN), LOSS_MAX);
        int x = left + (o->na > 1 ? (int)lround((double)ia / (o->na - 1) * (pw - 1)) : pw / 2);
        int y = YPIX(val);
        if (px >= 0) line(img, W, H, px, py, x, y, blue, 2);
        else fill_rect(img, W, H, x - 1, y - 1, x + 2, y + 2, blue);
        px = x;
        py = y;
    }
#undef YPIX
    hv_font_draw(img, W, H, left, top + ph + 10, "A", 2, BLACK);
    hv_font_draw(img, W, H, left + pw - 10, top + ph + 10, "P", 2, BLACK);
    char cap[64];
    snprintf(cap, sizeof cap, "LOSS %% OVER %.0f MM DEPTH", o->na * o->step);
    hv_font_draw(img, W, H, left + 30, top + ph + 14, cap, 1, BLACK);
    st = hv_png_write_rgb(path, img, W, H);
    free(img);
    free(loss);
    return st;
}
