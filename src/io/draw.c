/*
 * draw.c: every picture the project writes goes through here: one libpng
 * writer (grey or RGB, atomic), and the figures (confusion matrix, values
 * by group, heatmap with colour bar, line plot, grouped bars) drawn with
 * cairo.
 *
 * Why this way: figures are read by people, so text must be real text
 * (DejaVu Sans through fontconfig, anti-aliased) and lines must be smooth;
 * a hand-drawn bitmap font does neither, and two copies of one had already
 * appeared. Callers hand over plain numbers and labels in small spec structs
 * and never see cairo, so a figure's look is decided in one file and a new
 * figure (training curves) is a new spec, not a new renderer. The pixel
 * overlays (label contours on a QC slice, a mask's outline, an attention map
 * in JET on a CT slice) are plain loops here too, so the pipeline's pictures
 * and the store's exports draw them with the same code; a picture made of
 * such pixels gets its caption (a legend line) from cairo below the pixels,
 * which it leaves as they are.
 *
 * cairo draws into an ARGB32 image surface (premultiplied, native-endian
 * 32-bit words); saving converts it to packed RGB and writes it with the
 * same libpng writer the grey QC pictures use, through a temporary file that
 * is renamed into place, so a crash never leaves a half-written PNG.
 * cairo reports errors through the surface status, checked once at save.
 */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "hv/io.h"

/* ------------------------------------------------------------ PNG writer */

/* libpng longjmps on error: kept apart so no caller local is live across
 * setjmp. Returns 0 on success. */
static int png_rows(FILE *f, int w, int h, int colour, png_bytep *rows)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    /* QC pictures and figures are written by the thousand: the fastest
     * zlib level costs ~10 % in size and is several times quicker */
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, colour, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

hv_status hv_io_png_write(const char *path, int w, int h, int channels, const uint8_t *px)
{
    hv_status st = HV_OK;
    png_bytep *rows = NULL;
    hv_atomic_file *a = NULL;
    FILE *f = NULL;
    if (!path || !px || w <= 0 || h <= 0 || (channels != 1 && channels != 3))
        return hv_error_set(HV_ERR_ARG, "png: bad arguments (%dx%d, %d channels)", w, h, channels);
    if (w > 65535 || h > 65535) return hv_error_set(HV_ERR_LIMIT, "png: %dx%d is too large", w, h);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) return hv_error_set(HV_ERR_NOMEM, "png: out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(px + (size_t)y * (size_t)w * (size_t)channels);
    if ((st = hv_atomic_open(path, &a, &f)) != HV_OK) goto done;
    if (png_rows(f, w, h, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, rows) != 0) {
        st = hv_error_set(HV_ERR_IO, "libpng failed writing %s", path);
        goto done;
    }
    st = hv_atomic_commit(a, 0);
    a = NULL;
done:
    hv_atomic_abort(a);
    free(rows);
    return st;
}

/* ------------------------------------------------ PNG bytes in memory */

/* The store keeps its QC pictures as PNG bytes (docs/hdf5-schema.md, v3):
 * encoded once by the rank that drew them, decoded by any PNG reader. The
 * encoder fixes everything that changes the bytes (Paeth filter on every
 * row, zlib level 6, Z_FILTERED, no ancillary chunks), so a picture is the
 * same bytes with any number of ranks. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} png_mem;

static void png_mem_write(png_structp png, png_bytep data, png_size_t len)
{
    png_mem *m = png_get_io_ptr(png);
    if (m->oom) return;
    if (m->n + len > m->cap) {
        size_t nc = m->cap ? m->cap : 65536;
        while (nc < m->n + len) nc *= 2;
        unsigned char *np = realloc(m->p, nc);
        if (!np) {
            m->oom = 1;
            png_error(png, "out of memory");
        }
        m->p = np;
        m->cap = nc;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
}

static void png_mem_flush(png_structp png) { (void)png; }

static int png_encode_rows(png_mem *m, int w, int h, png_bytep *rows)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, m, png_mem_write, png_mem_flush);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_PAETH);
    png_set_compression_level(png, 6);
    png_set_compression_strategy(png, 1 /* Z_FILTERED */);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

hv_status hv_io_png_encode_grey(int w, int h, const uint8_t *px, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!px || w <= 0 || h <= 0 || w > 65535 || h > 65535)
        return hv_error_set(HV_ERR_ARG, "png: bad arguments (%dx%d)", w, h);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    if (!rows) return hv_error_set(HV_ERR_NOMEM, "png: out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(px + (size_t)y * (size_t)w);
    png_mem m = {NULL, 0, 0, 0};
    int rc = png_encode_rows(&m, w, h, rows);
    free(rows);
    if (rc != 0 || m.oom) {
        free(m.p);
        return m.oom ? hv_error_set(HV_ERR_NOMEM, "png: out of memory")
                     : hv_error_set(HV_ERR_IO, "libpng failed encoding a %dx%d picture", w, h);
    }
    *out = m.p;
    *len = m.n;
    return HV_OK;
}

