// The kernels that cpu_backend.cc holds on the CPU: fill/axpy/scale, bias broadcast and column sums, the one-hot
// input projection and its gradient, the losses and the squared norm. Reductions that return a double add their
// partial sums in a fixed order (no floating-point atomics), so they are deterministic.
#include <cmath>

#include "cuda_backend.h"
#include "kernel_util.cuh"

namespace rnnkit::cuda {

namespace {

__global__ void fillKernel(float* p, std::size_t n, float value) {
  RNNKIT_GRID_STRIDE(i, n) p[i] = value;
}

__global__ void axpyKernel(std::size_t n, float alpha, const float* x, float* y) {
  RNNKIT_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void scaleKernel(float* p, std::size_t n, float s) {
  RNNKIT_GRID_STRIDE(i, n) p[i] *= s;
}

__global__ void scaleMatrixKernel(float* C, int rows, int cols, int ldc, float beta) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  RNNKIT_ROWS_2D(i, rows) {
    float* cr = C + (std::size_t)i * ldc;
    cr[j] = beta == 0.f ? 0.f : beta * cr[j];
  }
}

__global__ void broadcastRowsKernel(float* C, int rows, int cols, int ldc, const float* bias) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  RNNKIT_ROWS_2D(r, rows) C[(std::size_t)r * ldc + c] = bias[c];
}

// Block (32, kSumRows): a strip of 32 columns per block; thread row y adds rows y, y + kSumRows, ...; the thread rows
// are then added in a fixed order, so each output is written by one thread and the sum is deterministic.
constexpr int kSumRows = 16;
__global__ void columnSumAddKernel(const float* A, int rows, int cols, int lda, float* out) {
  __shared__ float part[kSumRows][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float sum = 0.f;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += kSumRows) sum += A[(std::size_t)r * lda + c];
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.f;
    for (int k = 0; k < kSumRows; ++k) total += part[k][threadIdx.x];
    out[c] += total;
  }
}

__global__ void gatherColumnsKernel(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n,
                                    float* out, int ldo) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= gates) return;
  RNNKIT_ROWS_2D(i, n) {
    const float* col = W + idx[i];
    float* o = out + (std::size_t)i * ldo;
    o[g] = col[(std::size_t)g * vocab] + bias[g];
  }
}

// Repeated tokens add into the same column: atomicAdd.
__global__ void scatterAddColumnsKernel(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                                        int vocab) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= gates) return;
  RNNKIT_ROWS_2D(i, n) {
    const float* d = dG + (std::size_t)i * ldg;
    float* col = dW + idx[i];
    atomicAdd(col + (std::size_t)g * vocab, d[g]);
  }
}

// Sum of values[0..n) by one block, into r->value.
__global__ void sumDoublesKernel(const double* values, std::size_t n, CudaBackend::ReduceResult* r) {
  double sum = 0;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) sum += values[i];
  sum = blockReduce(sum, SumOp(), 0.0);
  if (threadIdx.x == 0) r->value = sum;
}

__global__ void countTargetsKernel(const int32_t* targets, int n, CudaBackend::ReduceResult* r) {
  int count = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) count += targets[i] >= 0 ? 1 : 0;
  count = blockReduce(count, SumOp(), 0);
  if (threadIdx.x == 0) r->count = count;
}

// One block per row: the row's loss goes to rowLoss[i], its gradient to dLogits (scaled by 1 / counted rows).
__global__ void softmaxCrossEntropyKernel(const float* logits, int n, int classes, const int32_t* targets,
                                          float* dLogits, const CudaBackend::ReduceResult* r, double* rowLoss) {
  const int count = r->count;
  const double inv = count > 0 ? 1.0 / count : 0.0;
  for (int i = blockIdx.x; i < n; i += gridDim.x) {
    const float* z = logits + (std::size_t)i * classes;
    float* d = dLogits + (std::size_t)i * classes;
    const int target = targets[i];
    if (target < 0) {
      for (int c = threadIdx.x; c < classes; c += blockDim.x) d[c] = 0.f;
      if (threadIdx.x == 0) rowLoss[i] = 0.0;
      continue;
    }
    float zmax = z[0];
    for (int c = threadIdx.x; c < classes; c += blockDim.x) zmax = z[c] > zmax ? z[c] : zmax;
    zmax = blockReduce(zmax, MaxOp(), zmax);
    double sum = 0;
    for (int c = threadIdx.x; c < classes; c += blockDim.x) sum += exp((double)z[c] - zmax);
    sum = blockReduce(sum, SumOp(), 0.0);
    const double logSum = log(sum) + zmax;
    if (threadIdx.x == 0) rowLoss[i] = logSum - z[target];
    for (int c = threadIdx.x; c < classes; c += blockDim.x) d[c] = (float)(exp((double)z[c] - logSum) * inv);
    __syncthreads();
    if (threadIdx.x == 0) d[target] -= (float)inv;
  }
}

