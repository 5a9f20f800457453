/* image: a decoded 8-bit RGB image and the limits a decode must respect.
 *
 * Ownership: a struct image owns its pixel buffer; img_deinit() frees it and is safe on a
 * zeroed or half-built image. Images are plain values handed between threads by moving the
 * struct (never shared). Any thread. */
#ifndef VELA_VISION_IMAGE_H
#define VELA_VISION_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct image {
    int32_t width;  /* pixels, >= 1 once decoded */
    int32_t height; /* pixels, >= 1 once decoded */
    uint8_t *rgb;   /* (height, width, 3) R,G,B bytes, row-major, owned */
};

/* Bounds checked by img_decode before anything the size of the image is allocated. The
 * defaults are the VELA_IMG_* values of util/limits.h; a caller may only tighten them
 * (the fuzzer and the server's per-request settings do). */
struct img_limits {
    size_t max_encoded_bytes; /* encoded input size */
    int32_t max_side;         /* width and height each */
    int64_t max_pixels;       /* width * height */
};

void img_limits_default(struct img_limits *l);

/* Frees the pixels and zeroes *im. NULL and zeroed images are fine. */
void img_deinit(struct image *im);

/* Allocates an uninitialized width x height RGB image into *im (zeroed on failure).
 * Returns 0, or VELA_ENOMEM / VELA_EINVAL (non-positive or overflowing size). */
struct err;
int img_alloc(struct image *im, int32_t width, int32_t height, struct err *e);

#endif