typedef struct {
    const unsigned char *p;
    size_t n, off;
} png_src;

static void png_src_read(png_structp png, png_bytep data, png_size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->off) png_error(png, "truncated PNG");
    memcpy(data, s->p + s->off, len);
    s->off += len;
}

/* 0: decoded; 1: not an 8-bit grey w x h picture; -1: libpng error. */
static int png_decode_rows(png_src *src, int w, int h, uint8_t *px)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    png_bytep *rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, src, png_src_read);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != (png_uint_32)w ||
        png_get_image_height(png, info) != (png_uint_32)h || png_get_bit_depth(png, info) != 8 ||
        png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY ||
        png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) {
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * (size_t)w;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

hv_status hv_io_png_decode_grey(const uint8_t *buf, size_t len, int w, int h, uint8_t *px)
{
    if (!buf || !px || w <= 0 || h <= 0)
        return hv_error_set(HV_ERR_ARG, "png: bad arguments (%dx%d)", w, h);
    if (len < 8 || png_sig_cmp((png_const_bytep)buf, 0, 8))
        return hv_error_set(HV_ERR_FORMAT, "not a PNG (%zu bytes, no PNG signature)", len);
    png_src src = {buf, len, 0};
    int rc = png_decode_rows(&src, w, h, px);
    if (rc == 1) return hv_error_set(HV_ERR_FORMAT, "PNG is not an 8-bit grey %dx%d picture", w, h);
    if (rc != 0) return hv_error_set(HV_ERR_FORMAT, "damaged PNG (%zu bytes)", len);
    return HV_OK;
}

/* ----------------------------------------------------- contour overlay */

void hv_io_paint_contours(uint8_t *rgb, int stride, const uint8_t *grey, const uint8_t *labels,
                          int w, int h, int target)
{
    static const uint8_t pal[6][3] = {
        {40, 200, 255}, {60, 255, 60}, {255, 220, 40}, {255, 80, 255}, {255, 150, 40}, {120, 140, 255},
    };
    static const uint8_t red[3] = {255, 40, 40};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t q = (size_t)y * (size_t)w + (size_t)x;
            uint8_t *px = rgb + (size_t)y * (size_t)stride + 3 * (size_t)x;
            px[0] = px[1] = px[2] = grey[q];
            int l = labels[q];
            if (!l) continue;
            /* an edge pixel: on the border, or a 4-neighbour of another value */
            int edge = y == 0 || x == 0 || y == h - 1 || x == w - 1 || labels[q - 1] != l ||
                       labels[q + 1] != l || labels[q - (size_t)w] != l || labels[q + (size_t)w] != l;
            if (edge) memcpy(px, l == target ? red : pal[l % 6], 3);
        }
}

void hv_io_paint_outline(uint8_t *rgb, int stride, const uint8_t *mask, int w, int h,
                         const uint8_t colour[3])
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t q = (size_t)y * (size_t)w + (size_t)x;
            if (!mask[q]) continue;
            int edge = y == 0 || x == 0 || y == h - 1 || x == w - 1 || !mask[q - 1] ||
                       !mask[q + 1] || !mask[q - (size_t)w] || !mask[q + (size_t)w];
            if (edge) memcpy(rgb + (size_t)y * (size_t)stride + 3 * (size_t)x, colour, 3);
        }
}

/* --------------------------------------------------- attention overlay */

/* JET colour channel of x in [0, 1]: the usual piecewise-linear map, c = 3
 * (red), 2 (green), 1 (blue), what cv2's and matplotlib's tables sample. */
