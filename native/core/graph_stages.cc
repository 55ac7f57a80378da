#include "graph_stages.h"

#include "model_spec.h"

namespace rnnkit::graph {

void repeatVectorForward(Backend& be, const float* in, int B, int F, int steps, float* out) {
  const std::size_t n = (std::size_t)B * F;
  for (int t = 0; t < steps; ++t) be.copy(out + t * n, in, n * sizeof(float));
}

void repeatVectorBackward(Backend& be, const float* dOut, int B, int F, int steps, float* dIn) {
  const std::size_t n = (std::size_t)B * F;
  for (int t = 0; t < steps; ++t) be.axpy(n, 1.f, dOut + t * n, dIn);
}

void concatForward(Backend& be, const float* in, int rows, int width, float* out, int total, int offset) {
  be.copy2d(rows, width, in, width, out + offset, total);
}

void concatBackward(Backend& be, const float* dOut, int rows, int width, int total, int offset, float* dIn) {
  be.add2d(rows, width, 1.f, dOut + offset, total, dIn, width);
}

// Per batch row b the queries are the rows q[t, b, :] (stride B*H), the keys k[s, b, :], the weights w[t, b, :]
// (stride B*S): one batched product per row of the batch.
void dotAttentionForward(Backend& be, const float* q, const float* k, int T, int S, int B, int H,
                         const int32_t* lengths, float* weights, float* context) {
  be.gemmBatched(false, true, T, S, H, 1.f, q, B * H, H, k, B * H, H, 0.f, weights, B * S, S, B);
  be.maskedSoftmax(weights, T * B, S, lengths, B);
  be.gemmBatched(false, false, T, H, S, 1.f, weights, B * S, S, k, B * H, H, 0.f, context, B * H, H, B);
}

void dotAttentionBackward(Backend& be, const float* q, const float* k, const float* weights, int T, int S, int B,
                          int H, const float* dContext, const float* dWeights, float* dQ, float* dK, float* scratch) {
  const std::size_t N = (std::size_t)T * B;
  float* dW = scratch;                   // d(loss)/d(weights)
  float* dScores = scratch + N * S;      // d(loss)/d(scores), through the softmax (0 on masked steps: w = 0 there)
  be.gemmBatched(false, true, T, S, H, 1.f, dContext, B * H, H, k, B * H, H, 0.f, dW, B * S, S, B);
  if (dWeights) be.axpy(N * S, 1.f, dWeights, dW);
  // context = w x k: dK += w^T x dContext.
  be.gemmBatched(true, false, S, H, T, 1.f, weights, B * S, S, dContext, B * H, H, 1.f, dK, B * H, H, B);
  be.activationBackward((int)Activation::Softmax, weights, dW, dScores, (int)N, S);
  // scores = q x k^T: dQ += dScores x k, dK += dScores^T x q.
  be.gemmBatched(false, false, T, H, S, 1.f, dScores, B * S, S, k, B * H, H, 1.f, dQ, B * H, H, B);
  be.gemmBatched(true, false, S, H, T, 1.f, dScores, B * S, S, q, B * H, H, 1.f, dK, B * H, H, B);
}

}  // namespace rnnkit::graph
