/* decode: format detection, the shared limit checks, and the JPEG and WebP decoders (PNG is
 * in decode_png.c). See decode.h for the conversion rules and the reference each follows.
 *
 * Invariants:
 *  1. Width, height and pixel count are checked against struct img_limits from the header,
 *     before any buffer the size of the image is allocated.
 *  2. Library errors never reach abort/exit/stderr: libjpeg's error_exit and emit_message are
 *     replaced (setjmp/longjmp back into jpg_run), libwebp reports status codes.
 *  3. A decode either hands a complete image to the caller or frees everything it made.
 * Threads: any; all decoder state lives in per-call objects. */
#include "vision/decode.h"

#include "util/limits.h"
#include "vision/decode_internal.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <webp/decode.h>

enum img_format img_detect_format(const uint8_t *b, size_t n) {
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return IMG_FORMAT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return IMG_FORMAT_PNG;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return IMG_FORMAT_WEBP;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return IMG_FORMAT_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return IMG_FORMAT_BMP;
    return IMG_FORMAT_UNKNOWN;
}

const char *img_format_name(enum img_format f) {
    switch (f) {
        case IMG_FORMAT_JPEG:
            return "JPEG";
        case IMG_FORMAT_PNG:
            return "PNG";
        case IMG_FORMAT_WEBP:
            return "WebP";
        case IMG_FORMAT_GIF:
            return "GIF";
        case IMG_FORMAT_BMP:
            return "BMP";
        default:
            return "unknown";
    }
}

int img_check_dims(const char *what, int64_t w, int64_t h, const struct img_limits *lim,
                   struct err *e) {
    if (w < 1 || h < 1)
        return err_set(e, VELA_EFORMAT, "%s: image size %lldx%lld is invalid", what, (long long)w,
                       (long long)h);
    if (w > lim->max_side || h > lim->max_side)
        return err_set(e, VELA_ELIMIT,
                       "%s: image size %lldx%lld exceeds the limit of %d pixels "
                       "per side",
                       what, (long long)w, (long long)h, (int)lim->max_side);
    if (w * h > lim->max_pixels)
        return err_set(e, VELA_ELIMIT,
                       "%s: image size %lldx%lld (%lld pixels) exceeds the limit "
                       "of %lld pixels",
                       what, (long long)w, (long long)h, (long long)(w * h),
                       (long long)lim->max_pixels);
    return 0;
}

void img_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t a = src[4 * i + 3];
        uint8_t r = img_over_white(src[4 * i + 0], a);
        uint8_t g = img_over_white(src[4 * i + 1], a);
        uint8_t b = img_over_white(src[4 * i + 2], a);
        dst[3 * i + 0] = r;
        dst[3 * i + 1] = g;
        dst[3 * i + 2] = b;
    }
}

/* ---- JPEG (libjpeg-turbo) ---- */

struct jpg_ctx {
    struct jpeg_error_mgr pub; /* first member: libjpeg's err pointer is cast back to us */
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int code;                  /* VELA_E* carried across the longjmp */
    char msg[JMSG_LENGTH_MAX]; /* libjpeg's message, or ours */
    int created;               /* jpeg_create_decompress ran */
    struct image im;           /* being built */
    uint8_t *row;              /* (width, 4) CMYK scratch row */
};

static void jpg_error_exit(j_common_ptr c) {
    struct jpg_ctx *x = (struct jpg_ctx *)c->err;
    c->err->format_message(c, x->msg);
    x->code = c->err->msg_code == JERR_OUT_OF_MEMORY ? VELA_ENOMEM : VELA_EFORMAT;
    longjmp(x->jb, 1);
}

/* Warnings: libjpeg recovers from corrupt entropy data, as Pillow does, so those are
 * ignored; but running out of data is fatal, matching Pillow's "image file is truncated"
 * (libjpeg's memory source would otherwise pad with a fake EOI and return grey rows). */
static void jpg_emit_message(j_common_ptr c, int level) {
    struct jpg_ctx *x = (struct jpg_ctx *)c->err;
    if (level >= 0) return; /* trace messages */
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(x->msg, sizeof x->msg, "image file is truncated");
        x->code = VELA_EFORMAT;
        longjmp(x->jb, 1);
    }
    c->err->num_warnings++;
}

