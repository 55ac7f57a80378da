// The host side of the CUDA backend: devices, the stream, memory, transfers and cuBLAS. The kernels are in the .cu
// files; this file is plain C++ against the CUDA runtime API.
#include "cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <memory>

#include "../core/error.h"
#include "cuda_device.h"

namespace rnnkit::cuda {

namespace {
// The device this thread last made current through a backend (cudaSetDevice is per thread).
thread_local int tlsCurrentDevice = -1;
}  // namespace

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call does not report it again
  fail(ErrorCode::Device, std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status) + " (" +
                              cudaGetErrorName(status) + ")");
}

// ---- memory ---------------------------------------------------------------------------------------------------

std::size_t CachingAllocator::bucketSize(std::size_t bytes) {
  constexpr std::size_t kMin = 512;
  if (bytes <= kMin) return kMin;
  // 2^k < bytes <= 2^(k+1): round up to a multiple of 2^(k-2), i.e. to 1.25, 1.5, 1.75 or 2 times 2^k.
  int k = 0;
  for (std::size_t v = bytes - 1; v > 1; v >>= 1) ++k;
  const std::size_t step = (std::size_t)1 << (k - 2);
  return (bytes + step - 1) / step * step;
}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  emptyCacheLocked();
  // Blocks still handed out belong to buffers that outlived the backend, which the addon prevents; free them anyway.
  for (auto& [p, size] : live_) cudaFree(p);
  live_.clear();
  inUse_ = 0;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = bucketSize(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  // The smallest cached block that fits, if it is not much larger (an eighth) than the bucket asked for.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= size + size / 8) {
    void* p = it->second;
    const std::size_t got = it->first;
    free_.erase(it);
    cached_ -= got;
    live_.emplace(p, got);
    inUse_ += got;
    return p;
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status != cudaSuccess) {
    cudaGetLastError();
    // Give the cache back to the driver (cudaFree waits for the device) and try once more.
    emptyCacheLocked();
    status = cudaMalloc(&p, size);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail(ErrorCode::OutOfMemory, "CUDA device " + std::to_string(device_) + ": could not allocate " +
                                     std::to_string(bytes) + " bytes (" + cudaGetErrorString(status) + "; " +
                                     std::to_string(inUse_) + " bytes in use by this network)");
  }
  live_.emplace(p, size);
  inUse_ += size;
  return p;
}

void CachingAllocator::release(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;
  const std::size_t size = it->second;
  live_.erase(it);
  inUse_ -= size;
  free_.emplace(size, p);
  cached_ += size;
}

void CachingAllocator::emptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  emptyCacheLocked();
}

void CachingAllocator::emptyCacheLocked() {
  for (auto& [size, p] : free_) cudaFree(p);
  free_.clear();
  cached_ = 0;
}

std::size_t CachingAllocator::bytesInUse() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inUse_;
}

std::size_t CachingAllocator::bytesCached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

// ---- the backend ----------------------------------------------------------------------------------------------

CudaBackend::CudaBackend(int device) : device_(device), memory_(device) {
  const Cublas& cublas = Cublas::instance();
  if (!cublas.available()) fail(ErrorCode::Device, "cuBLAS could not be loaded: " + cublas.detail());
  useDevice();
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  cublasStatus_t status = cublas.create(&cublas_);
  if (status != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream_);
    fail(ErrorCode::Device, "cublasCreate failed: " + cublas.statusText(status) + " (cuBLAS: " + cublas.detail() + ")");
  }
  cublas.setStream(cublas_, stream_);
  // Plain FP32 GEMMs unless RNNKIT_CUDA_TF32=1 allows TF32 tensor cores (faster on Ampere and later, but about
  // three decimal digits, outside the conformance tolerances).
  const char* tf32 = std::getenv("RNNKIT_CUDA_TF32");
  const bool useTf32 = tf32 && std::strcmp(tf32, "1") == 0;
  if (cublas.setMathMode) cublas.setMathMode(cublas_, useTf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  gemmName_ = useTf32 && cublas.setMathMode ? "cublas-tf32" : "cublas";
  void* pinned = nullptr;
  cudaError_t hostStatus = cudaMallocHost(&pinned, sizeof(ReduceResult));
  if (hostStatus != cudaSuccess) {
    cublas.destroy(cublas_);
    cudaStreamDestroy(stream_);
    check(hostStatus, "cudaMallocHost");
  }
  hostResult_ = static_cast<ReduceResult*>(pinned);
}

CudaBackend::~CudaBackend() {
  // Errors are ignored here: at process exit the runtime may already be shutting down.
  if (cudaSetDevice(device_) == cudaSuccess) tlsCurrentDevice = device_;
  else tlsCurrentDevice = -1;
  cudaStreamSynchronize(stream_);
  if (scratch_) memory_.release(scratch_);
  memory_.emptyCache();
  Cublas::instance().destroy(cublas_);
  cudaStreamDestroy(stream_);
  cudaFreeHost(hostResult_);
  cudaGetLastError();
}

