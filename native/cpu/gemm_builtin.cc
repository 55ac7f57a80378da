// Built-in single-precision GEMM: Goto/BLIS-style blocking with packed panels and a register-tiled FMA
// micro-kernel picked once at run time from the CPU's features.
//
// Layout conventions (all row-major):
//   * A packed panel of op(A) holds `h` rows (h <= MR) interleaved by k: panel[k * h + i]. Edge panels are packed
//     with their true height and served by a micro-kernel instantiated for that height, so a thin M (1, 16, 32 in
//     this project's shapes) costs no padded rows.
//   * A packed panel of op(B) holds NR columns (zero-padded at the right edge) by k: panel[k * NR + j].
//   * When op(B) is B itself (no transpose) and op(A) is short, the micro-kernel reads B in place (row stride ldb):
//     packing B would then cost as much memory traffic as the multiplication itself.
//
// SIMD code is compiled with per-function target attributes so the file builds without -march flags.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>

#if defined(_MSC_VER)
#include <malloc.h>
#endif

#include "gemm.h"
#include "thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#define RNNKIT_X86 1
#include <immintrin.h>
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace rnnkit::cpu {

namespace {

// Micro-kernel: C[0..MR)[0..n) = alpha * sum_k a[k*MR+i] * b[k*bs+j] + beta * C  (beta == 0: C is not read).
// `n` <= NR; `b` always has NR readable floats per k row.
using KernelFn = void (*)(int kc, const float* a, const float* b, std::ptrdiff_t bs, float* c, std::ptrdiff_t ldc,
                          int n, float alpha, float beta);

constexpr int kMaxMR = 16;

// dst[k * W + r] = src[r * lds + k] for r < rows <= W, k < kc: turns rows that are contiguous in k into a panel
// interleaved by k. Used to pack op(A) without transpose and op(B) with one.
using InterleaveFn = void (*)(const float* src, std::ptrdiff_t lds, int rows, int kc, float* dst, int W);

// C[0..m)[0..n) = alpha * A[0..m) . B[0..n) + beta * C, A and B rows contiguous in k (the A * B^T case).
using DotFn = void (*)(int m, int n, int K, const float* a, std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb,
                       float* c, std::ptrdiff_t ldc, float alpha, float beta);

// Like KernelFn, for exactly Arch::wideCols[h] columns.
using WideFn = void (*)(int kc, const float* a, const float* b, std::ptrdiff_t bs, float* c, std::ptrdiff_t ldc,
                        float alpha, float beta);

void interleaveScalar(const float* src, std::ptrdiff_t lds, int rows, int kc, float* dst, int W) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r;
    for (int k = 0; k < kc; ++k) d[k * W] = s[k];
  }
}

struct Arch {
  const char* name;
  int mr;
  int nr;
  // Cache blocking: KC rows of k per packed block, MC rows of op(A), NC columns of op(B). With KC = 256 one A
  // micro-panel (MR x KC, 14 KiB for AVX-512) stays in L1 while the B micro-panels stream past it from a KC x NC
  // block sized to about one L2 (1 MiB at NC = 1024); NC also bounds how often A gets re-packed (N / NC times).
  int kc;
  int mc;
  int nc;
  KernelFn kernel[kMaxMR + 1];  // kernel[h] computes an h-row panel, 1 <= h <= mr
  InterleaveFn interleave;
  // C = alpha * A * B^T + beta * C for a few rows of A (contiguous in k) against rows of B; null if unavailable.
  DotFn dot;
  // Optional wide kernels for h <= 3 rows with B read in place: wide[h] computes wideCols[h] columns.
  WideFn wide[4];
  int wideCols[4];
};

// ---------------------------------------------------------------------------------------------------------------
// Generic (portable) micro-kernel. Fixed-size arrays with constant trip counts let the compiler keep the tile in
// vector registers with whatever SIMD the baseline target has (SSE2 on x86-64, NEON on aarch64).

constexpr int kGenericMR = 4;
constexpr int kGenericNR = 16;

template <int MR>
void kernelGeneric(int kc, const float* a, const float* b, std::ptrdiff_t bs, float* c, std::ptrdiff_t ldc, int n,
                   float alpha, float beta) {
  constexpr int NR = kGenericNR;
  float acc[MR][NR] = {};
  for (int k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += bs;
  }
  for (int i = 0; i < MR; ++i) {
    float* cr = c + i * ldc;
    if (beta == 0.f) {
      for (int j = 0; j < n; ++j) cr[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < n; ++j) cr[j] = alpha * acc[i][j] + beta * cr[j];
    }
  }
}

#if defined(__aarch64__)
// ---------------------------------------------------------------------------------------------------------------
// NEON micro-kernel: MR x 16 (four q registers per row). MR = 6 gives 24 accumulators, leaving room for the
// four B vectors of a k step within the 32 vector registers.

constexpr int kNeonMR = 6;
constexpr int kNeonNR = 16;

template <int MR>
void kernelNeon(int kc, const float* a, const float* b, std::ptrdiff_t bs, float* c, std::ptrdiff_t ldc, int n,
                float alpha, float beta) {
  float32x4_t acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < 4; ++v) acc[i][v] = vdupq_n_f32(0.f);
  for (int k = 0; k < kc; ++k) {
    float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      acc[i][0] = vfmaq_n_f32(acc[i][0], b0, ai);
      acc[i][1] = vfmaq_n_f32(acc[i][1], b1, ai);
      acc[i][2] = vfmaq_n_f32(acc[i][2], b2, ai);
      acc[i][3] = vfmaq_n_f32(acc[i][3], b3, ai);
    }
    a += MR;
    b += bs;
  }
  for (int i = 0; i < MR; ++i) {
    float* cr = c + i * ldc;
    if (n == kNeonNR) {
      for (int v = 0; v < 4; ++v) {
        float32x4_t r = vmulq_n_f32(acc[i][v], alpha);
        if (beta != 0.f) r = vfmaq_n_f32(r, vld1q_f32(cr + 4 * v), beta);
        vst1q_f32(cr + 4 * v, r);
      }
    } else {
      float tmp[kNeonNR];
      for (int v = 0; v < 4; ++v) vst1q_f32(tmp + 4 * v, acc[i][v]);
      for (int j = 0; j < n; ++j) cr[j] = beta == 0.f ? alpha * tmp[j] : alpha * tmp[j] + beta * cr[j];
    }
  }
}
#endif