static void jpg_output_message(j_common_ptr c) {
    (void)c; /* never print */
}

static void jpg_progress(j_common_ptr c) {
    struct jpg_ctx *x = (struct jpg_ctx *)c->err;
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > VELA_IMG_MAX_JPEG_SCANS) {
        snprintf(x->msg, sizeof x->msg, "more than %d progressive scans", VELA_IMG_MAX_JPEG_SCANS);
        x->code = VELA_ELIMIT;
        longjmp(x->jb, 1);
    }
}

/* Pillow opens every CMYK JPEG with rawmode "CMYK;I" (Adobe's inverted convention) and
 * converts with cmyk2rgb: nk = 255 - k, out = clip(nk - MULDIV255(c, nk)). With the
 * inversion folded in, nk is the stored k and c is 255 - stored c. */
static void jpg_cmyk_row(uint8_t *dst, const uint8_t *src, int32_t w) {
    for (int32_t i = 0; i < w; i++) {
        uint32_t nk = src[4 * i + 3];
        for (int ch = 0; ch < 3; ch++) {
            uint32_t c = 255u - src[4 * i + ch];
            uint32_t t = c * nk + 128u;
            uint32_t m = ((t >> 8) + t) >> 8;
            dst[3 * i + ch] = (uint8_t)(nk - m); /* m <= nk, so no clipping is needed */
        }
    }
}

/* The setjmp frame: touches its state only through x (not locals), so every value the
 * caller needs after a longjmp is in memory that setjmp/longjmp leaves well defined. */
static int jpg_run(struct jpg_ctx *x, const uint8_t *buf, size_t n, const struct img_limits *lim,
                   struct err *e) {
    if (setjmp(x->jb)) return err_set(e, x->code, "JPEG: %s", x->msg);
    jpeg_create_decompress(&x->cinfo);
    x->created = 1;
    x->progress.progress_monitor = jpg_progress;
    x->cinfo.progress = &x->progress;
    jpeg_mem_src(&x->cinfo, buf, (unsigned long)n);
    jpeg_read_header(&x->cinfo, TRUE);
    int rc = img_check_dims("JPEG", x->cinfo.image_width, x->cinfo.image_height, lim, e);
    if (rc != 0) return rc;
    /* Progressive and multi-scan files buffer every coefficient (2 bytes per sample, up to 4
     * components): cap libjpeg's pool in proportion to the pixel limit; with no backing store,
     * going past it is a clean error instead of a huge allocation. */
    x->cinfo.mem->max_memory_to_use = (long)(lim->max_pixels * 10);
    bool cmyk = x->cinfo.jpeg_color_space == JCS_CMYK || x->cinfo.jpeg_color_space == JCS_YCCK;
    /* Gray -> RGB replicates the sample, exactly Pillow's L -> RGB convert. */
    x->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&x->cinfo);
    int32_t w = (int32_t)x->cinfo.output_width, h = (int32_t)x->cinfo.output_height;
    if (x->cinfo.output_components != (cmyk ? 4 : 3))
        return err_set(e, VELA_EFORMAT, "JPEG: unexpected %d output components",
                       x->cinfo.output_components);
    rc = img_alloc(&x->im, w, h, e);
    if (rc != 0) return rc;
    if (cmyk && !(x->row = malloc((size_t)w * 4)))
        return err_set(e, VELA_ENOMEM, "JPEG: out of memory");
    while (x->cinfo.output_scanline < x->cinfo.output_height) {
        uint8_t *dst = x->im.rgb + (size_t)x->cinfo.output_scanline * (size_t)w * 3;
        JSAMPROW rowp = cmyk ? x->row : dst;
        if (jpeg_read_scanlines(&x->cinfo, &rowp, 1) != 1)
            return err_set(e, VELA_EFORMAT, "JPEG: image file is truncated");
        if (cmyk) jpg_cmyk_row(dst, x->row, w);
    }
    /* The trailing EOI is not required: all rows are decoded, as Pillow accepts too. */
    return 0;
}

