// cuBLAS loaded at run time with dlopen, as native/cpu/system_blas.cc does for cblas: the build needs no cuBLAS
// headers or library (only the CUDA runtime), and one binary runs on machines with any cuBLAS major version the
// driver supports, or reports clearly that it has none.
//
// The few declarations below are the stable C ABI of cuBLAS (cublas_api.h): cublasStatus_t and the other enums are
// int-sized C enums with fixed values, handles are opaque pointers, the _v2 entry points have kept their signatures
// since CUDA 4.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace rnnkit::cuda {

// ---- the part of cublas_api.h that rnnkit uses ------------------------------------------------------------------
struct cublasContext;
using cublasHandle_t = cublasContext*;
using cublasStatus_t = int;                 // CUBLAS_STATUS_SUCCESS = 0
constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
using cublasOperation_t = int;              // enum cublasOperation_t
constexpr cublasOperation_t CUBLAS_OP_N = 0;
constexpr cublasOperation_t CUBLAS_OP_T = 1;
using cublasMath_t = int;                   // enum cublasMath_t
constexpr cublasMath_t CUBLAS_DEFAULT_MATH = 0;          // plain FP32 for SGEMM
constexpr cublasMath_t CUBLAS_TF32_TENSOR_OP_MATH = 3;   // TF32 tensor cores (faster, ~1e-3 relative error)

using cublasCreateFn = cublasStatus_t (*)(cublasHandle_t*);
using cublasDestroyFn = cublasStatus_t (*)(cublasHandle_t);
using cublasSetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using cublasSgemmFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m,
                                         int n, int k, const float* alpha, const float* A, int lda, const float* B,
                                         int ldb, const float* beta, float* C, int ldc);
using cublasSetMathModeFn = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);
using cublasGetVersionFn = cublasStatus_t (*)(cublasHandle_t, int*);
using cublasGetStatusStringFn = const char* (*)(cublasStatus_t);

// The loaded library (process-wide, loaded once, never unloaded).
class Cublas {
 public:
  static const Cublas& instance();
  bool available() const { return sgemm != nullptr; }
  // The file that was loaded, or why none could be (for messages: "cuBLAS could not be loaded: <detail>").
  const std::string& detail() const { return detail_; }
  // "CUBLAS_STATUS_..." text for a status, or its number.
  std::string statusText(cublasStatus_t status) const;

  cublasCreateFn create = nullptr;
  cublasDestroyFn destroy = nullptr;
  cublasSetStreamFn setStream = nullptr;
  cublasSgemmFn sgemm = nullptr;
  cublasSetMathModeFn setMathMode = nullptr;       // optional
  cublasGetVersionFn getVersion = nullptr;         // optional
  cublasGetStatusStringFn getStatusString = nullptr;  // optional (cuBLAS >= 11.4)

 private:
  Cublas();
  std::string detail_;
};

}  // namespace rnnkit::cuda