#if defined(RNNKIT_X86)
// ---------------------------------------------------------------------------------------------------------------
// AVX2 + FMA micro-kernel: MR x 16 with MR = 6 -> 12 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm.

constexpr int kAvx2MR = 6;
constexpr int kAvx2NR = 16;

template <int MR>
__attribute__((target("avx2,fma"))) void kernelAvx2(int kc, const float* a, const float* b, std::ptrdiff_t bs,
                                                     float* c, std::ptrdiff_t ldc, int n, float alpha, float beta) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm256_setzero_ps();
    acc1[i] = _mm256_setzero_ps();
  }
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += bs;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  // Fully unrolled, like every loop over the accumulators: an indexed access would force them onto the stack.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* cr = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(acc0[i], va);
    __m256 r1 = _mm256_mul_ps(acc1[i], va);
    if (n == kAvx2NR) {
      if (beta != 0.f) {
        r0 = _mm256_fmadd_ps(_mm256_loadu_ps(cr), vb, r0);
        r1 = _mm256_fmadd_ps(_mm256_loadu_ps(cr + 8), vb, r1);
      }
      _mm256_storeu_ps(cr, r0);
      _mm256_storeu_ps(cr + 8, r1);
    } else {
      alignas(32) float tmp[kAvx2NR];
      _mm256_store_ps(tmp, r0);
      _mm256_store_ps(tmp + 8, r1);
      if (beta == 0.f) {
        for (int j = 0; j < n; ++j) cr[j] = tmp[j];
      } else {
        for (int j = 0; j < n; ++j) cr[j] = tmp[j] + beta * cr[j];
      }
    }
  }
}

// Wide kernel for 1-3 rows of op(A) with B read in place; see wideAvx512 for why thin panels need it.
template <int MI>
constexpr int wideVectorsAvx2() {
  return MI == 1 ? 12 : MI == 2 ? 6 : 4;
}

template <int MI>
__attribute__((target("avx2,fma"))) void wideAvx2(int kc, const float* a, const float* b, std::ptrdiff_t bs,
                                                   float* c, std::ptrdiff_t ldc, float alpha, float beta) {
  constexpr int V = wideVectorsAvx2<MI>();
  __m256 acc[MI][V];
#pragma GCC unroll 16
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    __m256 ai[MI];
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) ai[i] = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      const __m256 bv = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 4
      for (int i = 0; i < MI; ++i) acc[i][v] = _mm256_fmadd_ps(ai[i], bv, acc[i][v]);
    }
    a += MI;
    b += bs;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 4
  for (int i = 0; i < MI; ++i) {
    float* cr = c + i * ldc;
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      __m256 r = _mm256_mul_ps(acc[i][v], va);
      if (beta != 0.f) r = _mm256_fmadd_ps(_mm256_loadu_ps(cr + 8 * v), vb, r);
      _mm256_storeu_ps(cr + 8 * v, r);
    }
  }
}

