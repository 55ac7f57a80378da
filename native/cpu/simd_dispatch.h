// Run-time SIMD dispatch for the element-wise kernels. A kernel's body is written once as an always-inline function
// of plain float loops; RNNKIT_SIMD_VARIANTS compiles it three times (baseline, AVX2+FMA, AVX-512) and picks one by
// CPU feature detection on first use. Distributed binaries are therefore never built for one machine
// (-march=native), yet use its widest vectors. (GCC's target_clones("arch=...") was tried first: its resolver tests
// the CPU *model*, so AMD processors with AVX-512 fell back to the baseline.)
#pragma once

namespace rnnkit::cpu {

enum class SimdLevel { Baseline, Avx2, Avx512 };

// The widest level this CPU supports (and RNNKIT_SIMD=baseline|avx2 allows), detected once.
SimdLevel simdLevel();
const char* simdLevelName(SimdLevel level);

}  // namespace rnnkit::cpu

#define RNNKIT_INLINE __attribute__((always_inline)) inline
// Before a loop whose iterations touch disjoint elements the compiler cannot prove disjoint: vectorize it without
// run-time alias checks.
#if defined(__clang__)
#define RNNKIT_LOOP_INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define RNNKIT_LOOP_INDEPENDENT _Pragma("GCC ivdep")
#else
#define RNNKIT_LOOP_INDEPENDENT
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RNNKIT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RNNKIT_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
// Defines `Ret name(params)` that forwards `args` to the always-inline `impl` compiled for the best level.
#define RNNKIT_SIMD_VARIANTS(Ret, name, impl, params, args)                                        \
  static Ret name##Baseline params { return impl args; }                                          \
  RNNKIT_TARGET_AVX2 static Ret name##Avx2 params { return impl args; }                           \
  RNNKIT_TARGET_AVX512 static Ret name##Avx512 params { return impl args; }                       \
  static Ret name params {                                                                         \
    using Fn = Ret(*) params;                                                                      \
    static const Fn fn = ::rnnkit::cpu::simdLevel() == ::rnnkit::cpu::SimdLevel::Avx512 ? name##Avx512 \
                         : ::rnnkit::cpu::simdLevel() == ::rnnkit::cpu::SimdLevel::Avx2 ? name##Avx2   \
                                                                                      : name##Baseline; \
    return fn args;                                                                                \
  }
#else
#define RNNKIT_SIMD_VARIANTS(Ret, name, impl, params, args) \
  static Ret name params { return impl args; }
#endif
