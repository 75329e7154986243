/*
 * test_draw.c: the drawing module (src/io/draw.c).
 *
 * Every picture is read back with libpng's own reader (not our writer's
 * code) and checked against values fixed by hand:
 *  - grey and RGB pixels round-trip exactly; a failed write leaves nothing;
 *  - contours: on a hand-drawn 6x6 label picture, exactly the edge pixels
 *    (worked out on paper below) are coloured, the target's red;
 *  - a mask's outline: on a hand-drawn 6x7 mask (an L shape and a pixel on
 *    the border), exactly the edge pixels worked out on paper take the
 *    colour, every other pixel keeps what the picture had (no grey drawn);
 *  - a captioned picture: its pixels come back unchanged above a strip of
 *    HV_IO_CAPTION_ROWS(lines) rows, the swatch has its exact colour at the
 *    documented rows and columns, the text leaves light pixels; an item
 *    outside the strip is refused;
 *  - viridis end points are matplotlib's #440154 and #fde725;
 *  - the heatmap puts the colour of each cell's value where the layout says
 *    (left 44 px, top 50 px, 16 px cells for a 10x10 map), grey for NaN;
 *  - the text font is DejaVu Sans as fontconfig resolves it (without it,
 *    cairo falls back to a crude built-in font and the figures still come
 *    out, so only this check sees a machine that lacks fonts-dejavu-core);
 *  - text is really drawn: the title band of every figure holds dark,
 *    anti-aliased pixels (a bitmap font has no grey levels).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "hv/io.h"
#include "hv_test.h"
#include "hv_test_png.h"

static const uint8_t *at(const uint8_t *px, int w, int x, int y) { return px + 3 * ((size_t)y * w + x); }

static int same(const uint8_t *p, int r, int g, int b) { return p[0] == r && p[1] == g && p[2] == b; }

/* Dark pixels (all channels < 100) and grey-level pixels (anti-aliasing:
 * 100..230) in rows [y0, y1). */
static void count_ink(const uint8_t *px, int w, int y0, int y1, long *dark, long *mid)
{
    *dark = *mid = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = at(px, w, x, y);
            int m = p[0] > p[1] ? p[0] : p[1];
            m = m > p[2] ? m : p[2];
            if (m < 100) (*dark)++;
            else if (m < 230) (*mid)++;
        }
}

static void test_png_roundtrip(const char *dir)
{
    char path[4200];
    uint8_t grey[7 * 5], rgb[7 * 5 * 3];
    for (int i = 0; i < 35; i++) grey[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 105; i++) rgb[i] = (uint8_t)(255 - i * 2);
    snprintf(path, sizeof path, "%s/grey.png", dir);
    HV_CHECK_OK(hv_io_png_write(path, 7, 5, 1, grey));
    int w, h, c;
    uint8_t *back = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(back != NULL, "grey PNG reads back with libpng");
    HV_CHECK(w == 7 && h == 5 && c == 1, "grey PNG is 7x5 grey (got %dx%d, %d channels)", w, h, c);
    int bad = 0;
    for (int i = 0; i < 35; i++) bad += !same(back + 3 * i, grey[i], grey[i], grey[i]);
    HV_CHECK(bad == 0, "grey pixels round-trip exactly (%d differ)", bad);
    free(back);

    snprintf(path, sizeof path, "%s/rgb.png", dir);
    HV_CHECK_OK(hv_io_png_write(path, 7, 5, 3, rgb));
    back = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(back != NULL, "RGB PNG reads back with libpng");
    HV_CHECK(w == 7 && h == 5 && c == 3, "RGB PNG is 7x5 colour");
    HV_CHECK(memcmp(back, rgb, sizeof rgb) == 0, "RGB pixels round-trip exactly");
    free(back);

    /* a write that cannot happen: an error naming the path, nothing left */
    snprintf(path, sizeof path, "%s/no-such-dir/x.png", dir);
    hv_status st = hv_io_png_write(path, 7, 5, 1, grey);
    HV_CHECK(st != HV_OK, "writing into a missing folder fails");
    HV_CHECK(strstr(hv_error_detail(), "no-such-dir") != NULL, "the message names the path: %s",
             hv_error_detail());
    hv_error_clear();
    HV_CHECK(hv_io_png_write(path, 0, 5, 1, grey) == HV_ERR_ARG, "a 0-wide picture is refused");
    hv_error_clear();
    int leftovers = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) leftovers += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    HV_CHECK(d && leftovers == 0, "no temporary file is left behind (%d)", leftovers);
}

