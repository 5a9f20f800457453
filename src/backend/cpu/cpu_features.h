/* cpu_features: which x86 SIMD extensions this CPU and OS support, detected once with cpuid
 * (and xgetbv for the OS-saved register state), and the matmul paths (ISAs) built on them.
 * The detected flags are a read-only global after the first call. Any thread. */
#ifndef VELA_BACKEND_CPU_CPU_FEATURES_H
#define VELA_BACKEND_CPU_CPU_FEATURES_H

#include <stdbool.h>

struct cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512bf16;
};

/* Matmul kernel paths. CPU_ISA_AVX512 uses vdpbf16ps and rounds activations to BF16; the
 * others keep FP32 activations (see cpu/matmul.h). */
enum cpu_isa { CPU_ISA_AUTO = 0, CPU_ISA_PORTABLE, CPU_ISA_AVX2, CPU_ISA_AVX512 };

/* Detected once (thread-safe); never NULL. */
const struct cpu_features *cpu_features_get(void);
/* Whether this CPU can run the path (AUTO and PORTABLE: always). */
bool cpu_isa_supported(enum cpu_isa isa);
/* "auto", "portable", "avx2", "avx512". */
const char *cpu_isa_name(enum cpu_isa isa);
/* The inverse of cpu_isa_name; -1 when s names no path. */
int cpu_isa_parse(const char *s);
/* The fastest supported path; with f32_activations, the fastest that keeps FP32 activations. */
enum cpu_isa cpu_isa_best(bool f32_activations);

#endif