// 8 x 8 in-register transposes; rows past `rows` re-read the last valid row (never out of bounds) and are
// dropped by a masked store.
__attribute__((target("avx2,fma"))) void interleaveAvx2(const float* src, std::ptrdiff_t lds, int rows, int kc,
                                                         float* dst, int W) {
  const int kc8 = kc & ~7;
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const int nrow = std::min(8, rows - r0);
    const float* p[8];
    for (int q = 0; q < 8; ++q) p[q] = src + (r0 + std::min(q, nrow - 1)) * lds;
    alignas(32) static const int kLanes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nrow), _mm256_load_si256(reinterpret_cast<const __m256i*>(kLanes)));
    float* d = dst + r0;
    for (int k = 0; k < kc8; k += 8) {
      const __m256 r0v = _mm256_loadu_ps(p[0] + k), r1v = _mm256_loadu_ps(p[1] + k);
      const __m256 r2v = _mm256_loadu_ps(p[2] + k), r3v = _mm256_loadu_ps(p[3] + k);
      const __m256 r4v = _mm256_loadu_ps(p[4] + k), r5v = _mm256_loadu_ps(p[5] + k);
      const __m256 r6v = _mm256_loadu_ps(p[6] + k), r7v = _mm256_loadu_ps(p[7] + k);
      const __m256 t0 = _mm256_unpacklo_ps(r0v, r1v), t1 = _mm256_unpackhi_ps(r0v, r1v);
      const __m256 t2 = _mm256_unpacklo_ps(r2v, r3v), t3 = _mm256_unpackhi_ps(r2v, r3v);
      const __m256 t4 = _mm256_unpacklo_ps(r4v, r5v), t5 = _mm256_unpackhi_ps(r4v, r5v);
      const __m256 t6 = _mm256_unpacklo_ps(r6v, r7v), t7 = _mm256_unpackhi_ps(r6v, r7v);
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      __m256 o[8];
      o[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
      o[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
      o[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
      o[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
      o[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
      o[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
      o[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
      o[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
      if (nrow == 8) {
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (k + q) * W, o[q]);
      } else {
        for (int q = 0; q < 8; ++q) _mm256_maskstore_ps(d + (k + q) * W, mask, o[q]);
      }
    }
    for (int k = kc8; k < kc; ++k)
      for (int q = 0; q < nrow; ++q) d[k * W + q] = p[q][k];
  }
}

// Dot-product kernel for A * B^T with very few rows of A (the batch-1 inference step): both operands are
// contiguous in k, so reading them in place beats packing B, which would cost more than the multiplication.
template <int MI, int JB>
__attribute__((target("avx2,fma"))) void dotBlockAvx2(int K, const float* a, std::ptrdiff_t lda, const float* b,
                                                       std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, float alpha,
                                                       float beta) {
  __m256 acc[MI][JB];
#pragma GCC unroll 4
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 bv[JB];
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j) bv[j] = _mm256_loadu_ps(b + j * ldb + k);
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + k);
#pragma GCC unroll 8
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (k < K) {
    alignas(32) static const int kLanes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), _mm256_load_si256(reinterpret_cast<const __m256i*>(kLanes)));
    __m256 bv[JB];
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j) bv[j] = _mm256_maskload_ps(b + j * ldb + k, mask);
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) {
      const __m256 av = _mm256_maskload_ps(a + i * lda + k, mask);
#pragma GCC unroll 8
      for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  // Fully unrolled, so that acc stays in registers (an index the compiler cannot resolve would put it in memory).
#pragma GCC unroll 4
  for (int i = 0; i < MI; ++i) {
    float* cr = c + i * ldc;
    // Reduce four accumulators at a time: two rounds of hadd then fold the 128-bit halves.
#pragma GCC unroll 2
    for (int j0 = 0; j0 < JB; j0 += 4) {
      alignas(16) float sums[4];
      __m256 x[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) x[j] = j0 + j < JB ? acc[i][j0 + j] : _mm256_setzero_ps();
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(x[0], x[1]), _mm256_hadd_ps(x[2], x[3]));
      _mm_store_ps(sums, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        if (j0 + j < JB) cr[j0 + j] = beta == 0.f ? alpha * sums[j] : alpha * sums[j] + beta * cr[j0 + j];
    }
  }
}

// Rows of B per block for MI rows of A: MI x JB accumulators plus the vectors in flight fit the 16 ymm registers,
// and one row of A still gets eight FMA chains, enough to hide the FMA latency (with three it was latency-bound).
constexpr int kDotMaxM = 4;
template <int MI>
constexpr int dotRowsPerBlockAvx2() {
  return MI == 1 ? 8 : MI == 2 ? 6 : MI == 3 ? 4 : 3;
}

template <int MI, int JB = dotRowsPerBlockAvx2<MI>()>
void dotRowsAvx2(int n, int K, const float* a, std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float* c,
                 std::ptrdiff_t ldc, float alpha, float beta) {
  int j = 0;
  for (; j + JB <= n; j += JB) dotBlockAvx2<MI, JB>(K, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
  if constexpr (JB > 2) {
    if (n - j >= JB / 2) {
      dotBlockAvx2<MI, JB / 2>(K, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
      j += JB / 2;
    }
  }
  for (; j < n; ++j) dotBlockAvx2<MI, 1>(K, a, lda, b + j * ldb, ldb, c + j, ldc, alpha, beta);
}

void dotAvx2(int m, int n, int K, const float* a, std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float* c,
             std::ptrdiff_t ldc, float alpha, float beta) {
  // One row of A: B streams past once. More rows: column strips of B that stay in L1 while every row group of A
  // passes over them (24 rows: whole blocks for every block height).
  const int strip = m <= 1 ? n : 24;
  for (int j0 = 0; j0 < n; j0 += strip) {
    const int nj = std::min(strip, n - j0);
    const float* bs = b + j0 * ldb;
    for (int i = 0; i < m; i += kDotMaxM) {
      const float* ai = a + i * lda;
      float* ci = c + i * ldc + j0;
      switch (std::min(kDotMaxM, m - i)) {
        case 4: dotRowsAvx2<4>(nj, K, ai, lda, bs, ldb, ci, ldc, alpha, beta); break;
        case 3: dotRowsAvx2<3>(nj, K, ai, lda, bs, ldb, ci, ldc, alpha, beta); break;
        case 2: dotRowsAvx2<2>(nj, K, ai, lda, bs, ldb, ci, ldc, alpha, beta); break;
        default: dotRowsAvx2<1>(nj, K, ai, lda, bs, ldb, ci, ldc, alpha, beta); break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// AVX-512 micro-kernel: MR x 32 (two zmm per row). MR = 14 -> 28 accumulators + 2 B vectors + 1 broadcast
// = 31 of 32 zmm, the largest tile that fits, which minimizes loads per FMA. A one-row panel (the batch-1 step)
// gets a second accumulator set so that four FMA chains hide the FMA latency.

constexpr int kAvx512MR = 14;
constexpr int kAvx512NR = 32;

template <int MR>
__attribute__((target("avx512f"))) void kernelAvx512(int kc, const float* a, const float* b, std::ptrdiff_t bs,
                                                      float* c, std::ptrdiff_t ldc, int n, float alpha, float beta) {
  constexpr int kSets = MR == 1 ? 2 : 1;
  __m512 acc0[kSets][MR], acc1[kSets][MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int s = 0; s < kSets; ++s) {
      acc0[s][i] = _mm512_setzero_ps();
      acc1[s][i] = _mm512_setzero_ps();
    }
  }
  // Touch the C tile early so its lines arrive while the k loop runs.
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 31), _MM_HINT_T0);
  }
  int k = 0;
  if (kSets == 2) {
    for (; k + 1 < kc; k += 2) {
#pragma GCC unroll 2
      for (int s = 0; s < kSets; ++s) {
        const __m512 b0 = _mm512_loadu_ps(b + s * bs);
        const __m512 b1 = _mm512_loadu_ps(b + s * bs + 16);
        const __m512 ai = _mm512_set1_ps(a[s]);
        acc0[s][0] = _mm512_fmadd_ps(ai, b0, acc0[s][0]);
        acc1[s][0] = _mm512_fmadd_ps(ai, b1, acc1[s][0]);
      }
      a += 2;
      b += 2 * bs;
    }
  }
  for (; k < kc; ++k) {
    __m512 b0 = _mm512_loadu_ps(b);
    __m512 b1 = _mm512_loadu_ps(b + 16);
    // Keep B in registers: otherwise GCC folds the load into every row's FMA, loading it MR times.
    asm("" : "+v"(b0), "+v"(b1));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[0][i] = _mm512_fmadd_ps(ai, b0, acc0[0][i]);
      acc1[0][i] = _mm512_fmadd_ps(ai, b1, acc1[0][i]);
    }
    a += MR;
    b += bs;
  }
  if (kSets == 2) {
    acc0[0][0] = _mm512_add_ps(acc0[0][0], acc0[kSets - 1][0]);
    acc1[0][0] = _mm512_add_ps(acc1[0][0], acc1[kSets - 1][0]);
  }
  const __mmask16 m0 = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
  const __mmask16 m1 = n >= 32 ? static_cast<__mmask16>(0xFFFF)
                               : (n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1u) : static_cast<__mmask16>(0));
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* cr = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(acc0[0][i], va);
    __m512 r1 = _mm512_mul_ps(acc1[0][i], va);
    // Masked loads never fault on the lanes they skip, so a partial tile at the end of C is safe.
    if (beta != 0.f) {
      r0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, cr), vb, r0);
      r1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, cr + 16), vb, r1);
    }
    _mm512_mask_storeu_ps(cr, m0, r0);
    _mm512_mask_storeu_ps(cr + 16, m1, r1);
  }
}

