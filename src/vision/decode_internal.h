/* decode_internal: helpers shared by the per-format decoders of vision/decode*.c; not part
 * of the module's interface. Any thread. */
#ifndef VELA_VISION_DECODE_INTERNAL_H
#define VELA_VISION_DECODE_INTERNAL_H

#include "util/err.h"
#include "vision/image.h"

#include <stddef.h>
#include <stdint.h>

/* Checks a header's width x height against lim (VELA_EFORMAT for zero sizes, VELA_ELIMIT
 * above a limit); `what` names the format in the message. */
int img_check_dims(const char *what, int64_t width, int64_t height, const struct img_limits *lim,
                   struct err *e);

/* Pillow's paste(im, mask=alpha) of one RGBA pixel onto opaque white:
 * out = DIV255(255*(255-a) + v*a) with DIV255(t) = ((t+128)>>8 + (t+128))>>8, exact
 * division by 255 with rounding (Pillow Paste.c BLEND; checked against Pillow for all
 * 65536 value/alpha pairs). */
static inline uint8_t img_over_white(uint32_t v, uint32_t a) {
    uint32_t t = 255u * (255u - a) + v * a + 128u;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Composites n RGBA pixels (src, 4 bytes each) over white into RGB (dst, 3 bytes each).
 * dst may alias src (it is written front to back, never ahead of what it reads). */
void img_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t n);

/* The PNG decoder (vision/decode_png.c); *out is written only on success. */
int img_decode_png(struct image *out, const uint8_t *buf, size_t n, const struct img_limits *lim,
                   struct err *e);

#endif
