// The CUDA backend: device memory from a caching allocator over cudaMalloc, one stream per backend instance (one
// instance per Network), cuBLAS (loaded at run time) for the GEMMs, and fused kernels for everything else. The kernel
// files mirror the CPU backend's: backend_kernels.cu <-> cpu_backend.cc, cell_kernels.cu <-> cell_kernels.cc,
// layer_kernels.cu <-> layer_kernels.cc, optimizer_kernels.cu <-> optimizer_kernels.cc, with the same equations
// and variable names, one thread per element where the CPU has one loop iteration.
//
// Ordering: every operation is issued on the backend's stream, in program order, so a kernel always sees the
// results of the ones before it and a freed block may be handed out again at once (its next user is later on the
// same stream). The host waits only where it reads device data: download and the reductions that return a double.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/backend.h"
#include "cublas_loader.h"

namespace rnnkit::cuda {

// Throws ERR_RNNKIT_DEVICE ("CUDA error in <what>: <reason>") unless status is cudaSuccess.
void check(cudaError_t status, const char* what);

// Device memory in size buckets (four per power of two, so a block is at most 25% larger than asked for). A freed
// block goes back to its bucket and is reused; blocks go back to the driver only when an allocation would
// otherwise fail, and at destruction.
class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;
  ~CachingAllocator();

  void* allocate(std::size_t bytes);  // throws ERR_RNNKIT_OUT_OF_MEMORY
  void release(void* p);              // never throws; unknown pointers are ignored
  void emptyCache();                  // cudaFree every cached (free) block
  std::size_t bytesInUse() const;
  std::size_t bytesCached() const;

  static std::size_t bucketSize(std::size_t bytes);

 private:
  void emptyCacheLocked();
  int device_;
  mutable std::mutex mu_;  // a finalizer may free on the main thread while a worker thread runs the network
  std::unordered_map<void*, std::size_t> live_;    // block -> bucket size
  std::multimap<std::size_t, void*> free_;         // bucket size -> cached block
  std::size_t inUse_ = 0, cached_ = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string gemmName() const override { return gemmName_; }

  void* alloc(std::size_t bytes) override;
  void free(void* p) override;
  void upload(void* dst, const void* hostSrc, std::size_t bytes) override;
  void download(void* hostDst, const void* src, std::size_t bytes) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void fill(float* p, std::size_t n, float value) override;
  void axpy(std::size_t n, float alpha, const float* x, float* y) override;
  void synchronize() override;

  void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
            int ldb, float beta, float* C, int ldc) override;

  void broadcastRows(float* C, int rows, int cols, int ldc, const float* bias) override;
  void columnSumAdd(const float* A, int rows, int cols, int lda, float* out) override;
  void gatherColumns(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n, float* out,
                     int ldo) override;
  void scatterAddColumns(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                         int vocab) override;

  void gatherRows(const float* W, int dim, const int32_t* idx, int n, float* out) override;
  void scatterAddRows(const float* dOut, int n, int dim, const int32_t* idx, float* dW) override;
  void copy2d(int rows, int cols, const float* src, int lds, float* dst, int ldd) override;
  void add2d(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) override;
  void multiply(float* x, const float* m, std::size_t n) override;
  void activate(int activation, float* x, int rows, int cols) override;
  void activationBackward(int activation, const float* y, const float* dy, float* dx, int rows, int cols) override;

  void cellForward(const CellForwardStep& step) override;
  void cellBackward(const CellBackwardStep& step) override;
  void gruResetGate(const CellForwardStep& step, float* rh) override;
  void gruResetGateBackward(const CellBackwardStep& step, const float* drh) override;

  double softmaxCrossEntropy(const float* logits, int n, int classes, const int32_t* targets, float* dLogits,
                             int* counted) override;
  double meanSquaredError(const float* out, const float* target, std::size_t rows, int features,
                          const int32_t* rowCounted, std::size_t countedRows, float* dOut) override;
  double sumSquares(const float* p, std::size_t n) override;
  void scale(float* p, std::size_t n, float s) override;

  void sgdUpdate(float* p, const float* g, float* momentumBuf, std::size_t n, const SgdHyper& h,
                 long long step) override;
  void adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n, const AdamHyper& h,
                  long long step) override;
  void rmspropUpdate(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                     const RmspropHyper& h, long long step) override;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

  // What a reduction leaves in device scratch memory for the host to read back.
  struct ReduceResult {
    double value;
    int count;
    int pad;
  };

 private:
  // Make this backend's device current on the calling thread (calls arrive on the main thread and on the
  // thread pool's workers).
  void useDevice();
  // Throws ERR_RNNKIT_DEVICE if the last kernel launch failed.
  void checkLaunch(const char* kernel);
  // Device scratch: a ReduceResult followed by room for `doubles` partial sums.
  ReduceResult* scratch(std::size_t doubles);
  double* scratchPartials() { return reinterpret_cast<double*>(reinterpret_cast<char*>(scratch_) + kResultBytes); }
  // Copy the ReduceResult to the host and wait for it.
  ReduceResult readResult();
  // C = beta * C over [rows, cols] with row stride ldc (beta == 0 clears): a GEMM with K == 0.
  void scaleMatrix(float* C, int rows, int cols, int ldc, float beta);

  static constexpr std::size_t kResultBytes = 256;  // keeps the partial sums aligned

  int device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  CachingAllocator memory_;
  void* scratch_ = nullptr;
  std::size_t scratchBytes_ = 0;
  ReduceResult* hostResult_ = nullptr;  // pinned
  std::string gemmName_;
};

}  // namespace rnnkit::cuda