static double jet_ch(double x, double c)
{
    double v = 1.5 - fabs(4.0 * x - c);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

void hv_io_jet_overlay(const uint8_t *grey, const float *map, size_t n, uint8_t *rgb)
{
    for (size_t p = 0; p < n; p++) {
        double x = isfinite(map[p]) ? map[p] : 0;
        x = x < 0 ? 0 : x > 1 ? 1 : x;
        const double ch[3] = {jet_ch(x, 3), jet_ch(x, 2), jet_ch(x, 1)};
        for (int c = 0; c < 3; c++) {
            double v = grey ? 0.6 * grey[p] + 0.4 * 255.0 * ch[c] : 255.0 * ch[c];
            rgb[p * 3 + (size_t)c] = (uint8_t)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* ------------------------------------------------------------- the font */

#define FIG_FONT "DejaVu Sans"

/* fontconfig and cairo keep process-wide caches (the font list, the
 * toy-font faces) for the life of the process. Released at exit, so that
 * LeakSanitizer, and anyone checking the process for leaks, sees only what
 * is really lost. Registered once, on the first use of either library. */
static void release_font_caches(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

static void register_release(void) { atexit(release_font_caches); }

static pthread_once_t release_once = PTHREAD_ONCE_INIT;

hv_status hv_io_figure_font(char *file, size_t cap)
{
    pthread_once(&release_once, register_release);
    hv_status st = HV_OK;
    FcPattern *pat = FcNameParse((const FcChar8 *)FIG_FONT), *match = NULL;
    FcChar8 *fam = NULL, *path = NULL;
    FcResult r;
    if (!pat) return hv_error_set(HV_ERR_NOMEM, "fontconfig: out of memory");
    FcConfigSubstitute(NULL, pat, FcMatchPattern);
    FcDefaultSubstitute(pat);
    match = FcFontMatch(NULL, pat, &r);
    if (!match || FcPatternGetString(match, FC_FAMILY, 0, &fam) != FcResultMatch ||
        strcmp((const char *)fam, FIG_FONT) != 0 ||
        FcPatternGetString(match, FC_FILE, 0, &path) != FcResultMatch) {
        st = hv_error_set(HV_ERR_NOT_FOUND,
                          "font '%s' not found by fontconfig (got '%s'): install fonts-dejavu-core",
                          FIG_FONT, fam ? (const char *)fam : "nothing");
        goto done;
    }
    if (file && cap) snprintf(file, cap, "%s", (const char *)path);
done:
    if (match) FcPatternDestroy(match);
    FcPatternDestroy(pat);
    return st;
}

/* Once per process: without the font cairo falls back to a crude built-in
 * one; the figures still come out, so this is a warning, not an error. */
static void check_font_once(void)
{
    if (hv_io_figure_font(NULL, 0) != HV_OK) {
        hv_log_warn("figures: %s; text falls back to cairo's built-in font", hv_error_detail());
        hv_error_clear();
    }
}

/* ---------------------------------------------------------- the canvas */

typedef struct fig {
    cairo_surface_t *s;
    cairo_t *cr;
    int w, h;
} fig;

static const double BLACK[3] = {0, 0, 0}, GRID[3] = {0.88, 0.88, 0.88},
                    AXIS[3] = {0.25, 0.25, 0.25}, MISSING[3] = {0.78, 0.78, 0.78},
                    MARK[3] = {0.80, 0.15, 0.15}, POINT[3] = {0.16, 0.35, 0.78};

static hv_status fig_new(fig *f, int w, int h)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&release_once, register_release);
    pthread_once(&once, check_font_once);
    memset(f, 0, sizeof *f);
    f->w = w;
    f->h = h;
    f->s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(f->s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(f->s);
        f->s = NULL;
        return hv_error_set(HV_ERR_NOMEM, "figure: cannot make a %dx%d canvas", w, h);
    }
    f->cr = cairo_create(f->s);
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    cairo_select_font_face(f->cr, FIG_FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return HV_OK;
}

static void fig_free(fig *f)
{
    if (f->cr) cairo_destroy(f->cr);
    if (f->s) cairo_surface_destroy(f->s);
    memset(f, 0, sizeof *f);
}

static hv_status fig_save(fig *f, const char *path)
{
    cairo_status_t cs = cairo_status(f->cr);
    if (cs != CAIRO_STATUS_SUCCESS)
        return hv_error_set(HV_ERR_INTERNAL, "figure %s: cairo: %s", path, cairo_status_to_string(cs));
    cairo_surface_flush(f->s);
    const unsigned char *d = cairo_image_surface_get_data(f->s);
    int stride = cairo_image_surface_get_stride(f->s);
    uint8_t *rgb = malloc((size_t)f->w * (size_t)f->h * 3);
    if (!rgb) return hv_error_set(HV_ERR_NOMEM, "figure: out of memory");
    for (int y = 0; y < f->h; y++) {
        const uint32_t *row = (const uint32_t *)(d + (size_t)y * (size_t)stride);
        uint8_t *o = rgb + (size_t)y * (size_t)f->w * 3;
        for (int x = 0; x < f->w; x++) {
            uint32_t p = row[x]; /* xRGB in a native 32-bit word */
            o[3 * x] = (uint8_t)(p >> 16);
            o[3 * x + 1] = (uint8_t)(p >> 8);
            o[3 * x + 2] = (uint8_t)p;
        }
    }
    hv_status st = hv_io_png_write(path, f->w, f->h, 3, rgb);
    free(rgb);
    return st;
}

static void rgb(fig *f, const double c[3]) { cairo_set_source_rgb(f->cr, c[0], c[1], c[2]); }

/* Text with its anchor at (x, y): align -1 left, 0 centre, 1 right edge;
 * y is the vertical middle of the text. rot: 0, or -90 for a y-axis label. */
static void text(fig *f, double x, double y, double size, int align, int bold, const double c[3],
                 double rot, const char *s)
{
    if (!s || !*s) return;
    cairo_t *cr = f->cr;
    cairo_save(cr);
    cairo_select_font_face(cr, FIG_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_translate(cr, x, y);
    if (rot != 0) cairo_rotate(cr, rot * M_PI / 180.0);
    double dx = align < 0 ? -te.x_bearing : align == 0 ? -(te.x_bearing + te.width / 2)
                                                       : -(te.x_bearing + te.width);
    double dy = -(te.y_bearing + te.height / 2);
    cairo_move_to(cr, dx, dy);
    rgb(f, c);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static void line(fig *f, double x0, double y0, double x1, double y1, double width,
                 const double c[3], int dashed)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    if (dashed) {
        const double d[2] = {5, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_set_line_width(cr, width);
    rgb(f, c);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
    cairo_restore(cr);
}

static void box(fig *f, double x, double y, double w, double h, const double c[3])
{
    rgb(f, c);
    cairo_rectangle(f->cr, x, y, w, h);
    cairo_fill(f->cr);
}

static void frame(fig *f, double x, double y, double w, double h, const double c[3])
{
    cairo_set_line_width(f->cr, 1);
    rgb(f, c);
    cairo_rectangle(f->cr, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_stroke(f->cr);
}

/* Tick step of about n intervals over [lo, hi]: 1, 2 or 5 times a power of 10. */
static double nice_step(double lo, double hi, int n)
{
    double raw = (hi - lo) / (n > 0 ? n : 1);
    if (!(raw > 0) || !isfinite(raw)) return 1;
    double p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *b, size_t cap, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(b, cap, "%.*f", dec, v);
}

/* ------------------------------------------------------------- colours */

/* viridis, sampled at 9 evenly spaced points (matplotlib's published table):
 * perceptually uniform, readable in grey and by most colour-blind readers */
void hv_io_colormap(double t, uint8_t out[3])
{
    static const double vir[9][3] = {
        {0.267, 0.005, 0.329}, {0.278, 0.175, 0.483}, {0.230, 0.322, 0.546},
        {0.173, 0.449, 0.558}, {0.128, 0.567, 0.551}, {0.135, 0.659, 0.518},
        {0.360, 0.786, 0.387}, {0.668, 0.862, 0.196}, {0.993, 0.906, 0.144},
    };
    if (!(t >= 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    double s = t * 8;
    int i = (int)floor(s);
    if (i > 7) i = 7;
    double a = s - i;
    for (int k = 0; k < 3; k++) out[k] = (uint8_t)lround(255 * ((1 - a) * vir[i][k] + a * vir[i + 1][k]));
}

static void cmap(fig *f, double t)
{
    uint8_t c[3];
    hv_io_colormap(t, c);
    cairo_set_source_rgb(f->cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
}

/* ------------------------------------------------ captioned pictures */

hv_status hv_io_png_write_captioned(const char *path, int w, int h, const uint8_t *px,
                                    const hv_io_caption *items, int n)
{
    if (!path || !px || w <= 0 || h <= 0 || n < 0 || (n > 0 && !items))
        return hv_error_set(HV_ERR_ARG, "captioned picture: bad arguments");
    int lines = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].line < 0 || items[i].line >= HV_IO_CAPTION_MAX_LINES || items[i].x < 0 ||
            items[i].x >= w)
            return hv_error_set(HV_ERR_ARG, "captioned picture: caption item %d at line %d, "
                                            "column %d is outside the strip",
                                i, items[i].line, items[i].x);
        if (items[i].line + 1 > lines) lines = items[i].line + 1;
    }
    if (h > 65535 - HV_IO_CAPTION_ROWS(HV_IO_CAPTION_MAX_LINES))
        return hv_error_set(HV_ERR_LIMIT, "captioned picture: %dx%d is too large", w, h);
    fig f;
    hv_status st = fig_new(&f, w, h + HV_IO_CAPTION_ROWS(lines));
    if (st != HV_OK) return st;
    cairo_set_source_rgb(f.cr, 0, 0, 0);
    cairo_paint(f.cr);
    /* the picture's pixels go into the surface as they are (xRGB words) */
    cairo_surface_flush(f.s);
    unsigned char *d = cairo_image_surface_get_data(f.s);
    int stride = cairo_image_surface_get_stride(f.s);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(d + (size_t)y * (size_t)stride);
        const uint8_t *p = px + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++)
            row[x] = (uint32_t)p[3 * x] << 16 | (uint32_t)p[3 * x + 1] << 8 | p[3 * x + 2];
    }
    cairo_surface_mark_dirty(f.s);
    /* text stays in the strip below the picture */
    cairo_rectangle(f.cr, 0, h, w, HV_IO_CAPTION_ROWS(lines));
    cairo_clip(f.cr);
    static const double LIGHT[3] = {0.92, 0.92, 0.92};
    for (int i = 0; i < n; i++) {
        const hv_io_caption *c = &items[i];
        const int mid = h + 2 + HV_IO_CAPTION_LINE * c->line + HV_IO_CAPTION_LINE / 2;
        int x = c->x;
        if (c->swatch) {
            const double sc[3] = {c->swatch[0] / 255.0, c->swatch[1] / 255.0,
                                  c->swatch[2] / 255.0};
            cairo_set_antialias(f.cr, CAIRO_ANTIALIAS_NONE); /* a swatch of the exact colour */
            box(&f, x, mid - 5, 10, 10, sc);
            cairo_set_antialias(f.cr, CAIRO_ANTIALIAS_DEFAULT);
            x += 14;
        }
        text(&f, x, mid, 12, -1, 0, LIGHT, 0, c->text);
    }
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}

/* -------------------------------------------------------------- figures */

hv_status hv_io_plot_confusion(const char *path, const hv_io_confusion *c)
{
    if (!path || !c || c->k < 1 || c->k > 16 || !c->count)
        return hv_error_set(HV_ERR_ARG, "confusion figure: bad arguments");
    const int k = c->k, cell = k <= 4 ? 72 : 40, x0 = 120, y0 = 100;
    fig f;
    hv_status st = fig_new(&f, x0 + k * cell + 40, y0 + k * cell + 80);
    if (st != HV_OK) return st;
    text(&f, f.w / 2.0, 22, 16, 0, 1, BLACK, 0, c->title);
    text(&f, x0 + k * cell / 2.0, y0 - 48, 13, 0, 0, BLACK, 0, "predicted grade");
    text(&f, 24, y0 + k * cell / 2.0, 13, 0, 0, BLACK, -90, "true grade");
    for (int r = 0; r < k; r++) {
        long rowsum = 0;
        for (int q = 0; q < k; q++) rowsum += c->count[r * k + q];
        char lab[32];
        const char *name = c->names ? c->names[r] : NULL;
        if (!name) snprintf(lab, sizeof lab, "%d", r), name = lab;
        text(&f, x0 - 14, y0 + r * cell + cell / 2.0, 13, 1, 0, BLACK, 0, name);
        text(&f, x0 + r * cell + cell / 2.0, y0 - 18, 13, 0, 0, BLACK, 0, name);
        for (int q = 0; q < k; q++) {
            long n = c->count[r * k + q];
            double frac = rowsum ? (double)n / (double)rowsum : 0.0;
            /* white to deep blue by the row fraction (recall) */
            const double col[3] = {1 - 0.85 * frac, 1 - 0.65 * frac, 1 - 0.25 * frac};
            box(&f, x0 + q * cell, y0 + r * cell, cell, cell, col);
            snprintf(lab, sizeof lab, "%ld", n);
            const double white[3] = {1, 1, 1};
            text(&f, x0 + q * cell + cell / 2.0, y0 + r * cell + cell / 2.0, k <= 4 ? 15 : 11, 0,
                 1, frac > 0.55 ? white : BLACK, 0, lab);
        }
    }
    for (int i = 0; i <= k; i++) {
        line(&f, x0, y0 + i * cell + 0.5, x0 + k * cell, y0 + i * cell + 0.5, 1, AXIS, 0);
        line(&f, x0 + i * cell + 0.5, y0, x0 + i * cell + 0.5, y0 + k * cell, 1, AXIS, 0);
    }
    text(&f, f.w / 2.0, y0 + k * cell + 30, 13, 0, 0, BLACK, 0, c->caption);
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}

hv_status hv_io_plot_groups(const char *path, const hv_io_groups *g)
{
    if (!path || !g || g->n_groups < 1 || g->n_groups > 32 || (g->n && (!g->v || !g->group)))
        return hv_error_set(HV_ERR_ARG, "group figure: bad arguments");
    const int W = 640, H = 440, L = 74, R = 24, T = 54, B = 70, pw = W - L - R, ph = H - T - B;
    double lo = g->ylo, hi = g->yhi;
    for (size_t i = 0; i < g->n; i++) {
        if (!isfinite(g->v[i])) continue;
        if (g->v[i] < lo) lo = g->v[i];
        if (g->v[i] > hi) hi = g->v[i];
    }
    if (!(hi > lo)) hi = lo + 1;
    double step = nice_step(lo, hi, 7);
    lo = step * floor(lo / step);
    hi = step * ceil(hi / step);
    fig f;
    hv_status st = fig_new(&f, W, H);
    if (st != HV_OK) return st;
#define YPIX(val) (T + (hi - (val)) / (hi - lo) * ph)
    text(&f, W / 2.0, 24, 16, 0, 1, BLACK, 0, g->title);
    for (double y = lo; y <= hi + step * 1e-6; y += step) {
        char lab[32];
        line(&f, L, YPIX(y), L + pw, YPIX(y), 1, GRID, 0);
        fmt_tick(lab, sizeof lab, y, step);
        text(&f, L - 8, YPIX(y), 11, 1, 0, AXIS, 0, lab);
    }
    for (int e = 0; e < g->n_marks; e++) {
        double y = g->marks[e];
        if (y < lo || y > hi) continue;
        line(&f, L, YPIX(y), L + pw, YPIX(y), 1.2, MARK, 1);
        if (g->mark_names && g->mark_names[e])
            text(&f, L + pw - 4, YPIX(y) - 8, 10, 1, 0, MARK, 0, g->mark_names[e]);
    }
    line(&f, L + 0.5, T, L + 0.5, T + ph, 1, AXIS, 0);
    line(&f, L, T + ph + 0.5, L + pw, T + ph + 0.5, 1, AXIS, 0);
    text(&f, 20, T + ph / 2.0, 13, 0, 0, BLACK, -90, g->ylabel);
    const int ng = g->n_groups;
    for (int k = 0; k < ng; k++) {
        double cx = L + (2 * k + 1) * pw / (2.0 * ng), sum = 0;
        long cnt = 0;
        cairo_set_source_rgba(f.cr, POINT[0], POINT[1], POINT[2], 0.55);
        for (size_t i = 0; i < g->n; i++) {
            if (g->group[i] != k || !isfinite(g->v[i])) continue;
            /* deterministic horizontal jitter from the row index */
            uint64_t hsh = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
            double dx = ((double)(hsh >> 40) / (double)(1ull << 24) - 0.5) * pw / (2.6 * ng);
            cairo_arc(f.cr, cx + dx, YPIX(g->v[i]), 2.6, 0, 2 * M_PI);
            cairo_fill(f.cr);
            sum += g->v[i];
            cnt++;
        }
        if (cnt) line(&f, cx - pw / (3.0 * ng), YPIX(sum / cnt), cx + pw / (3.0 * ng), YPIX(sum / cnt),
                      2.5, BLACK, 0);
        char lab[64];
        if (g->group_names && g->group_names[k]) snprintf(lab, sizeof lab, "%s", g->group_names[k]);
        else snprintf(lab, sizeof lab, "%d", k);
        text(&f, cx, T + ph + 18, 13, 0, 0, BLACK, 0, lab);
        snprintf(lab, sizeof lab, "n = %ld", cnt);
        text(&f, cx, T + ph + 36, 11, 0, 0, AXIS, 0, lab);
    }
    text(&f, L + pw / 2.0, H - 12, 11, 0, 0, AXIS, 0, g->caption);
#undef YPIX
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}

hv_status hv_io_plot_heatmap(const char *path, const hv_io_heatmap *m)
{
    if (!path || !m || m->nx < 1 || m->ny < 1 || !m->z || !(m->zhi > m->zlo))
        return hv_error_set(HV_ERR_ARG, "heatmap: bad arguments");
    int big = m->nx > m->ny ? m->nx : m->ny;
    double cell = fmin(fmax(320.0 / big, 2), 16);
    double mw = m->nx * cell, mh = m->ny * cell, bh = fmax(mh, 200);
    const double L = 44, T = 50, gap = 42, bw = 18;
    fig f;
    hv_status st = fig_new(&f, (int)ceil(L + mw + gap + bw + 70), (int)ceil(T + bh + 56));
    if (st != HV_OK) return st;
    text(&f, L, 24, 16, -1, 1, BLACK, 0, m->title);
    cairo_set_antialias(f.cr, CAIRO_ANTIALIAS_NONE); /* crisp cells */
    for (int iy = 0; iy < m->ny; iy++)
        for (int ix = 0; ix < m->nx; ix++) {
            double z = m->z[ix + (size_t)m->nx * iy];
            if (isfinite(z)) cmap(&f, (z - m->zlo) / (m->zhi - m->zlo));
            else rgb(&f, MISSING);
            cairo_rectangle(f.cr, L + ix * cell, T + iy * cell, cell, cell);
            cairo_fill(f.cr);
        }
    cairo_set_antialias(f.cr, CAIRO_ANTIALIAS_DEFAULT);
    frame(&f, L - 1, T - 1, mw + 2, mh + 2, AXIS);
    text(&f, L - 10, T + mh / 2, 13, 1, 1, BLACK, 0, m->left);
    text(&f, L + mw + 8, T + mh / 2, 13, -1, 1, BLACK, 0, m->right);
    text(&f, L + mw + 8, T + 6, 11, -1, 0, AXIS, 0, m->top);
    text(&f, L + mw + 8, T + mh - 6, 11, -1, 0, AXIS, 0, m->bottom);
    text(&f, L, T + mh + 18, 11, -1, 0, AXIS, 0, m->caption);
    /* colour bar */
    double bx = L + mw + gap;
    for (int y = 0; y < (int)bh; y++) {
        cmap(&f, 1.0 - (double)y / (bh - 1));
        cairo_rectangle(f.cr, bx, T + y, bw, 1);
        cairo_fill(f.cr);
    }
    frame(&f, bx - 1, T - 1, bw + 2, bh + 2, AXIS);
    double step = nice_step(m->zlo, m->zhi, 5);
    for (double t = step * ceil(m->zlo / step); t <= m->zhi + step * 1e-6; t += step) {
        double y = T + (m->zhi - t) / (m->zhi - m->zlo) * (bh - 1);
        char lab[32];
        fmt_tick(lab, sizeof lab, t, step);
        line(&f, bx + bw, y, bx + bw + 4, y, 1, AXIS, 0);
        text(&f, bx + bw + 7, y, 11, -1, 0, BLACK, 0, lab);
    }
    const double white[3] = {1, 1, 1};
    for (int q = 0; q < m->n_marks; q++) {
        double t = m->marks[q];
        if (t < m->zlo || t > m->zhi) continue;
        double y = T + (m->zhi - t) / (m->zhi - m->zlo) * (bh - 1);
        line(&f, bx, y, bx + bw, y, 1.5, white, 0);
    }
    text(&f, bx + bw / 2, T + bh + 16, 12, 0, 0, BLACK, 0, m->zlabel);
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}

hv_status hv_io_plot_lines(const char *path, const hv_io_lines *p)
{
    if (!path || !p || p->n_series < 1 || !p->series)
        return hv_error_set(HV_ERR_ARG, "line plot: bad arguments");
    const int W = 520, H = 340, L = 64, R = 20, T = 50, B = 62, pw = W - L - R, ph = H - T - B;
    double xlo = INFINITY, xhi = -INFINITY, ylo = p->ylo, yhi = p->yhi;
    int fixed = p->yhi > p->ylo;
    if (!fixed) ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x ? p->series[s].x[i] : i, y = p->series[s].y[i];
            if (!isfinite(x)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x);
            if (!fixed && isfinite(y)) ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!isfinite(xlo)) xlo = 0, xhi = 1;
    if (!(xhi > xlo)) xhi = xlo + 1;
    if (!isfinite(ylo)) ylo = 0, yhi = 1;
    if (!(yhi > ylo)) yhi = ylo + 1;
    double ys = nice_step(ylo, yhi, 5);
    if (!fixed) ylo = ys * floor(ylo / ys), yhi = ys * ceil(yhi / ys);
    fig f;
    hv_status st = fig_new(&f, W, H);
    if (st != HV_OK) return st;
#define XPIX(v) (L + ((v) - xlo) / (xhi - xlo) * pw)
#define YPIX(v) (T + (yhi - fmin(fmax((v), ylo), yhi)) / (yhi - ylo) * ph)
    text(&f, L, 24, 16, -1, 1, BLACK, 0, p->title);
    for (double y = ys * ceil(ylo / ys); y <= yhi + ys * 1e-6; y += ys) {
        char lab[32];
        fmt_tick(lab, sizeof lab, y, ys);
        line(&f, L, YPIX(y), L + pw, YPIX(y), 1, fabs(y) < ys * 1e-6 ? AXIS : GRID, 0);
        text(&f, L - 8, YPIX(y), 11, 1, 0, AXIS, 0, lab);
    }
    if (!p->xleft && !p->xright) {
        double xs = nice_step(xlo, xhi, 6);
        for (double x = xs * ceil(xlo / xs); x <= xhi + xs * 1e-6; x += xs) {
            char lab[32];
            fmt_tick(lab, sizeof lab, x, xs);
            line(&f, XPIX(x), T + ph, XPIX(x), T + ph + 4, 1, AXIS, 0);
            text(&f, XPIX(x), T + ph + 14, 11, 0, 0, AXIS, 0, lab);
        }
    }
    for (int e = 0; e < p->n_marks; e++)
        if (p->marks[e] >= ylo && p->marks[e] <= yhi)
            line(&f, L, YPIX(p->marks[e]), L + pw, YPIX(p->marks[e]), 1.2, MARK, 1);
    frame(&f, L, T, pw + 1, ph + 1, AXIS);
    static const double pal[4][3] = {{0.12, 0.47, 0.71}, {1.0, 0.50, 0.05}, {0.17, 0.63, 0.17},
                                     {0.84, 0.15, 0.16}};
    for (int s = 0; s < p->n_series; s++) {
        const hv_io_series *sr = &p->series[s];
        cairo_save(f.cr);
        cairo_rectangle(f.cr, L, T, pw + 1, ph + 1);
        cairo_clip(f.cr);
        cairo_set_line_width(f.cr, 2);
        cairo_set_line_join(f.cr, CAIRO_LINE_JOIN_ROUND);
        rgb(&f, pal[s % 4]);
        int open = 0;
        for (int i = 0; i < sr->n; i++) {
            double x = sr->x ? sr->x[i] : i, y = sr->y[i];
            if (!isfinite(x) || !isfinite(y)) {
                if (open) cairo_stroke(f.cr);
                open = 0;
            } else if (open) {
                cairo_line_to(f.cr, XPIX(x), YPIX(y));
            } else {
                cairo_move_to(f.cr, XPIX(x), YPIX(y));
                open = 1;
            }
        }
        if (open) cairo_stroke(f.cr);
        /* a point with no finite neighbour draws no line: give it a dot */
        for (int i = 0; i < sr->n; i++) {
            double x = sr->x ? sr->x[i] : i, y = sr->y[i];
            int prev = i > 0 && isfinite(sr->y[i - 1]), next = i + 1 < sr->n && isfinite(sr->y[i + 1]);
            if (!isfinite(x) || !isfinite(y) || prev || next) continue;
            cairo_arc(f.cr, XPIX(x), YPIX(y), 2.5, 0, 2 * M_PI);
            cairo_fill(f.cr);
        }
        cairo_restore(f.cr);
        if (sr->name && p->n_series > 1) {
            line(&f, L + pw - 120, T + 14 + 16 * s, L + pw - 100, T + 14 + 16 * s, 2, pal[s % 4], 0);
            text(&f, L + pw - 94, T + 14 + 16 * s, 11, -1, 0, BLACK, 0, sr->name);
        }
    }
    text(&f, L, T + ph + 16, 13, -1, 1, BLACK, 0, p->xleft);
    text(&f, L + pw, T + ph + 16, 13, 1, 1, BLACK, 0, p->xright);
    text(&f, L + pw / 2.0, H - 16, 12, 0, 0, BLACK, 0, p->xlabel);
    text(&f, 18, T + ph / 2.0, 12, 0, 0, BLACK, -90, p->ylabel);
#undef XPIX
#undef YPIX
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}

hv_status hv_io_plot_bars(const char *path, const hv_io_bars *b)
{
    if (!path || !b || b->n_groups < 1 || b->n_groups > 16 || b->n_series < 1 ||
        b->n_series > 6 || !b->value || !(b->yhi > b->ylo))
        return hv_error_set(HV_ERR_ARG, "bar figure: bad arguments");
    static const double SERIES[6][3] = {{0.16, 0.35, 0.78}, {0.93, 0.55, 0.14},
                                        {0.22, 0.62, 0.33}, {0.60, 0.35, 0.70},
                                        {0.55, 0.55, 0.55}, {0.80, 0.15, 0.15}};
    const int ng = b->n_groups, ns = b->n_series;
    const int W = 150 * ng + 140 > 680 ? 150 * ng + 140 : 680, H = 460, L = 74, R = 24, T = 78, B = 84;
    const double pw = W - L - R, ph = H - T - B, lo = b->ylo, hi = b->yhi;
    double step = nice_step(lo, hi, 6);
    fig f;
    hv_status st = fig_new(&f, W, H);
    if (st != HV_OK) return st;
#define YPIX(val) (T + (hi - fmin(fmax((val), lo), hi)) / (hi - lo) * ph)
    text(&f, W / 2.0, 22, 16, 0, 1, BLACK, 0, b->title);
    for (double y = lo; y <= hi + step * 1e-6; y += step) {
        char lab[32];
        line(&f, L, YPIX(y), L + pw, YPIX(y), 1, GRID, 0);
        fmt_tick(lab, sizeof lab, y, step);
        text(&f, L - 8, YPIX(y), 11, 1, 0, AXIS, 0, lab);
    }
    line(&f, L + 0.5, T, L + 0.5, T + ph, 1, AXIS, 0);
    line(&f, L, T + ph + 0.5, L + pw, T + ph + 0.5, 1, AXIS, 0);
    text(&f, 20, T + ph / 2.0, 13, 0, 0, BLACK, -90, b->ylabel);
    /* legend: one swatch per series, then the reference mark */
    double lx = L;
    for (int s = 0; s < ns; s++) {
        box(&f, lx, 44, 12, 12, SERIES[s]);
        text(&f, lx + 17, 50, 12, -1, 0, BLACK, 0, b->series_names ? b->series_names[s] : NULL);
        lx += 105;
    }
    if (b->ref) {
        line(&f, lx, 50, lx + 16, 50, 3, BLACK, 0);
        text(&f, lx + 22, 50, 12, -1, 0, BLACK, 0, b->ref_name);
    }
    const double gw = pw / ng, bw = gw * 0.7 / ns;
    for (int g = 0; g < ng; g++) {
        double x0 = L + g * gw + gw * 0.15;
        for (int s = 0; s < ns; s++) {
            double v = b->value[g * ns + s], x = x0 + s * bw;
            if (isfinite(v)) {
                box(&f, x + 1, YPIX(v), bw - 2, YPIX(lo) - YPIX(v), SERIES[s]);
                double sp = b->spread ? b->spread[g * ns + s] : NAN;
                if (isfinite(sp) && sp > 0) {
                    double xc = x + bw / 2;
                    line(&f, xc, YPIX(v - sp), xc, YPIX(v + sp), 1.4, BLACK, 0);
                    line(&f, xc - 4, YPIX(v - sp), xc + 4, YPIX(v - sp), 1.4, BLACK, 0);
                    line(&f, xc - 4, YPIX(v + sp), xc + 4, YPIX(v + sp), 1.4, BLACK, 0);
                }
            } else {
                text(&f, x + bw / 2, YPIX(lo) - 10, 10, 0, 0, AXIS, 0, "n/a");
            }
            double r = b->ref ? b->ref[g * ns + s] : NAN;
            if (isfinite(r)) line(&f, x + 1, YPIX(r), x + bw - 1, YPIX(r), 3, BLACK, 0);
        }
        text(&f, L + (g + 0.5) * gw, T + ph + 18, 13, 0, 0, BLACK, 0,
             b->group_names ? b->group_names[g] : NULL);
        if (b->group_notes)
            text(&f, L + (g + 0.5) * gw, T + ph + 36, 10, 0, 0, MARK, 0, b->group_notes[g]);
    }
    text(&f, L + pw / 2.0, H - 14, 11, 0, 0, AXIS, 0, b->caption);
#undef YPIX
    st = fig_save(&f, path);
    fig_free(&f);
    return st;
}
