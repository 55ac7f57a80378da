// The graph's own stages, which have no parameters: repeat-vector, concatenation along the feature axis, and Luong's
// dot attention. Each is a forward and a backward over backend memory; sequences are time-major [T, B, F], vectors
// [B, F]. Backward functions accumulate into the input gradients (a tensor may feed several nodes).
#pragma once

#include <cstdint>

#include "backend.h"

namespace rnnkit::graph {

// out[t, b, :] = in[b, :] for t < steps.
void repeatVectorForward(Backend& be, const float* in, int B, int F, int steps, float* out);
// dIn[b, :] += sum over t of dOut[t, b, :].
void repeatVectorBackward(Backend& be, const float* dOut, int B, int F, int steps, float* dIn);

// Copies a [rows, width] block into columns [offset, offset + width) of out [rows, total], and back (accumulating).
void concatForward(Backend& be, const float* in, int rows, int width, float* out, int total, int offset);
void concatBackward(Backend& be, const float* dOut, int rows, int width, int total, int offset, float* dIn);

// Luong's dot attention of queries q [T, B, H] over keys k [S, B, H]: weights [T, B, S] = softmax over the first
// lengths[b] source steps (every step when lengths is null) of q . k, context [T, B, H] = weights x keys.
void dotAttentionForward(Backend& be, const float* q, const float* k, int T, int S, int B, int H,
                         const int32_t* lengths, float* weights, float* context);
// From dContext [T, B, H] and dWeights [T, B, S] (null: none): dQ += , dK += (may be the same buffer). `scratch`
// holds 2 * T * B * S floats.
void dotAttentionBackward(Backend& be, const float* q, const float* k, const float* weights, int T, int S, int B,
                          int H, const float* dContext, const float* dWeights, float* dQ, float* dK, float* scratch);

}  // namespace rnnkit::graph
