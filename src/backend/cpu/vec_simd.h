/* vec_simd: the x86 vec_ops tables (vec_x86.c), NULL where the compiler targets another
 * architecture. Only vec.c reads them, after checking cpu_features. Any thread. */
#ifndef VELA_BACKEND_CPU_VEC_SIMD_H
#define VELA_BACKEND_CPU_VEC_SIMD_H

#include "backend/cpu/vec.h"

extern const struct vec_ops *const vec_ops_avx2;
extern const struct vec_ops *const vec_ops_avx512;

#endif
