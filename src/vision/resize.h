/* resize: Pillow-exact BICUBIC resampling of 8-bit RGB images.
 *
 * Reproduces Pillow's Image.resize(size, Image.BICUBIC) for an RGB image (libImaging
 * Resample.c, ImagingResample with reducing_gap=None): Keys cubic kernel (a = -0.5) whose
 * support widens by the scale factor when downscaling (antialiasing); separable, two passes
 * through an 8-bit intermediate in the order Pillow 13 picks (resize.c: rs_vertical_first);
 * coefficients normalized per output pixel, converted to 22-bit fixed point, accumulated in int32
 * with rounding and clipped to 0..255. Results are bit-identical to Pillow's (see
 * tests/vision/test_resize.c).
 *
 * Ownership: *out is written only on success; the caller frees it with img_deinit.
 * Any thread; no global state. */
#ifndef VELA_VISION_RESIZE_H
#define VELA_VISION_RESIZE_H

#include "util/err.h"
#include "vision/image.h"

#include <stdint.h>

/* Resizes in (borrowed) to width x height. Same size gives a copy, as Pillow does. */
int img_resize_bicubic(struct image *out, const struct image *in, int32_t width, int32_t height,
                       struct err *e);

#endif
