/* preprocess: smart_resize, resize, rescale + normalize and patchify (see preprocess.h).
 *
 * Matches transformers 5.24 Qwen2VLImageProcessorPil:
 *   smart_resize  image_processing_pil_qwen2_vl.smart_resize (double math, Python round);
 *   resize        PIL Image.resize(BICUBIC) -> vision/resize.c, skipped when the size is
 *                 unchanged (Pillow returns a copy);
 *   rescale       image_transforms.rescale: float64 x * rescale_factor, cast to float32;
 *   normalize     image_transforms.normalize: (x - mean) / std in float32;
 *   patchify      reshape (C, gh/M, M, P, gw/M, M, P), transpose (1,4,2,5,0,3,6), temporal
 *                 broadcast -> rows (gt, bh, bw, mh, mw), columns (c, tp, py, px).
 * Rescale + normalize depend only on the byte value and channel, so they are a 3x256 table
 * computed with the reference's exact float operations: pixel_values are bit-identical.
 *
 * Invariants: resized sides are positive multiples of P*M (or, with do_resize off, the input
 * must already be); pixel_values never exceed VELA_IMG_MAX_PIXELS resized pixels per frame.
 * Threads: any. */
#include "vision/preprocess.h"

#include "model/config.h"
#include "util/limits.h"
#include "util/size.h"
#include "vision/resize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void preproc_params_default(struct preproc_params *p) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memset(p, 0, sizeof *p);
    p->min_pixels = 3136;
    p->max_pixels = 12845056;
    p->patch_size = 14;
    p->temporal_patch_size = 2;
    p->merge_size = 2;
    memcpy(p->image_mean, mean, sizeof mean);
    memcpy(p->image_std, std, sizeof std);
    p->rescale_factor = 1.0 / 255.0;
    p->do_resize = p->do_rescale = p->do_normalize = true;
}

void preproc_params_from_config(struct preproc_params *p, const struct preproc_config *c) {
    memset(p, 0, sizeof *p);
    p->min_pixels = c->min_pixels;
    p->max_pixels = c->max_pixels;
    p->patch_size = c->patch_size;
    p->temporal_patch_size = c->temporal_patch_size;
    p->merge_size = c->merge_size;
    memcpy(p->image_mean, c->image_mean, sizeof p->image_mean);
    memcpy(p->image_std, c->image_std, sizeof p->image_std);
    p->rescale_factor = c->rescale_factor;
    p->do_resize = c->do_resize;
    p->do_rescale = c->do_rescale;
    p->do_normalize = c->do_normalize;
}

int preproc_params_check(const struct preproc_params *p, struct err *e) {
    if (p->patch_size < 1 || p->patch_size > VELA_CFG_MAX_PATCH)
        return err_set(e, VELA_EINVAL, "preprocess: patch_size %d is out of range", p->patch_size);
    if (p->merge_size < 1 || p->merge_size > VELA_CFG_MAX_MERGE)
        return err_set(e, VELA_EINVAL, "preprocess: merge_size %d is out of range", p->merge_size);
    if (p->temporal_patch_size < 1 || p->temporal_patch_size > 16)
        return err_set(e, VELA_EINVAL, "preprocess: temporal_patch_size %d is out of range",
                       p->temporal_patch_size);
    if (p->min_pixels < 1 || p->max_pixels < p->min_pixels || p->max_pixels > VELA_CFG_MAX_PIXELS)
        return err_set(e, VELA_EINVAL,
                       "preprocess: pixel budget min_pixels %lld, max_pixels "
                       "%lld is invalid (need 1 <= min <= max <= %lld)",
                       (long long)p->min_pixels, (long long)p->max_pixels,
                       (long long)VELA_CFG_MAX_PIXELS);
    for (int c = 0; c < 3; c++)
        if (!(p->image_std[c] != 0.0f) || !isfinite(p->image_std[c]) || !isfinite(p->image_mean[c]))
            return err_set(e, VELA_EINVAL, "preprocess: image_mean/image_std[%d] is invalid", c);
    if (!isfinite(p->rescale_factor))
        return err_set(e, VELA_EINVAL, "preprocess: rescale_factor is not finite");
    return 0;
}

/* Python's repr of a float (shortest round-trip digits, fixed notation for exponents in
 * [-4, 16), always a '.'), so our message matches the reference's f-string byte for byte. */
static void py_float_repr(char *buf, size_t cap, double v) {
    char tmp[64];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    const char *ep = strchr(tmp, 'e');
    int exp10 = ep ? atoi(ep + 1) : 0;
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(buf, cap, "%s", tmp); /* rare here: only absurd ratios */
        return;
    }
    int decimals = p - 1 - exp10;
    snprintf(buf, cap, "%.*f", decimals < 1 ? 1 : decimals, v);
}