// Wide kernel for 1-3 rows of op(A) with B read in place (no transpose): C[0..MI)[0..16V) in one pass.
// A 32-column strip would touch just two cache lines per B row, and with a row stride of a multiple of 4 KiB
// (N = 1024, 2048 here) every row lands in the same cache sets, so the thin kernel stalls on B. A wide strip reads
// V contiguous lines per row and keeps 16-24 independent FMA chains busy.
template <int MI>
constexpr int wideVectors() {
  return MI == 1 ? 16 : MI == 2 ? 12 : 8;
}

template <int MI>
__attribute__((target("avx512f"))) void wideAvx512(int kc, const float* a, const float* b, std::ptrdiff_t bs,
                                                    float* c, std::ptrdiff_t ldc, float alpha, float beta) {
  constexpr int V = wideVectors<MI>();
  __m512 acc[MI][V];
#pragma GCC unroll 16
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    __m512 ai[MI];
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) ai[i] = _mm512_set1_ps(a[i]);
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      const __m512 bv = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 4
      for (int i = 0; i < MI; ++i) acc[i][v] = _mm512_fmadd_ps(ai[i], bv, acc[i][v]);
    }
    a += MI;
    b += bs;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 4
  for (int i = 0; i < MI; ++i) {
    float* cr = c + i * ldc;
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      __m512 r = _mm512_mul_ps(acc[i][v], va);
      if (beta != 0.f) r = _mm512_fmadd_ps(_mm512_loadu_ps(cr + 16 * v), vb, r);
      _mm512_storeu_ps(cr + 16 * v, r);
    }
  }
}

#endif  // RNNKIT_X86

template <int... Is, typename F>
void fillTable(KernelFn* table, F make, std::integer_sequence<int, Is...>) {
  ((table[Is + 1] = make(std::integral_constant<int, Is + 1>{})), ...);
}

Arch makeGeneric() {
  Arch a{"generic", kGenericMR, kGenericNR, 256, 128, 1024, {}, interleaveScalar, nullptr, {}, {}};
  fillTable(a.kernel, [](auto h) -> KernelFn { return &kernelGeneric<decltype(h)::value>; },
            std::make_integer_sequence<int, kGenericMR>{});
  return a;
}

#if defined(__aarch64__)
Arch makeNeon() {
  Arch a{"neon", kNeonMR, kNeonNR, 256, 120, 1024, {}, interleaveScalar, nullptr, {}, {}};
  fillTable(a.kernel, [](auto h) -> KernelFn { return &kernelNeon<decltype(h)::value>; },
            std::make_integer_sequence<int, kNeonMR>{});
  return a;
}
#endif

#if defined(RNNKIT_X86)
Arch makeAvx2() {
  Arch a{"avx2", kAvx2MR, kAvx2NR, 256, 120, 1024, {}, interleaveAvx2, dotAvx2, {}, {}};
  fillTable(a.kernel, [](auto h) -> KernelFn { return &kernelAvx2<decltype(h)::value>; },
            std::make_integer_sequence<int, kAvx2MR>{});
  a.wide[1] = &wideAvx2<1>;
  a.wide[2] = &wideAvx2<2>;
  a.wide[3] = &wideAvx2<3>;
  a.wideCols[1] = 8 * wideVectorsAvx2<1>();
  a.wideCols[2] = 8 * wideVectorsAvx2<2>();
  a.wideCols[3] = 8 * wideVectorsAvx2<3>();
  return a;
}

