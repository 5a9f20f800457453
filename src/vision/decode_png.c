/* decode_png: PNG bytes in memory -> 8-bit RGB with libpng's full API, converting each
 * colour type the way Pillow's PngImagePlugin + convert("RGB") (and qwen-vl-utils to_rgb for
 * RGBA) do; see decode.h for the rules.
 *
 * Invariants:
 *  1. IHDR's size is checked against struct img_limits before any pixel buffer is allocated;
 * ancillary chunks are bounded by VELA_IMG_MAX_PNG_CHUNK_BYTES.
 *  2. libpng errors longjmp back into png_run; warnings are dropped; reading past the end
 *     of the buffer is an error ("image file is truncated"), as in Pillow.
 *  3. tRNS is never turned into alpha: Pillow's convert("RGB") ignores it for palette, gray
 *     and RGB images alike.
 * Threads: any; all state is per call. */
#include "util/limits.h"
#include "vision/decode_internal.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct png_ctx {
    png_structp png;
    png_infop info;
    const uint8_t *buf; /* borrowed input */
    size_t n, pos;
    char msg[160];
    int color_type, bit_depth, interlaced;
    png_colorp plte; /* borrowed from info */
    int n_plte;
    struct image im; /* being built */
    uint8_t *raw;    /* interlaced: (height, rowbytes); else one row of rowbytes */
    png_bytep *rows; /* interlaced only: row pointers into raw */
};

static void png_err_fn(png_structp p, png_const_charp m) {
    struct png_ctx *x = png_get_error_ptr(p);
    snprintf(x->msg, sizeof x->msg, "%s", m);
    png_longjmp(p, 1);
}

static void png_warn_fn(png_structp p, png_const_charp m) {
    (void)p;
    (void)m;
}

static void png_read_fn(png_structp p, png_bytep out, size_t len) {
    struct png_ctx *x = png_get_io_ptr(p);
    if (len > x->n - x->pos) png_error(p, "image file is truncated");
    memcpy(out, x->buf + x->pos, len);
    x->pos += len;
}

