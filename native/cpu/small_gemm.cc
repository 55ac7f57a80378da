// Products with very few rows (one time step of a batch-1 stream, or a tiny batch): y[M, N] = x[M, K] W[N, K]^T.
// A general GEMM packs W into panels first, which for M = 1 doubles the memory traffic of a product that is
// already bound by reading W once. Here each block of four outputs streams its four rows of W exactly once.
#include "small_gemm.h"

#include <cstddef>
#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_backend.h"

namespace rnnkit::cpu {

namespace {

using RowsKernel = void (*)(int M, int n0, int n1, int K, const float* x, int ldx, const float* W, int ldw,
                            float alpha, float beta, float* y, int ldy);

inline void store(float* out, float alpha, float beta, float sum) {
  *out = alpha * sum + (beta == 0.f ? 0.f : beta * *out);
}

void rowsGeneric(int M, int n0, int n1, int K, const float* x, int ldx, const float* W, int ldw, float alpha,
                 float beta, float* y, int ldy) {
  for (int n = n0; n < n1; ++n)
    for (int m = 0; m < M; ++m) {
      const float* a = x + (std::size_t)m * ldx;
      const float* w = W + (std::size_t)n * ldw;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int k = 0;
      for (; k + 4 <= K; k += 4) {
        s0 += a[k] * w[k];
        s1 += a[k + 1] * w[k + 1];
        s2 += a[k + 2] * w[k + 2];
        s3 += a[k + 3] * w[k + 3];
      }
      for (; k < K; ++k) s0 += a[k] * w[k];
      store(y + (std::size_t)m * ldy + n, alpha, beta, (s0 + s1) + (s2 + s3));
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Four rows of W against one row of x at a time: four independent FMA chains, x loaded once per k step.
__attribute__((target("avx2,fma"))) void rowsAvx2(int M, int n0, int n1, int K, const float* x, int ldx,
                                                  const float* W, int ldw, float alpha, float beta, float* y,
                                                  int ldy) {
  const int K8 = K / 8 * 8;
  int n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* w0 = W + (std::size_t)n * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    for (int m = 0; m < M; ++m) {
      const float* a = x + (std::size_t)m * ldx;
      __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
      for (int k = 0; k < K8; k += 8) {
        const __m256 xa = _mm256_loadu_ps(a + k);
        c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xa, c0);
        c1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xa, c1);
        c2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xa, c2);
        c3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xa, c3);
      }
      float s[4] = {hsum256(c0), hsum256(c1), hsum256(c2), hsum256(c3)};
      for (int k = K8; k < K; ++k) {
        s[0] += a[k] * w0[k];
        s[1] += a[k] * w1[k];
        s[2] += a[k] * w2[k];
        s[3] += a[k] * w3[k];
      }
      float* out = y + (std::size_t)m * ldy + n;
      for (int i = 0; i < 4; ++i) store(out + i, alpha, beta, s[i]);
    }
  }
  if (n < n1) rowsGeneric(M, n, n1, K, x, ldx, W, ldw, alpha, beta, y, ldy);
}

__attribute__((target("avx512f"))) void rowsAvx512(int M, int n0, int n1, int K, const float* x, int ldx,
                                                   const float* W, int ldw, float alpha, float beta, float* y,
                                                   int ldy) {
  const int K16 = K / 16 * 16;
  int n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* w0 = W + (std::size_t)n * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    for (int m = 0; m < M; ++m) {
      const float* a = x + (std::size_t)m * ldx;
      __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
      for (int k = 0; k < K16; k += 16) {
        const __m512 xa = _mm512_loadu_ps(a + k);
        c0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), xa, c0);
        c1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k), xa, c1);
        c2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k), xa, c2);
        c3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k), xa, c3);
      }
      float s[4] = {_mm512_reduce_add_ps(c0), _mm512_reduce_add_ps(c1), _mm512_reduce_add_ps(c2),
                    _mm512_reduce_add_ps(c3)};
      for (int k = K16; k < K; ++k) {
        s[0] += a[k] * w0[k];
        s[1] += a[k] * w1[k];
        s[2] += a[k] * w2[k];
        s[3] += a[k] * w3[k];
      }
      float* out = y + (std::size_t)m * ldy + n;
      for (int i = 0; i < 4; ++i) store(out + i, alpha, beta, s[i]);
    }
  }
  if (n < n1) rowsGeneric(M, n, n1, K, x, ldx, W, ldw, alpha, beta, y, ldy);
}
#endif

RowsKernel pickKernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return rowsAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return rowsAvx2;
#endif
  return rowsGeneric;
}

}  // namespace

bool smallRowsGemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                   int ldb, float beta, float* C, int ldc) {
  static const bool disabled = std::getenv("RNNKIT_NO_SMALL_GEMM") != nullptr;  // for A/B measurements
  if (disabled || transA || !transB || M > kSmallGemmRows || K < 16) return false;
  static const RowsKernel kernel = pickKernel();
  // Split the outputs in blocks of four rows of W so that no thread's block straddles another's.
  const std::size_t blocks = ((std::size_t)N + 3) / 4;
  parallelRows(blocks, (std::size_t)K * M * 4, [&](std::size_t b0, std::size_t b1) {
    kernel(M, (int)(b0 * 4), (int)std::min<std::size_t>(b1 * 4, (std::size_t)N), K, A, lda, B, ldb, alpha, beta, C, ldc);
  });
  return true;
}

}  // namespace rnnkit::cpu
