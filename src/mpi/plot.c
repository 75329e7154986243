/*
 * plot.c: the two PNG figures of a run's output folder (and the QC pictures
 * of `export`, through hv_plot_rgb_png), drawn directly into
 * an RGB raster and written with libpng: the grader's confusion matrix and
 * the RHLV distribution per grade. A plotting library would be a dependency
 * for two small figures; a 5x7 bitmap font and a few fill/line helpers are
 * enough, and keep the output byte-identical from run to run.
 */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

typedef struct {
    int w, h;
    unsigned char *px; /* RGB */
} canvas;

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
typedef struct {
    char c;
    unsigned char row[7];
} glyph;

static const glyph font[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
};

static const unsigned char *glyph_rows(char c)
{
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == c) return font[i].row;
    return NULL;
}

static void put_px(canvas *cv, int x, int y, const unsigned char rgb[3])
{
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h) return;
    memcpy(cv->px + 3 * ((size_t)y * (size_t)cv->w + (size_t)x), rgb, 3);
}

static void fill_rect(canvas *cv, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) put_px(cv, x, y, rgb);
}

static void hline(canvas *cv, int x0, int x1, int y, const unsigned char rgb[3], int dash)
{
    for (int x = x0; x <= x1; x++)
        if (!dash || (x / 4) % 2 == 0) put_px(cv, x, y, rgb);
}

static void vline(canvas *cv, int x, int y0, int y1, const unsigned char rgb[3])
{
    for (int y = y0; y <= y1; y++) put_px(cv, x, y, rgb);
}

static int text_width(const char *s, int scale)
{
    return (int)strlen(s) * 6 * scale;
}

static void draw_text(canvas *cv, int x, int y, const char *s, int scale, const unsigned char rgb[3])
{
    for (; *s; s++, x += 6 * scale) {
        const unsigned char *g = glyph_rows(*s);
        if (!g) continue;
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g[r] & (0x10 >> c))
                    fill_rect(cv, x + c * scale, y + r * scale, x + (c + 1) * scale,
                              y + (r + 1) * scale, rgb);
    }
}

static void draw_text_c(canvas *cv, int cx, int y, const char *s, int scale, const unsigned char rgb[3])
{
    draw_text(cv, cx - text_width(s, scale) / 2, y, s, scale, rgb);
}

static hv_status canvas_new(canvas *cv, int w, int h)
{
    cv->w = w;
    cv->h = h;
    cv->px = malloc((size_t)w * (size_t)h * 3);
    if (!cv->px) return hv_error_set(HV_ERR_NOMEM, "plot: out of memory");
    memset(cv->px, 255, (size_t)w * (size_t)h * 3);
    return HV_OK;
}