static void test_contours(void)
{
    /* 6x6 labels: a 4x4 block of label 3 at (1..4, 1..4) with a 2x2 block of
     * label 7 (the target) inside at (2..3, 2..3), and label 5 in the
     * picture's top-right corner pixel.
     *   . . . . . 5
     *   . 3 3 3 3 .
     *   . 3 7 7 3 .
     *   . 3 7 7 3 .
     *   . 3 3 3 3 .
     *   . . . . . .
     * Edge pixels by hand: every 3 (each touches '.' or a 7), every 7 (each
     * touches a 3), and the 5 (on the border). So all labelled pixels are
     * edges here; a 3 is drawn in palette[3 % 6], the 7 in red, the 5 in
     * palette[5 % 6]; '.' pixels keep their grey. */
    uint8_t lab[36] = {0}, grey[36], rgb[36 * 3];
    for (int y = 1; y <= 4; y++)
        for (int x = 1; x <= 4; x++) lab[y * 6 + x] = 3;
    for (int y = 2; y <= 3; y++)
        for (int x = 2; x <= 3; x++) lab[y * 6 + x] = 7;
    lab[5] = 5;
    for (int i = 0; i < 36; i++) grey[i] = (uint8_t)(100 + i);
    hv_io_paint_contours(rgb, 18, grey, lab, 6, 6, 7);
    int bad = 0;
    for (int i = 0; i < 36; i++) {
        const uint8_t *p = rgb + 3 * i;
        if (lab[i] == 0) bad += !same(p, grey[i], grey[i], grey[i]);
        else if (lab[i] == 7) bad += !same(p, 255, 40, 40);
        else if (lab[i] == 3) bad += !same(p, 255, 80, 255);
        else if (lab[i] == 5) bad += !same(p, 120, 140, 255);
    }
    HV_CHECK(bad == 0, "contour colours match the hand-worked picture (%d pixels differ)", bad);

    /* an 8x8 block of one label: only its 28 border pixels are edges, the 36
     * inner ones keep their grey */
    uint8_t lab2[64], grey2[64], rgb2[64 * 3];
    memset(lab2, 9, sizeof lab2);
    memset(grey2, 77, sizeof grey2);
    hv_io_paint_contours(rgb2, 24, grey2, lab2, 8, 8, 9);
    int red = 0, grey_left = 0;
    for (int i = 0; i < 64; i++) {
        red += same(rgb2 + 3 * i, 255, 40, 40);
        grey_left += same(rgb2 + 3 * i, 77, 77, 77);
    }
    HV_CHECK(red == 28 && grey_left == 36, "8x8 block: 28 edge pixels red, 36 inside grey (%d, %d)",
             red, grey_left);
}

static void test_outline(void)
{
    /* 7 wide, 6 high: an L of 1s and one pixel on the right border
     *   . . . . . . .
     *   . 1 1 . . . .
     *   . 1 1 . . . 1
     *   . 1 1 1 1 . .
     *   . 1 1 1 1 . .
     *   . . . . . . .
     * By hand: a 1 is interior only when its four neighbours are 1s; that
     * is (row 3, col 2) alone ((2, 2) has a '.' right of it, (3, 3) above
     * it, row 4 below it). The other 12 are edges, the border pixel at
     * (2, 6) among them. */
    uint8_t mask[42] = {0}, rgb[42 * 3];
    const int on[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 1}, {3, 2}, {3, 3}, {3, 4},
                         {4, 1}, {4, 2}, {4, 3}, {4, 4}, {2, 6}};
    for (size_t q = 0; q < sizeof on / sizeof on[0]; q++) mask[on[q][0] * 7 + on[q][1]] = 1;
    for (int i = 0; i < 42 * 3; i++) rgb[i] = (uint8_t)(i % 97);
    const uint8_t col[3] = {40, 200, 255};
    hv_io_paint_outline(rgb, 21, mask, 7, 6, col);
    int bad = 0, coloured = 0;
    for (int i = 0; i < 42; i++) {
        const uint8_t *p = rgb + 3 * i;
        int edge = mask[i] && i != 3 * 7 + 2;
        if (edge) bad += !same(p, 40, 200, 255), coloured++;
        else bad += !same(p, (3 * i) % 97, (3 * i + 1) % 97, (3 * i + 2) % 97);
    }
    HV_CHECK(bad == 0 && coloured == 12,
             "outline: the 12 hand-worked edge pixels coloured, the rest untouched (%d differ)",
             bad);
}