static int jpg_decode(struct image *out, const uint8_t *buf, size_t n, const struct img_limits *lim,
                      struct err *e) {
    struct jpg_ctx *x = calloc(1, sizeof *x);
    if (!x) return err_set(e, VELA_ENOMEM, "JPEG: out of memory");
    x->cinfo.err = jpeg_std_error(&x->pub);
    x->pub.error_exit = jpg_error_exit;
    x->pub.emit_message = jpg_emit_message;
    x->pub.output_message = jpg_output_message;
    int rc = jpg_run(x, buf, n, lim, e);
    if (x->created) jpeg_destroy_decompress(&x->cinfo);
    free(x->row);
    if (rc == 0)
        *out = x->im;
    else
        img_deinit(&x->im);
    free(x);
    return rc;
}

/* ---- WebP (libwebp) ---- */

static const char *webp_status(VP8StatusCode s) {
    switch (s) {
        case VP8_STATUS_OUT_OF_MEMORY:
            return "out of memory";
        case VP8_STATUS_INVALID_PARAM:
            return "invalid parameter";
        case VP8_STATUS_BITSTREAM_ERROR:
            return "bitstream error";
        case VP8_STATUS_UNSUPPORTED_FEATURE:
            return "unsupported feature";
        case VP8_STATUS_NOT_ENOUGH_DATA:
            return "image file is truncated";
        default:
            return "decoding failed";
    }
}

/* Pillow opens a WebP with alpha as RGBA (non-premultiplied), which to_rgb composites over
 * white; without alpha it is RGB. Only still images: Pillow would take the first frame of
 * an animation, which we do not support. */
static int webp_decode(struct image *out, const uint8_t *buf, size_t n,
                       const struct img_limits *lim, struct err *e) {
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(buf, n, &f);
    if (st != VP8_STATUS_OK) return err_set(e, VELA_EFORMAT, "WebP: %s", webp_status(st));
    if (f.has_animation) return err_set(e, VELA_EUNSUP, "WebP: animated images are not supported");
    int rc = img_check_dims("WebP", f.width, f.height, lim, e);
    if (rc != 0) return rc;
    struct image im;
    rc = img_alloc(&im, f.width, f.height, e);
    if (rc != 0) return rc;
    size_t npx = (size_t)f.width * (size_t)f.height;
    if (f.has_alpha) {
        uint8_t *rgba = malloc(npx * 4);
        if (!rgba) {
            img_deinit(&im);
            return err_set(e, VELA_ENOMEM, "WebP: out of memory");
        }
        if (!WebPDecodeRGBAInto(buf, n, rgba, npx * 4, f.width * 4)) {
            free(rgba);
            img_deinit(&im);
            return err_set(e, VELA_EFORMAT, "WebP: corrupt or truncated image data");
        }
        img_rgba_over_white(im.rgb, rgba, npx);
        free(rgba);
    } else if (!WebPDecodeRGBInto(buf, n, im.rgb, npx * 3, f.width * 3)) {
        img_deinit(&im);
        return err_set(e, VELA_EFORMAT, "WebP: corrupt or truncated image data");
    }
    *out = im;
    return 0;
}

int img_decode(struct image *out, const uint8_t *buf, size_t n, const struct img_limits *lim,
               struct err *e) {
    struct img_limits def;
    if (!lim) {
        img_limits_default(&def);
        lim = &def;
    }
    if (!buf || n == 0) return err_set(e, VELA_EFORMAT, "image: empty input");
    if (n > lim->max_encoded_bytes)
        return err_set(e, VELA_ELIMIT, "image: %zu bytes exceeds the limit of %zu bytes", n,
                       lim->max_encoded_bytes);
    enum img_format f = img_detect_format(buf, n);
    switch (f) {
        case IMG_FORMAT_JPEG:
            return jpg_decode(out, buf, n, lim, e);
        case IMG_FORMAT_PNG:
            return img_decode_png(out, buf, n, lim, e);
        case IMG_FORMAT_WEBP:
            return webp_decode(out, buf, n, lim, e);
        case IMG_FORMAT_GIF:
        case IMG_FORMAT_BMP:
            return err_set(e, VELA_EUNSUP,
                           "image: %s is not supported (JPEG, PNG or WebP expected)",
                           img_format_name(f));
        default:
            return err_set(e, VELA_EFORMAT, "image: not a JPEG, PNG or WebP file");
    }
}