Arch makeAvx512() {
  // The dot kernel stays AVX2: the few-row products stream their weights from memory, and with 512-bit vectors they
  // measured slower (benchGemm(1, 3332, 256): 27.2-27.4 against 24.0-24.9 us on a Zen 4, which splits 512-bit ops).
  Arch a{"avx512", kAvx512MR, kAvx512NR, 256, 140, 1024, {}, interleaveAvx2, dotAvx2, {}, {}};
  fillTable(a.kernel, [](auto h) -> KernelFn { return &kernelAvx512<decltype(h)::value>; },
            std::make_integer_sequence<int, kAvx512MR>{});
  a.wide[1] = &wideAvx512<1>;
  a.wide[2] = &wideAvx512<2>;
  a.wide[3] = &wideAvx512<3>;
  a.wideCols[1] = 16 * wideVectors<1>();
  a.wideCols[2] = 16 * wideVectors<2>();
  a.wideCols[3] = 16 * wideVectors<3>();
  return a;
}
#endif

// Chosen once. RNNKIT_GEMM_KERNEL (avx512 | avx2 | neon | generic) can force a weaker kernel, which lets the
// tests exercise every code path on one machine; a request the CPU cannot run falls back to detection.
Arch selectArch() {
  const char* want = std::getenv("RNNKIT_GEMM_KERNEL");
  auto wants = [&](const char* name) { return want && std::strcmp(want, name) == 0; };
  if (wants("generic")) return makeGeneric();
#if defined(RNNKIT_X86)
  __builtin_cpu_init();
  const bool hasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool hasAvx512 = __builtin_cpu_supports("avx512f");
  if (wants("avx2") && hasAvx2) return makeAvx2();
  if (hasAvx512) return makeAvx512();
  if (hasAvx2) return makeAvx2();
#endif
#if defined(__aarch64__)
  return makeNeon();
#else
  return makeGeneric();
#endif
}