static void test_captioned(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/captioned.png", dir);
    enum { W = 120, H = 3 };
    uint8_t px[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) px[i] = (uint8_t)(i * 7 % 251);
    const uint8_t sw[3] = {255, 40, 40};
    const hv_io_caption cap[2] = {{0, 2, NULL, "one"}, {1, 30, sw, "two"}};
    HV_REQUIRE_V(hv_io_png_write_captioned(path, W, H, px, cap, 2) == HV_OK, "captioned: %s",
                 hv_error_detail());
    int w = 0, h = 0, c = 0;
    uint8_t *got = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(got != NULL, "captioned picture reads back");
    /* 2 lines: 2 x 18 + 4 rows of strip */
    HV_CHECK(w == W && h == H + 40, "captioned: %d x %d (want %d x %d)", w, h, W, H + 40);
    if (w == W && h == H + 40) {
        HV_CHECK(!memcmp(got, px, sizeof px), "captioned: the picture's pixels unchanged");
        /* line 1's middle row: H + 2 + 18 + 9; the swatch 10 x 10 from 5 rows above it, at
         * the item's column */
        int bad = 0, light = 0;
        for (int y = H + 24; y < H + 34; y++)
            for (int x = 30; x < 40; x++) bad += !same(got + 3 * (y * W + x), 255, 40, 40);
        for (int y = H; y < H + 20; y++)
            for (int x = 0; x < W; x++) light += got[3 * (y * W + x)] > 100;
        HV_CHECK(bad == 0, "captioned: the swatch's 100 pixels exact (%d differ)", bad);
        HV_CHECK(light > 10, "captioned: line 0's text drawn (%d light pixels)", light);
    }
    free(got);
    const hv_io_caption off[1] = {{0, W, NULL, "x"}};
    HV_CHECK(hv_io_png_write_captioned(path, W, H, px, off, 1) == HV_ERR_ARG &&
                 strstr(hv_error_detail(), "outside the strip"),
             "an item past the right edge is refused: %s", hv_error_detail());
    hv_error_clear();
}

static void test_colormap(void)
{
    uint8_t c[3];
    hv_io_colormap(0, c);
    HV_CHECK(same(c, 0x44, 0x01, 0x54), "viridis(0) = #440154 (got %02x%02x%02x)", c[0], c[1], c[2]);
    hv_io_colormap(1, c);
    HV_CHECK(same(c, 0xfd, 0xe7, 0x25), "viridis(1) = #fde725 (got %02x%02x%02x)", c[0], c[1], c[2]);
    hv_io_colormap(NAN, c);
    HV_CHECK(same(c, 0x44, 0x01, 0x54), "NaN maps to the low end");
    hv_io_colormap(7, c);
    HV_CHECK(same(c, 0xfd, 0xe7, 0x25), "values above 1 clamp");
    /* matplotlib's viridis at 0.5 is #21918c (33, 145, 140): within 3 levels */
    hv_io_colormap(0.5, c);
    HV_CHECK(abs(c[0] - 33) <= 3 && abs(c[1] - 145) <= 3 && abs(c[2] - 140) <= 3,
             "viridis(0.5) ~ #21918c (got %d,%d,%d)", c[0], c[1], c[2]);
}

static void test_heatmap(const char *dir)
{
    /* 10x10 map: column 0 at zlo, column 9 at zhi, cell (5, 5) NaN */
    double z[100];
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++) z[x + 10 * y] = x == 0 ? -20 : x == 9 ? 60 : 20;
    z[5 + 10 * 5] = NAN;
    const double marks[3] = {20, 25, 40};
    hv_io_heatmap hm = {.title = "L1 height loss", .caption = "caption", .zlabel = "loss %",
                        .left = "A", .right = "P", .top = "R", .bottom = "L", .nx = 10, .ny = 10,
                        .z = z, .zlo = -20, .zhi = 60, .n_marks = 3, .marks = marks};
    char path[4200];
    snprintf(path, sizeof path, "%s/heatmap.png", dir);
    HV_REQUIRE_V(hv_io_plot_heatmap(path, &hm) == HV_OK, "heatmap written: %s", hv_error_detail());
    int w, h, c;
    uint8_t *px = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(px != NULL, "heatmap reads back");
    /* layout: cells of 16 px from (44, 50); the centre of cell (ix, iy) is
     * (44 + 16 ix + 8, 50 + 16 iy + 8) */
    const uint8_t *p0 = at(px, w, 52, 58), *p9 = at(px, w, 44 + 16 * 9 + 8, 58),
                  *pn = at(px, w, 44 + 16 * 5 + 8, 50 + 16 * 5 + 8), *pm = at(px, w, 44 + 16 * 3 + 8, 90);
    uint8_t lo[3], hi[3], mid[3];
    hv_io_colormap(0, lo);
    hv_io_colormap(1, hi);
    hv_io_colormap(0.5, mid);
    HV_CHECK(same(p0, lo[0], lo[1], lo[2]), "column 0 (z = zlo) is viridis(0): %d,%d,%d", p0[0], p0[1], p0[2]);
    HV_CHECK(same(p9, hi[0], hi[1], hi[2]), "column 9 (z = zhi) is viridis(1): %d,%d,%d", p9[0], p9[1], p9[2]);
    HV_CHECK(same(pm, mid[0], mid[1], mid[2]), "z = 20 of [-20, 60] is viridis(0.5)");
    HV_CHECK(pn[0] == pn[1] && pn[1] == pn[2] && pn[0] > 150 && pn[0] < 230,
             "the NaN cell is light grey: %d,%d,%d", pn[0], pn[1], pn[2]);
    long dark, aa;
    count_ink(px, w, 8, 40, &dark, &aa);
    HV_CHECK(dark > 50 && aa > 20, "title text drawn, anti-aliased (%ld dark, %ld grey px)", dark, aa);
    free(px);
}