/* One decoded row (after the libpng transforms set in png_run) -> RGB. */
static void png_convert_row(const struct png_ctx *x, uint8_t *dst, const uint8_t *src) {
    int32_t w = x->im.width;
    switch (x->color_type) {
        case PNG_COLOR_TYPE_PALETTE: /* Pillow: P -> palette colour; indices past PLTE are black */
            for (int32_t i = 0; i < w; i++) {
                int v = src[i];
                png_color c = {0, 0, 0};
                if (v < x->n_plte) c = x->plte[v];
                dst[3 * i] = c.red;
                dst[3 * i + 1] = c.green;
                dst[3 * i + 2] = c.blue;
            }
            break;
        case PNG_COLOR_TYPE_GRAY:
            for (int32_t i = 0; i < w; i++) {
                /* 16-bit: Pillow opens mode I;16 and I;16 -> RGB clips to 255 (no scaling). */
                uint8_t v = src[i];
                if (x->bit_depth == 16) {
                    unsigned v16 = (unsigned)src[2 * i] << 8 | src[2 * i + 1];
                    v = v16 > 255 ? 255 : (uint8_t)v16;
                }
                dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = v;
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: /* Pillow: LA -> RGB drops alpha */
            for (int32_t i = 0; i < w; i++)
                dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[2 * i];
            break;
        case PNG_COLOR_TYPE_RGB:
            memcpy(dst, src, (size_t)w * 3);
            break;
        default: /* RGBA: qwen-vl-utils to_rgb pastes onto white with the alpha mask */
            img_rgba_over_white(dst, src, (size_t)w);
            break;
    }
}

/* The setjmp frame: all state is reached through x, none kept in locals across longjmp. */
static int png_run(struct png_ctx *x, const struct img_limits *lim, struct err *e) {
    if (setjmp(png_jmpbuf(x->png))) return err_set(e, VELA_EFORMAT, "PNG: %s", x->msg);
    png_set_read_fn(x->png, x, png_read_fn);
    /* libpng's own width/height limit (1,000,000 by default) stays: ours, checked right after
     * png_read_info, gives the clearer message. */
    png_set_chunk_malloc_max(x->png, VELA_IMG_MAX_PNG_CHUNK_BYTES);
    png_read_info(x->png, x->info);
    png_uint_32 w = png_get_image_width(x->png, x->info);
    png_uint_32 h = png_get_image_height(x->png, x->info);
    int rc = img_check_dims("PNG", w, h, lim, e);
    if (rc != 0) return rc;
    x->color_type = png_get_color_type(x->png, x->info);
    x->bit_depth = png_get_bit_depth(x->png, x->info);
    x->interlaced = png_get_interlace_type(x->png, x->info) != PNG_INTERLACE_NONE;
    if (x->color_type == PNG_COLOR_TYPE_PALETTE) {
        if (!png_get_PLTE(x->png, x->info, &x->plte, &x->n_plte))
            return err_set(e, VELA_EFORMAT, "PNG: palette image without PLTE");
        png_set_packing(x->png); /* 1/2/4-bit indices -> one byte each, unscaled */
    } else if (x->color_type == PNG_COLOR_TYPE_GRAY && x->bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(x->png); /* v * 255/(2^b-1), as Pillow's L;2, L;4, 1 */
    } else if (x->bit_depth == 16 && x->color_type != PNG_COLOR_TYPE_GRAY) {
        png_set_strip_16(x->png); /* high byte, as Pillow's RGB;16B / RGBA;16B / LA;16B */
    }
    int passes = png_set_interlace_handling(x->png);
    png_read_update_info(x->png, x->info);
    size_t rowbytes = png_get_rowbytes(x->png, x->info);
    /* Our row conversion assumes exactly these layouts; anything else is a bug of ours. */
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
    int ct = x->color_type;
    if (ct < 0 || ct > 6 || channels[ct] == 0 ||
        png_get_channels(x->png, x->info) != channels[ct] ||
        rowbytes !=
            (size_t)w * channels[ct] * (ct == PNG_COLOR_TYPE_GRAY && x->bit_depth == 16 ? 2 : 1))
        return err_set(e, VELA_EINTERNAL, "PNG: unexpected row layout (colour type %d, depth %d)",
                       ct, x->bit_depth);
    rc = img_alloc(&x->im, (int32_t)w, (int32_t)h, e);
    if (rc != 0) return rc;
    if (x->interlaced) {
        /* Adam7 passes revisit every row, so the whole image is buffered. */
        x->raw = malloc(rowbytes * h); /* bounded by the pixel limit: <= 8 bytes per pixel */
        x->rows = malloc(sizeof *x->rows * h);
        if (!x->raw || !x->rows) return err_set(e, VELA_ENOMEM, "PNG: out of memory");
        for (png_uint_32 y = 0; y < h; y++) x->rows[y] = x->raw + (size_t)y * rowbytes;
        png_read_image(x->png, x->rows);
        for (png_uint_32 y = 0; y < h; y++)
            png_convert_row(x, x->im.rgb + (size_t)y * w * 3, x->rows[y]);
    } else {
        (void)passes;
        x->raw = malloc(rowbytes);
        if (!x->raw) return err_set(e, VELA_ENOMEM, "PNG: out of memory");
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(x->png, x->raw, NULL);
            png_convert_row(x, x->im.rgb + (size_t)y * w * 3, x->raw);
        }
    }
    /* Chunks after the image data (and IEND) are not read: every pixel is already here. */
    return 0;
}

int img_decode_png(struct image *out, const uint8_t *buf, size_t n, const struct img_limits *lim,
                   struct err *e) {
    struct png_ctx *x = calloc(1, sizeof *x);
    if (!x) return err_set(e, VELA_ENOMEM, "PNG: out of memory");
    x->buf = buf;
    x->n = n;
    int rc;
    x->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, x, png_err_fn, png_warn_fn);
    if (x->png) x->info = png_create_info_struct(x->png);
    if (!x->png || !x->info)
        rc = err_set(e, VELA_ENOMEM, "PNG: out of memory");
    else
        rc = png_run(x, lim, e);
    png_destroy_read_struct(x->png ? &x->png : NULL, x->info ? &x->info : NULL, NULL);
    free(x->raw);
    free(x->rows);
    if (rc == 0)
        *out = x->im;
    else
        img_deinit(&x->im);
    free(x);
    return rc;
}