const Arch& arch() {
  static const Arch a = selectArch();
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Packing.

// op(A) rows [i0, i0+mc) x k [k0, k0+kc) into panels of `mr` rows (the last one shorter), panel-major: panel p
// starts at dst + p * mr * kc.
void packA(bool transA, const float* A, std::ptrdiff_t lda, int i0, int mc, int k0, int kc, int mr, float* dst) {
  if (transA) {
    // op(A)[i][k] = A[k][i]. Walk k in the outer loop so each row of A is read once as one contiguous run; going
    // panel by panel would revisit the same rows, which (with a row stride of a multiple of 4 KiB) have already
    // been evicted from their shared cache sets.
    const float* src = A + static_cast<std::ptrdiff_t>(k0) * lda + i0;
    for (int k = 0; k < kc; ++k) {
      const float* s = src + k * lda;
      for (int ip = 0; ip < mc; ip += mr) {
        const int h = std::min(mr, mc - ip);
        float* d = dst + static_cast<std::ptrdiff_t>(ip) * kc + k * h;
        const float* r = s + ip;
        int i = 0;
        // Fixed-size memcpy compiles to one unaligned vector move; a plain loop stays scalar at -O2.
        for (; i + 4 <= h; i += 4) std::memcpy(d + i, r + i, 4 * sizeof(float));
        for (; i < h; ++i) d[i] = r[i];
      }
    }
    return;
  }
  for (int ip = 0; ip < mc; ip += mr) {
    const int h = std::min(mr, mc - ip);
    arch().interleave(A + static_cast<std::ptrdiff_t>(i0 + ip) * lda + k0, lda, h, kc,
                      dst + static_cast<std::ptrdiff_t>(ip) * kc, h);
  }
}

// op(B) k [k0, k0+kc) x columns [j0, j0+nc) into panels of `nr` columns, zero padded, panel-major: panel p starts
// at dst + p * nr * kc.
void packB(bool transB, const float* B, std::ptrdiff_t ldb, int k0, int kc, int j0, int nc, int nr, float* dst) {
  if (transB) {
    for (int jp = 0; jp < nc; jp += nr) {
      const int w = std::min(nr, nc - jp);
      float* d = dst + static_cast<std::ptrdiff_t>(jp) * kc;
      // op(B)[k][j] = B[j][k]: read B rows contiguously, transpose into the panel.
      arch().interleave(B + static_cast<std::ptrdiff_t>(j0 + jp) * ldb + k0, ldb, w, kc, d, nr);
      if (w < nr) {
        for (int k = 0; k < kc; ++k)
          for (int j = w; j < nr; ++j) d[k * nr + j] = 0.f;
      }
    }
    return;
  }
  // k outer, for the same reason as in packA.
  const float* src = B + static_cast<std::ptrdiff_t>(k0) * ldb + j0;
  for (int k = 0; k < kc; ++k) {
    const float* s = src + k * ldb;
    for (int jp = 0; jp < nc; jp += nr) {
      const int w = std::min(nr, nc - jp);
      float* d = dst + static_cast<std::ptrdiff_t>(jp) * kc + k * nr;
      std::memcpy(d, s + jp, sizeof(float) * static_cast<std::size_t>(w));
      for (int j = w; j < nr; ++j) d[j] = 0.f;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Per-thread packing buffers. Pool workers live as long as the pool, so after the first few calls every GEMM
// reuses these and allocates nothing.

void* alignedAlloc(std::size_t bytes) {
#if defined(_MSC_VER)
  return _aligned_malloc(bytes, 64);
#else
  return std::aligned_alloc(64, bytes);
#endif
}

void alignedFree(void* p) {
#if defined(_MSC_VER)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { alignedFree(p_); }
  // Returns nullptr when the allocation fails (callers then fall back to the unblocked path).
  float* get(std::size_t floats) {
    if (floats > cap_) {
      std::size_t want = std::max(floats, cap_ * 2);
      std::size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
      void* np = alignedAlloc(bytes);
      if (!np) return nullptr;
      alignedFree(p_);
      p_ = static_cast<float*>(np);
      cap_ = bytes / sizeof(float);
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  std::size_t cap_ = 0;
};

struct ThreadBuffers {
  PackBuffer a;
  PackBuffer b;
  PackBuffer edge;  // one B panel, for the right edge when B is otherwise read in place
};

ThreadBuffers& threadBuffers() {
  thread_local ThreadBuffers buffers;
  return buffers;
}

// ---------------------------------------------------------------------------------------------------------------
// Driver.

struct Problem {
  bool transA, transB;
  int M, N, K;
  float alpha, beta;
  const float* A;
  std::ptrdiff_t lda;
  const float* B;
  std::ptrdiff_t ldb;
  float* C;
  std::ptrdiff_t ldc;
  // op(B) already in panels (builtinPackB): k block pc of the panel holding column j starts at
  // packedB + pc * paddedN + j * kc. B is then unused.
  const float* packedB = nullptr;
  int paddedN = 0;
};

// Straight triple loop, used only if packing buffers cannot be allocated. Accumulates in float like the kernels.
void naiveBlock(const Problem& p, int m0, int m1, int n0, int n1) {
  for (int i = m0; i < m1; ++i) {
    float* cr = p.C + i * p.ldc;
    for (int j = n0; j < n1; ++j) {
      float s = 0.f;
      for (int k = 0; k < p.K; ++k) {
        float av = p.transA ? p.A[k * p.lda + i] : p.A[i * p.lda + k];
        float bv = p.transB ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j];
        s += av * bv;
      }
      cr[j] = p.beta == 0.f ? p.alpha * s : p.alpha * s + p.beta * cr[j];
    }
  }
}

// Splits `total` into blocks of at most `cap`, all of about the same size (multiples of `align` where possible),
// so a K of 300 becomes 152 + 148 rather than 256 + 44.
int balancedBlock(int total, int cap, int align) {
  if (total <= cap) return total;
  int blocks = (total + cap - 1) / cap;
  int size = (total + blocks - 1) / blocks;
  size = (size + align - 1) / align * align;
  return std::min(size, cap);
}

// Rows of op(A) up to which A * B^T runs as dot products (Arch::dot) instead of packing B.
constexpr int kDotMaxRows = 4;

bool useDot(const Problem& p, int rows) { return !p.packedB && p.transB && arch().dot && rows <= kDotMaxRows; }

// Whether op(B) is read straight from B (by the micro-kernel or the dot kernel). Only when few rows of op(A) will
// reuse each B panel: the packing pass then is not paid back by faster kernel reads.
bool readBInPlace(const Problem& p, int rows) {
  return !p.packedB && ((!p.transB && rows <= 2 * arch().mr) || useDot(p, rows));
}

void gemmDot(const Problem& p, int m0, int m1, int n0, int n1) {
  const int rows = m1 - m0;
  const float* a = p.A + static_cast<std::ptrdiff_t>(m0) * p.lda;
  std::ptrdiff_t lda = p.lda;
  if (p.transA) {
    // The dot kernel wants op(A) rows contiguous in k; with transA they are strided, so gather them (tiny).
    float* buf = threadBuffers().a.get(static_cast<std::size_t>(rows) * p.K);
    if (!buf) {
      naiveBlock(p, m0, m1, n0, n1);
      return;
    }
    for (int k = 0; k < p.K; ++k) {
      const float* src = p.A + static_cast<std::ptrdiff_t>(k) * p.lda + m0;
      for (int i = 0; i < rows; ++i) buf[static_cast<std::ptrdiff_t>(i) * p.K + k] = src[i];
    }
    a = buf;
    lda = p.K;
  }
  arch().dot(rows, n1 - n0, p.K, a, lda, p.B + static_cast<std::ptrdiff_t>(n0) * p.ldb, p.ldb,
             p.C + static_cast<std::ptrdiff_t>(m0) * p.ldc + n0, p.ldc, p.alpha, p.beta);
}

// C[m0:m1, n0:n1] of the full product, run on one thread.
void gemmBlock(const Problem& p, int m0, int m1, int n0, int n1) {
  const Arch& ar = arch();
  const int mr = ar.mr, nr = ar.nr;
  const int rows = m1 - m0, cols = n1 - n0;
  if (rows <= 0 || cols <= 0) return;
  if (useDot(p, rows)) {
    gemmDot(p, m0, m1, n0, n1);
    return;
  }

  const int KC = balancedBlock(p.K, ar.kc, 8);
  const int MC = balancedBlock(rows, ar.mc, mr);
  const int NC = balancedBlock(cols, ar.nc, nr);
  const bool direct = readBInPlace(p, rows);

  ThreadBuffers& tb = threadBuffers();
  float* bufA = tb.a.get(static_cast<std::size_t>(MC) * KC);
  float* bufB = direct      ? tb.edge.get(static_cast<std::size_t>(nr) * KC)
                : p.packedB ? tb.edge.get(1)  // unused: the panels are read where they are
                            : tb.b.get(static_cast<std::size_t>((NC + nr - 1) / nr * nr) * KC);
  if (!bufA || !bufB) {
    naiveBlock(p, m0, m1, n0, n1);
    return;
  }

  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < p.K; pc += KC) {
      const int kc = std::min(KC, p.K - pc);
      // Later k blocks accumulate onto what the first one wrote.
      const float beta = pc == 0 ? p.beta : 1.f;
      // jc is a multiple of nr (thread tiles and NC blocks are), so a packed panel starts exactly at column jc.
      const float* panels = p.packedB ? p.packedB + static_cast<std::ptrdiff_t>(pc) * p.paddedN +
                                            static_cast<std::ptrdiff_t>(jc) * kc
                                      : bufB;
      if (!direct && !p.packedB) packB(p.transB, p.B, p.ldb, pc, kc, jc, nc, nr, bufB);
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = std::min(MC, m1 - ic);
        packA(p.transA, p.A, p.lda, ic, mc, pc, kc, mr, bufA);
        // Keep one A panel hot in L1 and stream the B panels past it from L2.
        for (int ir = 0; ir < mc; ir += mr) {
          const int h = std::min(mr, mc - ir);
          const float* ap = bufA + static_cast<std::ptrdiff_t>(ir) * kc;
          float* crow = p.C + static_cast<std::ptrdiff_t>(ic + ir) * p.ldc + jc;
          const KernelFn kern = ar.kernel[h];
          int jr = 0;
          if (direct && h < 4 && ar.wide[h]) {
            const int wc = ar.wideCols[h];
            for (; jr + wc <= nc; jr += wc)
              ar.wide[h](kc, ap, p.B + static_cast<std::ptrdiff_t>(pc) * p.ldb + jc + jr, p.ldb, crow + jr, p.ldc,
                         p.alpha, beta);
          }
          for (; jr < nc; jr += nr) {
            const int w = std::min(nr, nc - jr);
            const float* bp;
            std::ptrdiff_t bs;
            if (!direct) {
              bp = panels + static_cast<std::ptrdiff_t>(jr) * kc;
              bs = nr;
            } else if (w == nr) {
              bp = p.B + static_cast<std::ptrdiff_t>(pc) * p.ldb + jc + jr;
              bs = p.ldb;
            } else {
              // The kernel reads NR columns; the ragged right edge must come from a padded copy.
              packB(false, p.B, p.ldb, pc, kc, jc + jr, w, nr, bufB);
              bp = bufB;
              bs = nr;
            }
            kern(kc, ap, bp, bs, crow + jr, p.ldc, w, p.alpha, beta);
          }
        }
      }
    }
  }
}

void scaleC(float* C, std::ptrdiff_t ldc, int m0, int m1, int N, float beta) {
  for (int i = m0; i < m1; ++i) {
    float* cr = C + i * ldc;
    if (beta == 0.f) {
      std::memset(cr, 0, sizeof(float) * static_cast<std::size_t>(N));
    } else if (beta != 1.f) {
      for (int j = 0; j < N; ++j) cr[j] *= beta;
    }
  }
}

// Below this many flops per thread, splitting costs more (wake-up + duplicated packing) than it saves.
constexpr double kMinFlopsPerThread = 2.0e5;

struct Split {
  int tm = 1, tn = 1;
};

// Chooses a tm x tn grid of independent C tiles, one per thread, minimizing the modelled time of the largest tile:
// its (padded) flops plus the packing it must do, which is duplicated across threads sharing rows or columns.
Split chooseSplit(const Problem& p, int threads) {
  const Arch& ar = arch();
  Split best;
  double bestCost = -1.0;
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const int rows = (p.M + tm - 1) / tm;
    int cols = (p.N + tn - 1) / tn;
    cols = (cols + ar.nr - 1) / ar.nr * ar.nr;
    if (rows < 1 || (tm > 1 && rows * (tm - 1) >= p.M) || (tn > 1 && cols * (tn - 1) >= p.N)) continue;
    const double flops = 2.0 * rows * cols * p.K;
    const double packB = readBInPlace(p, rows) || p.packedB ? 0.0 : static_cast<double>(p.K) * cols;
    const double packA = static_cast<double>(rows) * p.K * ((cols + ar.nc - 1) / ar.nc);
    // A packed element costs about as much as a couple of dozen flops of kernel time.
    const double cost = flops + 24.0 * (packA + packB);
    if (bestCost < 0 || cost < bestCost) {
      bestCost = cost;
      best.tm = tm;
      best.tn = tn;
    }
  }
  return best;
}

void runProblem(const Problem& p, ThreadPool& pool);

}  // namespace