static void test_figures(const char *dir)
{
    char path[4200];
    int w, h, c;
    long dark, aa;
    /* confusion: the first row has all its cases on the diagonal, so its
     * diagonal cell is the darkest blue (1 - 0.85, 1 - 0.65, 1 - 0.25);
     * an empty row's cells stay white. Cells: 72 px from (120, 100). */
    const long count[9] = {10, 0, 0, 0, 0, 0, 2, 3, 5};
    const char *names[3] = {"0", "1", "2"};
    hv_io_confusion cf = {.title = "Grader on val", .caption = "macro-F1 0.5", .k = 3,
                          .names = names, .count = count};
    snprintf(path, sizeof path, "%s/confusion.png", dir);
    HV_REQUIRE_V(hv_io_plot_confusion(path, &cf) == HV_OK, "confusion written");
    uint8_t *px = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(px != NULL, "confusion reads back");
    const uint8_t *d = at(px, w, 120 + 10, 100 + 10), *e = at(px, w, 120 + 72 + 10, 100 + 72 + 10);
    HV_CHECK(abs(d[0] - 38) <= 1 && abs(d[1] - 89) <= 1 && abs(d[2] - 191) <= 1,
             "a row all on the diagonal is the darkest cell: %d,%d,%d", d[0], d[1], d[2]);
    HV_CHECK(same(e, 255, 255, 255), "an empty row's cell is white: %d,%d,%d", e[0], e[1], e[2]);
    count_ink(px, w, 8, 36, &dark, &aa);
    HV_CHECK(dark > 50 && aa > 20, "confusion title drawn (%ld dark, %ld grey px)", dark, aa);
    free(px);

    const double v[6] = {1, 2, 22, 30, 45, NAN};
    const int g[6] = {0, 0, 1, 2, 3, 1};
    const double marks[1] = {20};
    hv_io_groups gr = {.title = "Max RHLV by grade", .ylabel = "max RHLV %", .n = 6, .v = v,
                       .group = g, .n_groups = 4, .ylo = -10, .yhi = 60, .n_marks = 1, .marks = marks};
    snprintf(path, sizeof path, "%s/groups.png", dir);
    HV_REQUIRE_V(hv_io_plot_groups(path, &gr) == HV_OK, "group figure written");
    px = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(px != NULL, "group figure reads back");
    count_ink(px, w, 8, 40, &dark, &aa);
    HV_CHECK(dark > 50 && aa > 20, "group figure title drawn (%ld dark, %ld grey px)", dark, aa);
    free(px);

    const double y[5] = {0, 10, NAN, 30, 20};
    hv_io_series sr = {.name = "loss", .n = 5, .y = y};
    hv_io_lines lp = {.title = "L1 loss along AP", .xlabel = "AP", .ylabel = "%", .n_series = 1,
                      .series = &sr, .ylo = -20, .yhi = 60};
    snprintf(path, sizeof path, "%s/lines.png", dir);
    HV_REQUIRE_V(hv_io_plot_lines(path, &lp) == HV_OK, "line plot written");
    px = hv_test_read_png(path, &w, &h, &c);
    HV_REQUIRE_V(px != NULL, "line plot reads back");
    count_ink(px, w, 8, 40, &dark, &aa);
    HV_CHECK(dark > 50 && aa > 20, "line plot title drawn (%ld dark, %ld grey px)", dark, aa);
    free(px);

    HV_CHECK(hv_io_plot_heatmap(path, &(hv_io_heatmap){.nx = 0}) == HV_ERR_ARG,
             "a heatmap without cells is refused");
    hv_error_clear();
}

int main(void)
{
    const char *dir = hv_test_tmpdir("draw");
    HV_REQUIRE(dir != NULL, "scratch folder");
    char font[4096] = "";
    hv_status fst = hv_io_figure_font(font, sizeof font);
    HV_CHECK(fst == HV_OK && strstr(font, "DejaVuSans") != NULL,
             "figure text uses DejaVu Sans from fontconfig (%s%s)", font,
             fst == HV_OK ? "" : hv_error_detail());
    hv_error_clear();
    test_png_roundtrip(dir);
    test_contours();
    test_outline();
    test_captioned(dir);
    test_colormap();
    test_heatmap(dir);
    test_figures(dir);
    return hv_test_done();
}
