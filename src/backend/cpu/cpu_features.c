/* cpu_features: cpuid/xgetbv detection behind pthread_once.
 *
 * Invariants: 1. a feature counts only when cpuid reports it AND the OS saves the register
 * state it needs (XCR0: YMM for AVX2, opmask+ZMM for AVX-512), so a kernel chosen here never
 * faults; 2. the global is written once, inside pthread_once, and only read afterwards. */
#include "backend/cpu/cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(struct cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    f->fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    bool zmm_ok = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!ymm_ok) {
        f->fma = f->f16c = false;
        return;
    }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    f->avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f->avx512bf16 = (a >> 5) & 1;
    }
}
#else
static void detect(struct cpu_features *f) {
    (void)f;
}
#endif

static struct cpu_features g_features; /* read-only after g_once */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect_once(void) {
    detect(&g_features);
}

const struct cpu_features *cpu_features_get(void) {
    pthread_once(&g_once, detect_once);
    return &g_features;
}

bool cpu_isa_supported(enum cpu_isa isa) {
    const struct cpu_features *f = cpu_features_get();
    switch (isa) {
        case CPU_ISA_AUTO:
        case CPU_ISA_PORTABLE:
            return true;
        case CPU_ISA_AVX2:
            return f->avx2 && f->fma;
        case CPU_ISA_AVX512:
            return f->avx512f && f->avx512bw && f->avx512vl && f->avx512bf16;
        default:
            return false;
    }
}

static const char *const g_names[] = {"auto", "portable", "avx2", "avx512"};

const char *cpu_isa_name(enum cpu_isa isa) {
    return (int)isa >= 0 && (int)isa < 4 ? g_names[isa] : "?";
}

int cpu_isa_parse(const char *s) {
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, g_names[i]) == 0) return i;
    return -1;
}

enum cpu_isa cpu_isa_best(bool f32_activations) {
    if (!f32_activations && cpu_isa_supported(CPU_ISA_AVX512)) return CPU_ISA_AVX512;
    if (cpu_isa_supported(CPU_ISA_AVX2)) return CPU_ISA_AVX2;
    return CPU_ISA_PORTABLE;
}