const char* builtinKernelName() { return arch().name; }

void builtinSgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                  const float* B, int ldb, float beta, float* C, int ldc, ThreadPool& pool) {
  if (M <= 0 || N <= 0) return;
  runProblem(Problem{transA, transB, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc}, pool);
}

std::size_t builtinPackedBFloats(bool transB, int N, int K, int rows) {
  Problem probe{false, transB, rows, N, K, 1.f, 0.f, nullptr, 0, nullptr, 0, nullptr, 0};
  if (N <= 0 || K <= 0 || readBInPlace(probe, rows)) return 0;
  const int nr = arch().nr;
  return static_cast<std::size_t>((N + nr - 1) / nr * nr) * K;
}

void builtinPackB(bool transB, int N, int K, const float* B, int ldb, float* packed) {
  const Arch& ar = arch();
  const int paddedN = (N + ar.nr - 1) / ar.nr * ar.nr;
  const int KC = balancedBlock(K, ar.kc, 8);
  for (int pc = 0; pc < K; pc += KC)
    packB(transB, B, ldb, pc, std::min(KC, K - pc), 0, N, ar.nr, packed + static_cast<std::ptrdiff_t>(pc) * paddedN);
}

void builtinPackBRows(int N, int K, const float* B, int ldb, const int* rowOf, float* packed) {
  const Arch& ar = arch();
  const int nr = ar.nr;
  const int paddedN = (N + nr - 1) / nr * nr;
  const int KC = balancedBlock(K, ar.kc, 8);
  // One panel's rows gathered into a contiguous block, then interleaved as builtinPackB would from B itself.
  float* rows = threadBuffers().edge.get(static_cast<std::size_t>(nr) * K);
  for (int jp = 0; jp < N; jp += nr) {
    const int w = std::min(nr, N - jp);
    if (rows) {
      for (int j = 0; j < w; ++j)
        std::memcpy(rows + static_cast<std::ptrdiff_t>(j) * K, B + static_cast<std::ptrdiff_t>(rowOf[jp + j]) * ldb,
                    sizeof(float) * static_cast<std::size_t>(K));
    }
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      float* d = packed + static_cast<std::ptrdiff_t>(pc) * paddedN + static_cast<std::ptrdiff_t>(jp) * kc;
      if (rows) {
        ar.interleave(rows + pc, K, w, kc, d, nr);
      } else {
        for (int k = 0; k < kc; ++k)
          for (int j = 0; j < w; ++j) d[k * nr + j] = B[static_cast<std::ptrdiff_t>(rowOf[jp + j]) * ldb + pc + k];
      }
      for (int k = 0; k < kc; ++k)
        for (int j = w; j < nr; ++j) d[k * nr + j] = 0.f;
    }
  }
}