int img_smart_resize(int64_t height, int64_t width, int32_t factor, int64_t min_pixels,
                     int64_t max_pixels, int32_t *out_h, int32_t *out_w, struct err *e) {
    if (height < 1 || width < 1 || height > VELA_IMG_MAX_SIDE * 4LL ||
        width > VELA_IMG_MAX_SIDE * 4LL || factor < 1)
        return err_set(e, VELA_EINVAL, "smart_resize: size %lldx%lld is invalid", (long long)height,
                       (long long)width);
    double hi = (double)(height > width ? height : width);
    double lo = (double)(height > width ? width : height);
    if (hi / lo > 200) {
        char r[64];
        py_float_repr(r, sizeof r, hi / lo);
        return err_set(e, VELA_EINVAL, "absolute aspect ratio must be smaller than 200, got %s", r);
    }
    double h = (double)height, w = (double)width, f = (double)factor;
    /* nearbyint in the default rounding mode is round-half-even, like Python's round(). */
    int64_t hb = (int64_t)nearbyint(h / f) * factor;
    int64_t wb = (int64_t)nearbyint(w / f) * factor;
    if (hb * wb > max_pixels) {
        double beta = sqrt((double)(height * width) / (double)max_pixels);
        hb = (int64_t)floor(h / beta / f) * factor;
        wb = (int64_t)floor(w / beta / f) * factor;
        if (hb < factor) hb = factor; /* the newer reference's max(factor, ...) */
        if (wb < factor) wb = factor;
    } else if (hb * wb < min_pixels) {
        double beta = sqrt((double)min_pixels / (double)(height * width));
        hb = (int64_t)ceil(h * beta / f) * factor;
        wb = (int64_t)ceil(w * beta / f) * factor;
    }
    if (hb < 1 || wb < 1 || hb > INT32_MAX || wb > INT32_MAX || hb * wb > VELA_IMG_MAX_PIXELS)
        return err_set(e, VELA_ELIMIT,
                       "smart_resize: %lldx%lld -> %lldx%lld exceeds the limit of "
                       "%lld pixels",
                       (long long)height, (long long)width, (long long)hb, (long long)wb,
                       (long long)VELA_IMG_MAX_PIXELS);
    *out_h = (int32_t)hb;
    *out_w = (int32_t)wb;
    return 0;
}

static int target_size(int64_t h, int64_t w, const struct preproc_params *p, int32_t *rh,
                       int32_t *rw, struct err *e) {
    int32_t factor = p->patch_size * p->merge_size;
    if (p->do_resize)
        return img_smart_resize(h, w, factor, p->min_pixels, p->max_pixels, rh, rw, e);
    if (h % factor || w % factor)
        return err_set(e, VELA_EINVAL,
                       "preprocess: without resizing, %lldx%lld must be a "
                       "multiple of %d",
                       (long long)h, (long long)w, factor);
    *rh = (int32_t)h;
    *rw = (int32_t)w;
    return 0;
}

int img_count_tokens(int64_t height, int64_t width, const struct preproc_params *p,
                     int64_t *n_tokens, struct err *e) {
    int rc = preproc_params_check(p, e);
    int32_t rh = 0, rw = 0;
    if (rc == 0) rc = target_size(height, width, p, &rh, &rw, e);
    if (rc != 0) return rc;
    int64_t f = (int64_t)p->patch_size * p->merge_size;
    *n_tokens = (rh / f) * (rw / f);
    return 0;
}

/* Byte value -> normalized float per channel, with the reference's operation order. */
struct pv_lut {
    float v[3][256]; /* (channel, byte value) */
};

static void build_lut(struct pv_lut *lut, const struct preproc_params *p) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            if (p->do_normalize) x = (x - p->image_mean[c]) / p->image_std[c];
            lut->v[c][v] = x;
        }
}