__global__ void meanSquaredErrorKernel(const float* out, const float* target, std::size_t n, int features,
                                       const int32_t* rowCounted, double scale, float* dOut, double* partials) {
  double total = 0;
  RNNKIT_GRID_STRIDE(i, n) {
    if (rowCounted && !rowCounted[i / features]) {
      dOut[i] = 0.f;
      continue;
    }
    double diff = (double)out[i] - target[i];
    total += diff * diff;
    dOut[i] = (float)(scale * diff);
  }
  total = blockReduce(total, SumOp(), 0.0);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sumSquaresKernel(const float* p, std::size_t n, double* partials) {
  double total = 0;
  RNNKIT_GRID_STRIDE(i, n) total += (double)p[i] * p[i];
  total = blockReduce(total, SumOp(), 0.0);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

unsigned reduceBlocks(std::size_t n) {
  const unsigned b = blocksFor(n);
  return b < (unsigned)kReduceBlocks ? b : (unsigned)kReduceBlocks;
}

}  // namespace

void CudaBackend::fill(float* p, std::size_t n, float value) {
  if (!n) return;
  useDevice();
  fillKernel<<<blocksFor(n), kThreads, 0, stream_>>>(p, n, value);
  checkLaunch("fill");
}

void CudaBackend::axpy(std::size_t n, float alpha, const float* x, float* y) {
  if (!n) return;
  useDevice();
  axpyKernel<<<blocksFor(n), kThreads, 0, stream_>>>(n, alpha, x, y);
  checkLaunch("axpy");
}

void CudaBackend::scale(float* p, std::size_t n, float s) {
  if (!n) return;
  useDevice();
  scaleKernel<<<blocksFor(n), kThreads, 0, stream_>>>(p, n, s);
  checkLaunch("scale");
}

void CudaBackend::scaleMatrix(float* C, int rows, int cols, int ldc, float beta) {
  if (rows <= 0 || cols <= 0) return;
  scaleMatrixKernel<<<grid2d(rows, cols), kThreads, 0, stream_>>>(C, rows, cols, ldc, beta);
  checkLaunch("gemm (K = 0)");
}

void CudaBackend::broadcastRows(float* C, int rows, int cols, int ldc, const float* bias) {
  if (rows <= 0 || cols <= 0) return;
  useDevice();
  broadcastRowsKernel<<<grid2d(rows, cols), kThreads, 0, stream_>>>(C, rows, cols, ldc, bias);
  checkLaunch("broadcastRows");
}

void CudaBackend::columnSumAdd(const float* A, int rows, int cols, int lda, float* out) {
  if (rows <= 0 || cols <= 0) return;
  useDevice();
  columnSumAddKernel<<<dim3((unsigned)((cols + 31) / 32)), dim3(32, kSumRows), 0, stream_>>>(A, rows, cols, lda, out);
  checkLaunch("columnSumAdd");
}

void CudaBackend::gatherColumns(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n,
                                float* out, int ldo) {
  if (n <= 0 || gates <= 0) return;
  useDevice();
  gatherColumnsKernel<<<grid2d(n, gates), kThreads, 0, stream_>>>(W, gates, vocab, bias, idx, n, out, ldo);
  checkLaunch("gatherColumns");
}

void CudaBackend::scatterAddColumns(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                                    int vocab) {
  if (n <= 0 || gates <= 0) return;
  useDevice();
  scatterAddColumnsKernel<<<grid2d(n, gates), kThreads, 0, stream_>>>(dG, n, gates, ldg, idx, dW, vocab);
  checkLaunch("scatterAddColumns");
}

double CudaBackend::softmaxCrossEntropy(const float* logits, int n, int classes, const int32_t* targets,
                                        float* dLogits, int* counted) {
  if (n <= 0) {
    *counted = 0;
    return 0.0;
  }
  useDevice();
  ReduceResult* r = scratch((std::size_t)n);
  double* rowLoss = scratchPartials();
  countTargetsKernel<<<1, 1024, 0, stream_>>>(targets, n, r);
  checkLaunch("softmaxCrossEntropy (count)");
  softmaxCrossEntropyKernel<<<rowBlocks(n), kThreads, 0, stream_>>>(logits, n, classes, targets, dLogits, r, rowLoss);
  checkLaunch("softmaxCrossEntropy");
  sumDoublesKernel<<<1, 1024, 0, stream_>>>(rowLoss, (std::size_t)n, r);
  checkLaunch("softmaxCrossEntropy (sum)");
  const ReduceResult result = readResult();
  *counted = result.count;
  return result.value;
}

double CudaBackend::meanSquaredError(const float* out, const float* target, std::size_t rows, int features,
                                     const int32_t* rowCounted, std::size_t countedRows, float* dOut) {
  const std::size_t n = rows * (std::size_t)features;
  if (!n) return 0.0;
  useDevice();
  const unsigned blocks = reduceBlocks(n);
  ReduceResult* r = scratch(blocks);
  double* partials = scratchPartials();
  const std::size_t counted = countedRows * (std::size_t)features;
  const double scale = counted ? 2.0 / (double)counted : 0.0;
  meanSquaredErrorKernel<<<blocks, kThreads, 0, stream_>>>(out, target, n, features, rowCounted, scale, dOut, partials);
  checkLaunch("meanSquaredError");
  sumDoublesKernel<<<1, 1024, 0, stream_>>>(partials, blocks, r);
  checkLaunch("meanSquaredError (sum)");
  return counted ? readResult().value / (double)counted : 0.0;
}

double CudaBackend::sumSquares(const float* p, std::size_t n) {
  if (!n) return 0.0;
  useDevice();
  const unsigned blocks = reduceBlocks(n);
  ReduceResult* r = scratch(blocks);
  double* partials = scratchPartials();
  sumSquaresKernel<<<blocks, kThreads, 0, stream_>>>(p, n, partials);
  checkLaunch("sumSquares");
  sumDoublesKernel<<<1, 1024, 0, stream_>>>(partials, blocks, r);
  checkLaunch("sumSquares (sum)");
  return readResult().value;
}

}  // namespace rnnkit::cuda
