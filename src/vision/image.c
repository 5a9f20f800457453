/* image: the RGB image struct's allocation and the default decode limits.
 * Invariant: an image with rgb != NULL has width, height >= 1 and width*height*3 bytes. */
#include "vision/image.h"

#include "util/err.h"
#include "util/limits.h"
#include "util/size.h"

#include <stdlib.h>
#include <string.h>

void img_limits_default(struct img_limits *l) {
    l->max_encoded_bytes = VELA_IMG_MAX_ENCODED_BYTES;
    l->max_side = VELA_IMG_MAX_SIDE;
    l->max_pixels = VELA_IMG_MAX_PIXELS;
}

void img_deinit(struct image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

int img_alloc(struct image *im, int32_t width, int32_t height, struct err *e) {
    memset(im, 0, sizeof *im);
    size_t n;
    if (width < 1 || height < 1 || !size_mul_ok((size_t)width, (size_t)height, &n) ||
        !size_mul_ok(n, 3, &n))
        return err_set(e, VELA_EINVAL, "image size %dx%d is invalid", (int)width, (int)height);
    im->rgb = malloc(n);
    if (!im->rgb) return err_set(e, VELA_ENOMEM, "image %dx%d: out of memory", width, height);
    im->width = width;
    im->height = height;
    return 0;
}