void CudaBackend::useDevice() {
  if (tlsCurrentDevice == device_) return;
  tlsCurrentDevice = -1;
  check(cudaSetDevice(device_), "cudaSetDevice");
  tlsCurrentDevice = device_;
}

void CudaBackend::checkLaunch(const char* kernel) { check(cudaGetLastError(), kernel); }

void* CudaBackend::alloc(std::size_t bytes) {
  useDevice();
  return memory_.allocate(bytes);
}

void CudaBackend::free(void* p) { memory_.release(p); }

void CudaBackend::upload(void* dst, const void* hostSrc, std::size_t bytes) {
  if (!bytes) return;
  useDevice();
  // From pageable memory the call returns once the data is staged, so the caller may reuse hostSrc at once.
  check(cudaMemcpyAsync(dst, hostSrc, bytes, cudaMemcpyHostToDevice, stream_), "upload (cudaMemcpyAsync)");
}

void CudaBackend::download(void* hostDst, const void* src, std::size_t bytes) {
  if (!bytes) return;
  useDevice();
  check(cudaMemcpyAsync(hostDst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download (cudaMemcpyAsync)");
  check(cudaStreamSynchronize(stream_), "download (cudaStreamSynchronize)");
}

void CudaBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (!bytes || dst == src) return;
  useDevice();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy (cudaMemcpyAsync)");
}

void CudaBackend::synchronize() {
  useDevice();
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

CudaBackend::ReduceResult* CudaBackend::scratch(std::size_t doubles) {
  const std::size_t bytes = kResultBytes + doubles * sizeof(double);
  if (bytes > scratchBytes_) {
    // The old block goes back to the cache; work already queued on this stream that reads it comes first.
    if (scratch_) memory_.release(scratch_);
    scratch_ = nullptr;
    scratchBytes_ = 0;
    scratch_ = memory_.allocate(bytes);
    scratchBytes_ = bytes;
  }
  return static_cast<ReduceResult*>(scratch_);
}

CudaBackend::ReduceResult CudaBackend::readResult() {
  check(cudaMemcpyAsync(hostResult_, scratch_, sizeof(ReduceResult), cudaMemcpyDeviceToHost, stream_),
        "reduction result (cudaMemcpyAsync)");
  check(cudaStreamSynchronize(stream_), "reduction result (cudaStreamSynchronize)");
  return *hostResult_;
}

void CudaBackend::gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  useDevice();
  if (K <= 0) {
    // cuBLAS may reject K == 0; its meaning is C = beta * C (beta == 0 clears, even over NaN).
    scaleMatrix(C, M, N, ldc, beta);
    return;
  }
  // cuBLAS is column-major: a row-major X with leading dimension ld is X^T to it. So compute
  // C^T[N,M] = op(B)^T[N,K] op(A)^T[K,M], which is the row-major C = op(A) op(B), by swapping the operands.
  const Cublas& cublas = Cublas::instance();
  const cublasStatus_t status = cublas.sgemm(cublas_, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                             transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                             &beta, C, ldc);
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(ErrorCode::Device, "cublasSgemm failed: " + cublas.statusText(status) + " (M=" + std::to_string(M) +
                                " N=" + std::to_string(N) + " K=" + std::to_string(K) + ")");
}

// ---- discovery --------------------------------------------------------------------------------------------------

Availability probe() {
  Availability a;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    int driver = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    cudaGetLastError();
    auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    if (driver == 0)
      a.reason = "no CUDA device found (no NVIDIA driver: libcuda.so.1 could not be loaded)";
    else if (status == cudaErrorInsufficientDriver)
      a.reason = "no CUDA device found: the NVIDIA driver supports CUDA " + version(driver) +
                 ", this build of rnnkit needs CUDA " + version(CUDART_VERSION);
    else if (status == cudaErrorNoDevice)
      a.reason = "no CUDA device found";
    else
      a.reason = std::string("no CUDA device found (") + cudaGetErrorString(status) + ")";
    return a;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.memory = prop.totalGlobalMem;
    d.major = prop.major;
    d.minor = prop.minor;
    a.devices.push_back(d);
  }
  const Cublas& cublas = Cublas::instance();
  a.cublas = cublas.available();
  if (a.devices.empty())
    a.reason = "no CUDA device found";
  else if (!a.cublas)
    a.reason = "cuBLAS could not be loaded: " + cublas.detail();
  return a;
}

std::shared_ptr<Backend> createBackend(int index) {
  const Availability a = probe();
  if (a.devices.empty()) fail(ErrorCode::Device, a.reason);
  bool found = false;
  for (const DeviceInfo& d : a.devices) found = found || d.index == index;
  if (!found)
    fail(ErrorCode::Device, "there is no CUDA device " + std::to_string(index) + " (" +
                                std::to_string(a.devices.size()) + " found)");
  if (!a.cublas) fail(ErrorCode::Device, a.reason);
  return std::make_shared<CudaBackend>(index);
}

}  // namespace rnnkit::cuda
