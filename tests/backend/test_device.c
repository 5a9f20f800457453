/* Tests for backend/device.c (`--device`): names parse and bad ones are refused; without a
 * registered GPU backend auto is the CPU and cuda fails with a message saying so; a
 * registered backend (a stand-in here, counting its calls) is opened for cuda and for auto
 * only while it reports a device, and answers the memory query. */
#include "backend/device.h"
#include "t.h"

#include <string.h>

static int g_count, g_opens;

static int fake_count(void) {
    return g_count;
}

static int fake_open(struct be **out, int index, struct err *e) {
    g_opens++;
    T_EQ(index, 0);
    return be_device_open(BE_DEVICE_CPU, 1, out, e); /* any working backend will do */
}

static int fake_mem(int index, size_t *free_bytes, size_t *total_bytes, struct err *e) {
    (void)e;
    T_EQ(index, 0);
    *free_bytes = 70, *total_bytes = 80;
    return 0;
}

static void test_names(void) {
    struct err e = {0};
    enum be_device_kind k = BE_DEVICE_CPU;
    T_RC(be_device_parse("auto", &k, &e), &e);
    T_EQ(k, BE_DEVICE_AUTO);
    T_RC(be_device_parse("cuda", &k, &e), &e);
    T_EQ(k, BE_DEVICE_CUDA);
    T_RC(be_device_parse("cpu", &k, &e), &e);
    T_EQ(k, BE_DEVICE_CPU);
    T_FAILS(be_device_parse("gpu", &k, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "auto, cpu or cuda") != NULL);
    T_FAILS(be_device_parse(NULL, &k, &e), VELA_EINVAL, &e);
    T_STREQ(be_device_name(BE_DEVICE_CUDA), "cuda");
    T_STREQ(be_device_name(BE_DEVICE_CPU), "cpu");
}

static void test_without_gpu_backend(void) {
    struct err e = {0};
    struct be *b = NULL;
    size_t fr = 0, tot = 0;
    T_EQ(be_device_resolve(BE_DEVICE_AUTO), BE_DEVICE_CPU);
    T_RC(be_device_open(BE_DEVICE_AUTO, 1, &b, &e), &e);
    T_OK(b && be_device_of(b) == BE_DEV_CPU);
    be_free(b);
    b = NULL;
    T_FAILS(be_device_open(BE_DEVICE_CUDA, 1, &b, &e), VELA_EUNSUP, &e);
    T_OK(strstr(e.msg, "built without") != NULL && b == NULL);
    T_FAILS(be_device_mem_info(BE_DEVICE_CPU, &fr, &tot, &e), VELA_EUNSUP, &e);
    T_FAILS(be_device_check(BE_DEVICE_CUDA, &e), VELA_EUNSUP, &e);
    T_RC(be_device_check(BE_DEVICE_AUTO, &e), &e);
}

static void test_registered(void) {
    static const struct be_device_ops ops = {
        .count = fake_count, .open = fake_open, .mem_info = fake_mem};
    struct err e = {0};
    struct be *b = NULL;
    size_t fr = 0, tot = 0;
    be_device_register_cuda(&ops);
    g_count = 0; /* a driver without a GPU */
    T_EQ(be_device_resolve(BE_DEVICE_AUTO), BE_DEVICE_CPU);
    T_FAILS(be_device_open(BE_DEVICE_CUDA, 1, &b, &e), VELA_EUNSUP, &e);
    T_OK(strstr(e.msg, "no CUDA GPU") != NULL);
    T_EQ(g_opens, 0);
    T_FAILS(be_device_check(BE_DEVICE_CUDA, &e), VELA_EUNSUP, &e);
    g_count = 2;
    T_RC(be_device_check(BE_DEVICE_CUDA, &e), &e);
    T_EQ(be_device_resolve(BE_DEVICE_AUTO), BE_DEVICE_CUDA);
    T_RC(be_device_open(BE_DEVICE_AUTO, 1, &b, &e), &e);
    T_EQ(g_opens, 1);
    be_free(b);
    T_RC(be_device_mem_info(BE_DEVICE_CUDA, &fr, &tot, &e), &e);
    T_EQ(fr, 70);
    T_EQ(tot, 80);
    T_EQ(be_device_resolve(BE_DEVICE_CPU), BE_DEVICE_CPU); /* an explicit cpu stays cpu */
    be_device_register_cuda(NULL);
    T_EQ(be_device_resolve(BE_DEVICE_AUTO), BE_DEVICE_CPU);
}

int main(void) {
    T_RUN(test_names);
    T_RUN(test_without_gpu_backend);
    T_RUN(test_registered);
    return t_done();
}
