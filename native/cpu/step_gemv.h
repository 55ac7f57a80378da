// The float32 product of a batch-1 step (a stream step): y = [W1 | W2] [x1; x2], the input and recurrent weights of a
// layer in one pass (one matrix-vector product over [x; h]). At one row a step does two flops per weight it reads,
// so it is bound by how fast the weights stream in: they are packed once (after any change) into blocks of 16
// outputs, k-major inside a block, so the product reads one contiguous run per block, broadcasts one input per k and
// needs no horizontal sums. Two threads split the blocks by halves that stay with the same thread from step to step,
// so each core's cache keeps its half of the weights.
// Kernels chosen at run time under RNNKIT_SIMD (AVX-512, AVX2+FMA, the scalar loop; RNNKIT_STEP_KERNEL=scalar|avx2
// lowers this kernel alone): every one sums each output in the same order with fused multiply-adds, so all give the
// same bits.
#pragma once

#include <cstddef>
#include <functional>

namespace rnnkit::cpu {

class ThreadPool;

// Floats of the packed form of [W1 | W2]: W1 [N, K1] and W2 [N, K2] row-major (one row per output). K1 may be 0.
std::size_t stepGemvFloats(int N, int K1, int K2);
void stepGemvPack(const float* W1, int K1, const float* W2, int K2, int N, float* packed);
// y[N] = [W1 | W2] [x1; x2] over the packed form (y is overwritten).
void stepGemv(const float* packed, int N, const float* x1, int K1, const float* x2, int K2, float* y,
              ThreadPool& pool);
// "avx512", "avx2" or "scalar".
const char* stepGemvKernelName();

// fn(s) for s in [0, shares) over the pool, one share per claim, the calling thread taking share 0 whenever it
// claims first and the pool's threads the last ones: with two threads, a step's two halves of the weights stay with
// the same cores from step to step, so each core's own cache keeps its half (a batch-1 step reads every weight).
void parallelShares(ThreadPool& pool, int shares, const std::function<void(int)>& fn);
// The same for a lambda, held by reference (no allocation for its captures).
template <typename Fn>
void parallelShares(ThreadPool& pool, int shares, const Fn& fn) {
  parallelShares(pool, shares, std::function<void(int)>(std::cref(fn)));
}

}  // namespace rnnkit::cpu
