// Per-function SIMD dispatch for the element-wise kernels: on x86-64 with GCC, a function marked RNNKIT_SIMD_CLONES
// is compiled for the baseline, for AVX2+FMA and for AVX-512, and the loader picks the best one for the CPU it runs
// on. Distributed binaries are therefore never built for one machine (-march=native), yet use its widest vectors.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define RNNKIT_SIMD_CLONES __attribute__((target_clones("default", "arch=haswell", "arch=skylake-avx512")))
#else
#define RNNKIT_SIMD_CLONES
#endif
