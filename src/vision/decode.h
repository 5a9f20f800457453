/* decode: JPEG, PNG and WebP bytes in memory -> 8-bit RGB, converted as the Qwen reference
 * loads images (qwen-vl-utils fetch_image/to_rgb on top of Pillow; model spec §3.2):
 *   - RGBA (PNG colour type 6, WebP with alpha) is composited over opaque white with
 *     Pillow's paste rounding; every other mode goes through Pillow's convert("RGB"):
 *   - palette -> palette colours, tRNS transparency ignored;
 *   - gray -> R=G=B; gray+alpha (LA) -> alpha dropped;
 *   - 16-bit samples -> high byte, except 16-bit gray without alpha, which Pillow opens as
 *     mode I;16 and clips to 255 (values above 255 become white);
 *   - CMYK/YCCK JPEG -> Pillow's inverted-Adobe CMYK to RGB formula.
 * No EXIF orientation and no colour profile is applied (neither does the reference).
 * The format comes from the magic bytes, never from a name or MIME type.
 *
 * Errors: VELA_EFORMAT for bytes that are not a complete valid image (truncated files are
 * rejected, as Pillow rejects them without LOAD_TRUNCATED_IMAGES), VELA_ELIMIT when a limit
 * of struct img_limits is broken (checked from the header, before the pixel buffer exists),
 * VELA_EUNSUP for valid but unsupported input (animated WebP, other formats), VELA_ENOMEM.
 * No input aborts or exits the process, and nothing is printed. Any thread (the decoders
 * keep no global state). */
#ifndef VELA_VISION_DECODE_H
#define VELA_VISION_DECODE_H

#include "util/err.h"
#include "vision/image.h"

#include <stddef.h>
#include <stdint.h>

enum img_format {
    IMG_FORMAT_UNKNOWN = 0,
    IMG_FORMAT_JPEG,
    IMG_FORMAT_PNG,
    IMG_FORMAT_WEBP,
    IMG_FORMAT_GIF, /* recognized only to name it in the error */
    IMG_FORMAT_BMP, /* same */
};

/* The format named by the first bytes of buf (n may be short: UNKNOWN then). */
enum img_format img_detect_format(const uint8_t *buf, size_t n);
const char *img_format_name(enum img_format f);

/* Decodes buf[0..n) into *out (written only on success; the caller frees it with
 * img_deinit). buf is borrowed. lim may be NULL for the defaults of util/limits.h. */
int img_decode(struct image *out, const uint8_t *buf, size_t n, const struct img_limits *lim,
               struct err *e);

#endif