int builtinPanelWidth() { return arch().nr; }

void builtinSgemmPackedBColumns(int M, int N, int K, float alpha, const float* A, int lda, const float* packedB,
                                float beta, float* C, int ldc, int n0, int n1) {
  if (M <= 0 || n1 <= n0) return;
  if (K <= 0 || alpha == 0.f) {
    scaleC(C + n0, ldc, 0, M, n1 - n0, beta);
    return;
  }
  Problem p{false, false, M, N, K, alpha, beta, A, lda, nullptr, 0, C, ldc};
  p.packedB = packedB;
  p.paddedN = (N + arch().nr - 1) / arch().nr * arch().nr;
  gemmBlock(p, 0, M, n0, n1);
}

void builtinSgemmPackedB(int M, int N, int K, float alpha, const float* A, int lda, const float* packedB, float beta,
                         float* C, int ldc, ThreadPool& pool) {
  if (M <= 0 || N <= 0) return;
  Problem p{false, false, M, N, K, alpha, beta, A, lda, nullptr, 0, C, ldc};
  p.packedB = packedB;
  p.paddedN = (N + arch().nr - 1) / arch().nr * arch().nr;
  runProblem(p, pool);
}

void builtinFewRowProducts(const RowProduct* products, int count, ThreadPool& pool) {
  double flops = 0.0, weights = 0.0;
  for (int i = 0; i < count; ++i) {
    flops += 2.0 * products[i].M * products[i].N * products[i].K;
    weights += static_cast<double>(products[i].N) * products[i].K;
  }
  const int threads = static_cast<int>(std::min<double>(pool.size(), std::max(1.0, flops / kMinFlopsPerThread)));
  // Rows [n0, n1) of product p's C on this thread (gemmBlock picks the dot kernel for so few rows of A).
  auto run = [](const RowProduct& p, int n0, int n1) {
    if (p.K <= 0) {
      scaleC(p.C + n0, p.ldc, 0, p.M, n1 - n0, p.beta);
      return;
    }
    gemmBlock(Problem{false, true, p.M, p.N, p.K, 1.f, p.beta, p.A, p.lda, p.B, p.ldb, p.C, p.ldc}, 0, p.M, n0, n1);
  };
  if (threads <= 1) {
    for (int i = 0; i < count; ++i) run(products[i], 0, products[i].N);
    return;
  }
  // Thread t takes the weights [t, t+1) * weights / threads of the products laid end to end, cut at whole blocks
  // of 8 rows, so each thread reads the same amount whatever the mix of input and recurrent widths.
  pool.parallelFor(static_cast<std::size_t>(threads), 1, [&](std::size_t t0, std::size_t t1) {
    const double begin = weights * static_cast<double>(t0) / threads, end = weights * static_cast<double>(t1) / threads;
    double offset = 0.0;
    for (int i = 0; i < count; ++i) {
      const RowProduct& p = products[i];
      const double size = static_cast<double>(p.N) * p.K;
      auto rowAt = [&](double at) {
        if (at <= offset) return 0;
        if (at >= offset + size) return p.N;
        const int row = static_cast<int>((at - offset) / std::max(1, p.K) + 0.5);
        return std::min(p.N, (row + 4) / 8 * 8);
      };
      run(p, rowAt(begin), rowAt(end));
      offset += size;
    }
  });
}

namespace {

void runProblem(const Problem& p, ThreadPool& pool) {
  const int M = p.M, N = p.N, K = p.K;
  float* C = p.C;
  const std::ptrdiff_t ldc = p.ldc;
  const float alpha = p.alpha, beta = p.beta;
  if (K <= 0 || alpha == 0.f) {
    scaleC(C, ldc, 0, M, N, beta);
    return;
  }

  const double flops = 2.0 * M * N * K;
  int threads = pool.size();
  threads = static_cast<int>(std::min<double>(threads, std::max(1.0, flops / kMinFlopsPerThread)));
  if (threads <= 1) {
    gemmBlock(p, 0, M, 0, N);
    return;
  }
  // Only grids that use every chosen thread are considered; a prime count with a thin matrix may leave a
  // dimension unsplittable, in which case fewer threads are used.
  Split s;
  for (; threads > 1; --threads) {
    s = chooseSplit(p, threads);
    if (s.tm * s.tn == threads) break;
  }
  if (threads <= 1) {
    gemmBlock(p, 0, M, 0, N);
    return;
  }
  const int nr = arch().nr;
  const int rowsPer = (M + s.tm - 1) / s.tm;
  const int colsPer = ((N + s.tn - 1) / s.tn + nr - 1) / nr * nr;
  pool.parallelFor(static_cast<std::size_t>(threads), 1, [&](std::size_t t0, std::size_t t1) {
    for (std::size_t t = t0; t < t1; ++t) {
      const int ti = static_cast<int>(t) / s.tn, tj = static_cast<int>(t) % s.tn;
      const int m0 = ti * rowsPer, m1 = std::min(M, m0 + rowsPer);
      const int n0 = tj * colsPer, n1 = std::min(N, n0 + colsPer);
      gemmBlock(p, m0, m1, n0, n1);
    }
  });
}

}  // namespace

}  // namespace rnnkit::cpu
