// Element-wise kernels of the non-recurrent stages, as native/cpu/layer_kernels.cc: embedding lookups, strided
// copies for merging directions, dropout masks and the dense layers' activations.
#include "../core/model_spec.h"
#include "cuda_backend.h"
#include "kernel_util.cuh"

namespace rnnkit::cuda {

namespace {

__global__ void gatherRowsKernel(const float* W, int dim, const int32_t* idx, int n, float* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  RNNKIT_ROWS_2D(i, n) out[(std::size_t)i * dim + c] = W[(std::size_t)idx[i] * dim + c];
}

// A token repeated in the batch adds into the same row: atomicAdd.
__global__ void scatterAddRowsKernel(const float* dOut, int n, int dim, const int32_t* idx, float* dW) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  RNNKIT_ROWS_2D(i, n) {
    const float* d = dOut + (std::size_t)i * dim;
    float* w = dW + (std::size_t)idx[i] * dim;
    atomicAdd(w + c, d[c]);
  }
}

__global__ void add2dKernel(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  RNNKIT_ROWS_2D(r, rows) {
    const float* s = src + (std::size_t)r * lds;
    float* d = dst + (std::size_t)r * ldd;
    d[c] += alpha * s[c];
  }
}

__global__ void multiplyKernel(float* x, const float* m, std::size_t n) {
  RNNKIT_GRID_STRIDE(i, n) x[i] *= m[i];
}

// Sigmoid, tanh, relu: element-wise over the contiguous [rows, cols].
__global__ void activateKernel(Activation a, float* x, std::size_t n) {
  RNNKIT_GRID_STRIDE(i, n) {
    float v = x[i];
    switch (a) {
      case Activation::Sigmoid: v = 1.f / (1.f + expf(-v)); break;
      case Activation::Tanh: v = tanhf(v); break;
      case Activation::Relu: v = v > 0.f ? v : 0.f; break;
      default: break;
    }
    x[i] = v;
  }
}

// Softmax along each row: one block per row.
__global__ void softmaxRowsKernel(float* x, int rows, int cols) {
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    float* v = x + (std::size_t)r * cols;
    float mx = v[0];
    for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = v[c] > mx ? v[c] : mx;
    mx = blockReduce(mx, MaxOp(), mx);
    double sum = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
      v[c] = expf(v[c] - mx);
      sum += v[c];
    }
    sum = blockReduce(sum, SumOp(), 0.0);
    const float inv = (float)(1.0 / sum);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) v[c] *= inv;
  }
}

__global__ void activationBackwardKernel(Activation a, const float* y, const float* dy, float* dx, std::size_t n) {
  RNNKIT_GRID_STRIDE(i, n) {
    const float yr = y[i], g = dy[i];
    switch (a) {
      case Activation::Sigmoid: dx[i] = g * yr * (1.f - yr); break;
      case Activation::Tanh: dx[i] = g * (1.f - yr * yr); break;
      case Activation::Relu: dx[i] = yr > 0.f ? g : 0.f; break;
      default: dx[i] = g; break;
    }
  }
}

// Softmax: the Jacobian-vector product per row, one block per row.
__global__ void softmaxBackwardKernel(const float* y, const float* dy, float* dx, int rows, int cols) {
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* yr = y + (std::size_t)r * cols;
    const float* g = dy + (std::size_t)r * cols;
    float* d = dx + (std::size_t)r * cols;
    double dot = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) dot += (double)g[c] * yr[c];
    dot = blockReduce(dot, SumOp(), 0.0);  // every thread has read its g[c] before any writes d (d may be g)
    for (int c = threadIdx.x; c < cols; c += blockDim.x) d[c] = yr[c] * (g[c] - (float)dot);
  }
}

}  // namespace

void CudaBackend::gatherRows(const float* W, int dim, const int32_t* idx, int n, float* out) {
  if (n <= 0 || dim <= 0) return;
  useDevice();
  gatherRowsKernel<<<grid2d(n, dim), kThreads, 0, stream_>>>(W, dim, idx, n, out);
  checkLaunch("gatherRows");
}

void CudaBackend::scatterAddRows(const float* dOut, int n, int dim, const int32_t* idx, float* dW) {
  if (n <= 0 || dim <= 0) return;
  useDevice();
  scatterAddRowsKernel<<<grid2d(n, dim), kThreads, 0, stream_>>>(dOut, n, dim, idx, dW);
  checkLaunch("scatterAddRows");
}

void CudaBackend::copy2d(int rows, int cols, const float* src, int lds, float* dst, int ldd) {
  if (rows <= 0 || cols <= 0) return;
  useDevice();
  check(cudaMemcpy2DAsync(dst, (std::size_t)ldd * sizeof(float), src, (std::size_t)lds * sizeof(float),
                          (std::size_t)cols * sizeof(float), (std::size_t)rows, cudaMemcpyDeviceToDevice, stream_),
        "copy2d (cudaMemcpy2DAsync)");
}

void CudaBackend::add2d(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) {
  if (rows <= 0 || cols <= 0) return;
  useDevice();
  add2dKernel<<<grid2d(rows, cols), kThreads, 0, stream_>>>(rows, cols, alpha, src, lds, dst, ldd);
  checkLaunch("add2d");
}

void CudaBackend::multiply(float* x, const float* m, std::size_t n) {
  if (!n) return;
  useDevice();
  multiplyKernel<<<blocksFor(n), kThreads, 0, stream_>>>(x, m, n);
  checkLaunch("multiply");
}

void CudaBackend::activate(int activation, float* x, int rows, int cols) {
  const auto a = static_cast<Activation>(activation);
  if (a == Activation::Linear || rows <= 0 || cols <= 0) return;
  useDevice();
  if (a == Activation::Softmax) {
    softmaxRowsKernel<<<rowBlocks(rows), kThreads, 0, stream_>>>(x, rows, cols);
  } else {
    const std::size_t n = (std::size_t)rows * cols;
    activateKernel<<<blocksFor(n), kThreads, 0, stream_>>>(a, x, n);
  }
  checkLaunch("activate");
}

void CudaBackend::activationBackward(int activation, const float* y, const float* dy, float* dx, int rows, int cols) {
  const auto a = static_cast<Activation>(activation);
  if (rows <= 0 || cols <= 0) return;
  useDevice();
  const std::size_t n = (std::size_t)rows * cols;
  if (a == Activation::Linear) {
    if (dx != dy) check(cudaMemcpyAsync(dx, dy, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_),
                        "activationBackward (cudaMemcpyAsync)");
    return;
  }
  if (a == Activation::Softmax)
    softmaxBackwardKernel<<<rowBlocks(rows), kThreads, 0, stream_>>>(y, dy, dx, rows, cols);
  else
    activationBackwardKernel<<<blocksFor(n), kThreads, 0, stream_>>>(a, y, dy, dx, n);
  checkLaunch("activationBackward");
}

}  // namespace rnnkit::cuda