/* Writes frame slot tp of temporal group gt from a resized image. */
static void patchify_frame(struct pixel_values *pv, const struct image *im, int64_t gt, int32_t tp,
                           const struct preproc_params *p, const struct pv_lut *lut) {
    const int64_t P = p->patch_size, M = p->merge_size, T = p->temporal_patch_size;
    const int64_t bh_n = pv->grid_h / M, bw_n = pv->grid_w / M, plane = T * P * P;
    for (int64_t y = 0; y < im->height; y++) {
        int64_t gy = y / P, py = y % P, bh = gy / M, mh = gy % M;
        for (int64_t gx = 0; gx < pv->grid_w; gx++) {
            int64_t bw = gx / M, mw = gx % M;
            int64_t r = (((gt * bh_n + bh) * bw_n + bw) * M + mh) * M + mw;
            float *dst = pv->data + r * pv->row_len + (tp * P + py) * P;
            const uint8_t *s = im->rgb + ((size_t)y * im->width + (size_t)(gx * P)) * 3;
            for (int64_t px = 0; px < P; px++) {
                dst[px] = lut->v[0][s[3 * px]];
                dst[plane + px] = lut->v[1][s[3 * px + 1]];
                dst[2 * plane + px] = lut->v[2][s[3 * px + 2]];
            }
        }
    }
}

static int pv_alloc(struct pixel_values *pv, int64_t n_frames, int32_t rh, int32_t rw,
                    const struct preproc_params *p, struct err *e) {
    int64_t T = p->temporal_patch_size, P = p->patch_size;
    memset(pv, 0, sizeof *pv);
    pv->grid_t = (n_frames + T - 1) / T;
    pv->grid_h = rh / P;
    pv->grid_w = rw / P;
    pv->resized_h = rh;
    pv->resized_w = rw;
    pv->row_len = (int32_t)(3 * T * P * P);
    pv->n_rows = pv->grid_t * pv->grid_h * pv->grid_w;
    pv->n_tokens = pv->n_rows / ((int64_t)p->merge_size * p->merge_size);
    size_t n;
    if (!size_mul_ok((size_t)pv->n_rows, (size_t)pv->row_len, &n) ||
        (int64_t)n > VELA_IMG_MAX_PV_VALUES || !size_mul_ok(n, sizeof(float), &n))
        return err_set(e, VELA_ELIMIT,
                       "preprocess: pixel_values of %lld x %d values exceed the "
                       "limit of %lld",
                       (long long)pv->n_rows, pv->row_len, (long long)VELA_IMG_MAX_PV_VALUES);
    pv->data = malloc(n);
    if (!pv->data) return err_set(e, VELA_ENOMEM, "preprocess: out of memory (%zu bytes)", n);
    return 0;
}

int img_preprocess_frames(const struct image *frames, int32_t n_frames,
                          const struct preproc_params *p, struct pixel_values *out, struct err *e) {
    int rc = preproc_params_check(p, e);
    if (rc != 0) return rc;
    if (!frames || n_frames < 1 || n_frames > VELA_IMG_MAX_FRAMES)
        return err_set(e, VELA_EINVAL, "preprocess: %d frames (1..%d allowed)", n_frames,
                       VELA_IMG_MAX_FRAMES);
    for (int32_t i = 0; i < n_frames; i++)
        if (!frames[i].rgb || frames[i].width != frames[0].width ||
            frames[i].height != frames[0].height)
            return err_set(e, VELA_EINVAL,
                           "preprocess: frame %d is missing or differs in size "
                           "from frame 0",
                           i);
    int32_t rh, rw;
    rc = target_size(frames[0].height, frames[0].width, p, &rh, &rw, e);
    if (rc != 0) return rc;
    struct pixel_values pv;
    rc = pv_alloc(&pv, n_frames, rh, rw, p, e);
    if (rc != 0) goto fail;
    struct pv_lut lut;
    build_lut(&lut, p);
    int64_t T = p->temporal_patch_size, n_padded = pv.grid_t * T;
    for (int32_t i = 0; i < n_frames && rc == 0; i++) {
        struct image rs = {0};
        const struct image *src = &frames[i];
        if (rh != src->height || rw != src->width) {
            rc = img_resize_bicubic(&rs, src, rw, rh, e);
            if (rc != 0) break;
            src = &rs;
        }
        /* The last frame also fills the padding slots (spec §3.6 step 1). */
        int64_t last = i == n_frames - 1 ? n_padded : i + 1;
        for (int64_t f = i; f < last; f++)
            patchify_frame(&pv, src, f / T, (int32_t)(f % T), p, &lut);
        img_deinit(&rs);
    }
    if (rc != 0) goto fail;
    *out = pv;
    return 0;
fail:
    pixel_values_deinit(&pv);
    return rc;
}

int img_preprocess(const struct image *im, const struct preproc_params *p, struct pixel_values *out,
                   struct err *e) {
    return img_preprocess_frames(im, 1, p, out, e);
}

void pixel_values_deinit(struct pixel_values *pv) {
    if (!pv) return;
    free(pv->data);
    memset(pv, 0, sizeof *pv);
}
