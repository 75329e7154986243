/*
 * hv_test_png.h: pictures read back with libpng's own reader (not our
 * writer's code), for the tests that check what a command or the store's
 * export drew. Link the test with PNG::PNG.
 */
#ifndef HV_TEST_PNG_H
#define HV_TEST_PNG_H

#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The PNG at path as 8-bit RGB (*w x *h pixels, row major; the caller
 * frees it), and in *colour (when not NULL) 3 for a colour file, 1 for a
 * grey one; NULL on failure. */
static inline uint8_t *hv_test_read_png(const char *path, int *w, int *h, int *colour)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    if (colour) *colour = (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    im.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
    if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&im);
        return NULL;
    }
    *w = (int)im.width;
    *h = (int)im.height;
    return px;
}

#endif /* HV_TEST_PNG_H */
