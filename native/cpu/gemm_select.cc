// Which GEMM the CPU backend runs for a product: the one rule, shared by the backend and the benchmark harness's
// roofline (which must time the same choice the networks make). By default the built-in GEMM where its SIMD kernels
// run, else a system BLAS when one is installed (SystemBlas loads one only when this rule or RNNKIT_BLAS asks).
#include "gemm.h"
#include "thread_pool.h"

namespace rnnkit::cpu {

// Measured side by side (each GEMM in its own process, alternating rounds) on an AVX-512 machine with Debian's
// OpenBLAS 0.3.21: the built-in GEMM was faster on every training and inference workload of the benchmark harness.
// Where it has only its generic (scalar) kernel, an optimized system BLAS keeps the lead, as before.
bool builtinGemmIsDefault() {
  const std::string kernel = builtinKernelName();
  return kernel == "avx512" || kernel == "avx2";
}

std::string gemmInUseName() {
  const SystemBlas& blas = SystemBlas::instance();
  if (blas.available()) return blas.name();
  return std::string("builtin-") + builtinKernelName();
}

void gemmInUse(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
               int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  const SystemBlas& blas = SystemBlas::instance();
  // A product with a few rows of A against weights (a batch-1 stream step) is bound by reading the weights once:
  // the built-in few-row kernels read them in place, where a BLAS packs them first (and OpenBLAS uses one thread).
  const bool fewRows = M <= kFewRows && !transA;
  if (blas.available() && !fewRows) {
    if (K <= 0) {
      // Some BLAS builds reject K == 0; the meaning is C = beta * C.
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) C[(std::size_t)i * ldc + j] = beta == 0.f ? 0.f : beta * C[(std::size_t)i * ldc + j];
      return;
    }
    blas.sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    builtinSgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ThreadPool::instance());
  }
}

}  // namespace rnnkit::cpu
