// Single-precision GEMM for the CPU backend: a system BLAS found at run time when present, else the built-in
// blocked kernel. Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// op(A) is A[M,K] (lda >= K) or, with transA, A stored as [K,M] (lda >= M); likewise for B.
#pragma once

#include <cstddef>
#include <string>

#include "../core/backend.h"

namespace rnnkit::cpu {

class ThreadPool;

// The built-in blocked kernel (packing + SIMD micro-kernel chosen at run time by CPU detection).
void builtinSgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                  const float* B, int ldb, float beta, float* C, int ldc, ThreadPool& pool);

// Weights that many products reuse (the recurrent weights of a time loop), packed once into the kernel's panel
// format. op(B) is N x K: B is [K, N] (ldb) or, with transB, [N, K]. builtinPackedBFloats is 0 when the kernel
// would read op(B) in place for products of `rows` rows anyway, so that packing would buy nothing.
std::size_t builtinPackedBFloats(bool transB, int N, int K, int rows);
void builtinPackB(bool transB, int N, int K, const float* B, int ldb, float* packed);
// C = alpha * op(A) * op(B) + beta * C with op(B) packed by builtinPackB (same N and K).
void builtinSgemmPackedB(int M, int N, int K, float alpha, const float* A, int lda, const float* packedB, float beta,
                         float* C, int ldc, ThreadPool& pool);

// The same panels with op(B)'s columns taken from rows of B in another order: column n is B[rowOf[n], 0..K) (a
// transposed B, row stride ldb). Lets a caller group the columns one thread will compute (a recurrent layer's gate
// rows of the same hidden units) into one contiguous range. Size: builtinPackedBFloats(true, N, K, rows).
void builtinPackBRows(int N, int K, const float* B, int ldb, const int* rowOf, float* packed);
// Columns [n0, n1) of C = alpha * A * op(B) + beta * C, op(B) packed by builtinPackB or builtinPackBRows, computed on
// the calling thread alone (for a caller that splits the work across the pool itself). n0 must be a multiple of
// builtinPanelWidth().
void builtinSgemmPackedBColumns(int M, int N, int K, float alpha, const float* A, int lda, const float* packedB,
                                float beta, float* C, int ldc, int n0, int n1);
// Columns per packed panel of op(B) (the micro-kernel's NR): 32 for AVX-512, 16 otherwise.
int builtinPanelWidth();

// Products with at most kFewRows rows of A against B^T (B [N, K] read in place), all split across the pool in one
// parallel region: each thread takes an equal share of the weights, in whichever products they lie. A batch-1
// time step's input and recurrent products thus cost one hand-off to the workers instead of one each.
constexpr int kFewRows = 4;
void builtinFewRowProducts(const RowProduct* products, int count, ThreadPool& pool);

// The default GEMM when RNNKIT_BLAS is unset (native/cpu/gemm_select.cc): the built-in kernel where its SIMD
// micro-kernels run (AVX-512, AVX2+FMA); elsewhere a system BLAS when one is installed.
bool builtinGemmIsDefault();

// The GEMM the CPU backend runs (native/cpu/gemm_select.cc): the system BLAS when one is loaded (RNNKIT_BLAS, or
// the default where the built-in kernel is not SIMD), except for products of at most kFewRows rows (read in place
// by the built-in few-row kernels); else the built-in kernel.
void gemmInUse(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
               int ldb, float beta, float* C, int ldc);
// "openblas", ... for a system BLAS, else "builtin-<kernel>".
std::string gemmInUseName();

// Name of the SIMD micro-kernel the built-in GEMM uses on this CPU ("avx512", "avx2", "neon", "generic").
const char* builtinKernelName();

// A cblas library loaded with dlopen. RNNKIT_BLAS selects it: unset or "auto" -> none where builtinGemmIsDefault(),
// else try the usual libraries; "system" -> try the usual libraries (OpenBLAS, BLIS, MKL, reference cblas;
// Accelerate on macOS); "openblas", "blis", "mkl" -> that implementation's usual file names; "none" or "builtin" ->
// never load one; any other value -> the path or soname of the library to load (why none was loaded: detail()).
class SystemBlas {
 public:
  static const SystemBlas& instance();
  bool available() const { return sgemm_ != nullptr; }
  // "openblas", "blis", "mkl", "accelerate", "cblas" or "" when none was loaded.
  const std::string& name() const { return name_; }
  // The file that was loaded, or why none was.
  const std::string& detail() const { return detail_; }
  void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
             int ldb, float beta, float* C, int ldc) const;
  // Tell the library how many threads to use (when it exposes a way to).
  void setThreads(int n) const;

 private:
  SystemBlas();
  using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                           int);
  using SetThreadsFn = void (*)(int);
  SgemmFn sgemm_ = nullptr;
  SetThreadsFn setThreads_ = nullptr;
  // BLIS's bli_thread_set_num_threads takes a 64-bit dim_t; setThreads_ then holds it and is cast back to this.
  using SetThreads64Fn = void (*)(long long);
  bool setThreadsTakes64_ = false;
  std::string name_;
  std::string detail_;
};

}  // namespace rnnkit::cpu
