/* probe: roofline measurements of this machine, shared by the roofline program and the
 * matmul benchmark: streaming read bandwidth (a buffer far larger than the last-level cache)
 * and the vdpbf16ps peak (register-only, no memory traffic). Owner thread; the probes fan
 * out over the given thread pool. */
#ifndef VELA_BENCH_ROOFLINE_PROBE_H
#define VELA_BENCH_ROOFLINE_PROBE_H

#include "backend/cpu/threadpool.h"

#include <stddef.h>
#include <stdint.h>

double probe_now_s(void);

/* Read bandwidth in GB/s (1e9 bytes/s) over buf (n_bytes, 64-byte aligned, split evenly
 * over the pool's threads): the best of one pass in each access pattern (probe.c). */
double probe_read_gbps(struct tp *pool, const void *buf, size_t n_bytes);

/* BF16 dot-product peak in GFLOP/s over the pool's threads (2 flops per multiply-add);
 * 0 when the CPU has no AVX-512 BF16. */
double probe_bf16_gflops(struct tp *pool, int64_t iters);

/* FP32 FMA (vfmadd on ZMM) peak in GFLOP/s over the pool's threads; 0 without AVX-512F. On
 * some cores it is twice the vdpbf16ps peak (docs/BENCHMARKS.md). */
double probe_f32_fma_gflops(struct tp *pool, int64_t iters);

/* The compute roofline of a BF16-weight matmul: the faster of the two peaks above (the
 * AVX-512 matmul runs FP32 FMAs on widened weights from 11 rows on). */
double probe_compute_gflops(struct tp *pool, int64_t iters);

/* Median of n values (sorts v in place). */
double probe_median(double *v, int n);
/* Smallest of n values. */
double probe_min(const double *v, int n);

#endif