static hv_status canvas_write(const canvas *cv, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return hv_error_set(HV_ERR_IO, "cannot write %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        fclose(f);
        png_destroy_write_struct(&png, &info);
        return hv_error_set(HV_ERR_NOMEM, "png: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return hv_error_set(HV_ERR_IO, "png: cannot write %s", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)cv->w, (png_uint_32)cv->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < cv->h; y++) png_write_row(png, cv->px + 3 * (size_t)y * (size_t)cv->w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) return hv_error_set(HV_ERR_IO, "cannot write %s", path);
    return HV_OK;
}

hv_status hv_plot_rgb_png(const char *path, int w, int h, const unsigned char *rgb)
{
    canvas cv = {w, h, (unsigned char *)rgb}; /* canvas_write only reads px */
    return canvas_write(&cv, path);
}

static const unsigned char BLACK[3] = {0, 0, 0}, GREY[3] = {160, 160, 160},
                           WHITE[3] = {255, 255, 255}, RED[3] = {200, 40, 40};

hv_status hv_plot_confusion_png(const char *path, const hv_class_metrics *m, const char *title)
{
    int k = m->n_classes, cell = 64, x0 = 110, y0 = 90;
    canvas cv;
    hv_status st = canvas_new(&cv, x0 + k * cell + 40, y0 + k * cell + 70);
    if (st != HV_OK) return st;
    draw_text_c(&cv, cv.w / 2, 12, title, 2, BLACK);
    draw_text_c(&cv, x0 + k * cell / 2, y0 - 44, "PREDICTED GRADE", 2, BLACK);
    draw_text(&cv, 6, y0 + k * cell / 2 - 7, "TRUE", 2, BLACK);
    for (int r = 0; r < k; r++) {
        long rowsum = 0;
        for (int c = 0; c < k; c++) rowsum += m->confusion[r][c];
        char lab[16];
        snprintf(lab, sizeof lab, "%d", m->classes[r]);
        draw_text_c(&cv, x0 - 20, y0 + r * cell + cell / 2 - 7, lab, 2, BLACK);
        draw_text_c(&cv, x0 + r * cell + cell / 2, y0 - 20, lab, 2, BLACK);
        for (int c = 0; c < k; c++) {
            double frac = rowsum ? (double)m->confusion[r][c] / (double)rowsum : 0.0;
            unsigned char col[3] = {(unsigned char)(255 - 200 * frac), (unsigned char)(255 - 150 * frac), 255};
            int cx = x0 + c * cell, cy = y0 + r * cell;
            fill_rect(&cv, cx, cy, cx + cell, cy + cell, col);
            hline(&cv, cx, cx + cell, cy, GREY, 0);
            vline(&cv, cx, cy, cy + cell, GREY);
            snprintf(lab, sizeof lab, "%ld", m->confusion[r][c]);
            draw_text_c(&cv, cx + cell / 2, cy + cell / 2 - 7, lab, 2, frac > 0.6 ? WHITE : BLACK);
        }
    }
    hline(&cv, x0, x0 + k * cell, y0 + k * cell, GREY, 0);
    vline(&cv, x0 + k * cell, y0, y0 + k * cell, GREY);
    char foot[96];
    snprintf(foot, sizeof foot, "MACRO-F1 %.3f  ACCURACY %.3f", m->macro_f1, m->accuracy);
    draw_text_c(&cv, cv.w / 2, y0 + k * cell + 20, foot, 2, BLACK);
    st = canvas_write(&cv, path);
    free(cv.px);
    return st;
}

hv_status hv_plot_rhlv_png(const char *path, const double *v, const int *grade, size_t n,
                           const char *title)
{
    int W = 560, H = 420, L = 70, R = 20, T = 50, B = 60;
    double lo = -10, hi = 60;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) continue;
        if (v[i] < lo) lo = 10 * floor(v[i] / 10);
        if (v[i] > hi) hi = 10 * ceil(v[i] / 10);
    }
    canvas cv;
    hv_status st = canvas_new(&cv, W, H);
    if (st != HV_OK) return st;
    draw_text_c(&cv, W / 2, 12, title, 2, BLACK);
    int pw = W - L - R, ph = H - T - B;
#define YPIX(val) (T + (int)lround((hi - (val)) / (hi - lo) * ph))
    for (double y = 10 * ceil(lo / 10); y <= hi + 1e-9; y += 10) {
        hline(&cv, L, L + pw, YPIX(y), (unsigned char[3]){230, 230, 230}, 0);
        char lab[16];
        snprintf(lab, sizeof lab, "%.0f", y);
        draw_text(&cv, L - 8 - text_width(lab, 1), YPIX(y) - 3, lab, 1, BLACK);
    }
    /* Genant band edges */
    const double edges[3] = {20, 25, 40};
    for (int e = 0; e < 3; e++) {
        hline(&cv, L, L + pw, YPIX(edges[e]), RED, 1);
        char lab[16];
        snprintf(lab, sizeof lab, "%.0f%%", edges[e]);
        draw_text(&cv, L + pw - text_width(lab, 1) - 2, YPIX(edges[e]) - 9, lab, 1, RED);
    }
    vline(&cv, L, T, T + ph, BLACK);
    hline(&cv, L, L + pw, T + ph, BLACK, 0);
    draw_text(&cv, 4, T - 20, "RHLV %", 2, BLACK);
    for (int g = 0; g < 4; g++) {
        int cx = L + (2 * g + 1) * pw / 8;
        char lab[32];
        snprintf(lab, sizeof lab, "GRADE %d", g);
        draw_text_c(&cv, cx, T + ph + 10, lab, 2, BLACK);
        double sum = 0;
        long cnt = 0;
        for (size_t i = 0; i < n; i++) {
            if (grade[i] != g || isnan(v[i])) continue;
            /* deterministic jitter from the row index */
            uint64_t hsh = (uint64_t)i * 0x9E3779B97F4A7C15ull;
            int dx = (int)((hsh >> 40) % 41) - 20;
            int px = cx + dx, py = YPIX(v[i]);
            fill_rect(&cv, px - 2, py - 2, px + 3, py + 3, (unsigned char[3]){40, 90, 200});
            sum += v[i];
            cnt++;
        }
        snprintf(lab, sizeof lab, "N=%ld", cnt);
        draw_text_c(&cv, cx, T + ph + 32, lab, 1, BLACK);
        if (cnt) hline(&cv, cx - 28, cx + 28, YPIX(sum / (double)cnt), BLACK, 0),
                 hline(&cv, cx - 28, cx + 28, YPIX(sum / (double)cnt) + 1, BLACK, 0);
    }
#undef YPIX
    st = canvas_write(&cv, path);
    free(cv.px);
    return st;
}
