// int8 products for inference (dynamic quantization, as ONNX Runtime's DynamicQuantizeLSTM and PyTorch's dynamic
// quantized LSTM): weights quantized once per output row to int8 with a float scale (max|w| / 127), activations
// quantized per row at each call the same way, int32 accumulation, then C = beta * C + acc * scale_a * scale_w.
// Kernels chosen at run time under RNNKIT_SIMD: AVX-512 VNNI, AVX2 (int16 pairs), or the scalar reference; the
// integer part is exact in all of them and the float part is shared, so every kernel gives the same bits.
#pragma once

#include <cstddef>

#include "../core/backend.h"

namespace rnnkit::cpu {

class ThreadPool;

// Bytes of the packed int8 form of W [N, K] (row-major, one row per output).
std::size_t int8WeightsBytes(int N, int K);
// Quantizes W [N, K] into dst (int8WeightsBytes(N, K) bytes).
void int8PackWeights(const float* W, int N, int K, void* dst);
// C[M, N] = beta * C + A[M, K] x W^T with W packed by int8PackWeights; beta is 0 or 1.
void int8Gemm(int M, const float* A, int lda, const void* packed, int N, int K, float beta, float* C, int ldc,
              ThreadPool& pool);
// Independent products of one step, all in one parallel pass over their weights.
void int8Products(const Int8Product* products, int count, ThreadPool& pool);

// The fused int8 recurrent step (recurrent_step.h's layout: a thread's block of hidden units has its gate columns
// side by side): bytes of W_hh [G*H, H] in that form, and the packing, for blocks sized to `threads` threads (the
// width is kept with the weights).
std::size_t int8StepWeightsBytes(int gates, int hidden);
void int8PackStepWeights(const float* whh, int gates, int hidden, void* dst, int threads);
// One step: each thread quantizes hPrev, multiplies its blocks' columns and runs their cell update, one parallel
// region; gh (step.gh's storage, blocked layout) starts from bhh where given. The same bits as gemmInt8 over the
// plain int8 form followed by the cell update.
void int8RecurrentStep(const CellForwardStep& step, float* gh, const void* packed, const float* bhh, ThreadPool& pool);

// "avx512vnni", "avx2" or "scalar".
const char* int8KernelName();

}  // namespace rnnkit::cpu
