// Helpers shared by the CUDA kernel files: launch shapes, grid-stride loops, block reductions and the gate functions.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace rnnkit::cuda {

constexpr int kThreads = 256;
// A cap on grid-stride launches: enough blocks to fill any current GPU several times over.
constexpr std::size_t kMaxBlocks = 4096;
// Blocks of the fixed-size reductions (their partial sums are then added in a fixed order: results are
// deterministic for a given n).
constexpr int kReduceBlocks = 512;

// Blocks for a grid-stride loop over n items.
inline unsigned blocksFor(std::size_t n, int threads = kThreads) {
  std::size_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return (unsigned)b;
}

// Grid y (or x) extent for one block row per matrix row, striding past the 65535 limit.
inline unsigned rowBlocks(int rows) { return rows < 1 ? 1u : (rows < 65535 ? (unsigned)rows : 65535u); }

// A [rows, cols] launch: blockIdx.x * blockDim.x + threadIdx.x is the column, rows stride by gridDim.y.
inline dim3 grid2d(int rows, int cols, int threads = kThreads) {
  return dim3((unsigned)(cols < 1 ? 1 : (cols + threads - 1) / threads), rowBlocks(rows));
}

// for (i = this thread's first item; i < n; i += all threads)
#define RNNKIT_GRID_STRIDE(i, n)                                                                          \
  for (std::size_t i = (std::size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (std::size_t)(n); \
       i += (std::size_t)gridDim.x * blockDim.x)

// for (r = this block's first row; r < rows; r += all block rows), with the column c of this thread (c < cols).
#define RNNKIT_ROWS_2D(r, rows) for (int r = (int)blockIdx.y; r < (rows); r += (int)gridDim.y)

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return b > a ? b : a; }
};

// Reduce one value per thread over the block; every thread gets the result. blockDim.x must be a multiple of 32
// (at most 1024). May be called several times in a row by the same kernel.
template <typename T, typename Op>
__device__ T blockReduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // an earlier call may still be reading partial
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (int)(blockDim.x >> 5);
  v = lane < warps ? partial[lane] : identity;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace rnnkit::cuda
