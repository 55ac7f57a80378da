// Portable default implementations of the Backend methods a backend may leave to the core (see backend.h).
#include "backend.h"

#include <vector>

#include "attention_kernels.h"
#include "device_buffer.h"
#include "model_spec.h"

namespace rnnkit {

namespace {
template <typename T>
std::vector<T> toHost(Backend& be, const T* p, std::size_t n) {
  std::vector<T> h(n);
  if (n && p) be.download(h.data(), p, n * sizeof(T));
  return h;
}
}  // namespace

void Backend::gemmBatched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                          long long strideA, const float* B, int ldb, long long strideB, float beta, float* C,
                          int ldc, long long strideC, int count) {
  for (int i = 0; i < count; ++i)
    gemm(transA, transB, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
}

void Backend::maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch) {
  std::vector<float> hx = toHost(*this, (const float*)x, (std::size_t)rows * cols);
  std::vector<int32_t> hl = toHost(*this, lengths, lengths ? (std::size_t)batch : 0);
  attention::maskedSoftmax(hx.data(), rows, cols, lengths ? hl.data() : nullptr, batch);
  upload(x, hx.data(), hx.size() * sizeof(float));
}

void Backend::additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch,
                             int steps, int hidden, float* scores) {
  auto hq = toHost(*this, q, (std::size_t)batch * hidden);
  auto hk = toHost(*this, keysProj, (std::size_t)steps * batch * hidden);
  auto hv = toHost(*this, v, (std::size_t)hidden);
  auto hb = toHost(*this, vBias, vBias ? 1 : 0);
  std::vector<float> hs((std::size_t)batch * steps);
  attention::additiveScores(hq.data(), hk.data(), hv.data(), vBias ? hb.data() : nullptr, batch, steps, hidden,
                            hs.data());
  upload(scores, hs.data(), hs.size() * sizeof(float));
}

void Backend::additiveAttention(const float* q, const float* keysProj, const float* values, int width, const float* v,
                                const float* vBias, int batch, int group, int steps, int hidden,
                                const int32_t* lengths, float* weights, float beta, float* context, int ldContext) {
  DeviceBuffer index(this), valueRows(this), projRows(this);
  if (group > 1) {
    // One copy of every shared source row per row of the batch.
    std::vector<int32_t> idx((std::size_t)steps * batch);
    for (int s = 0; s < steps; ++s)
      for (int b = 0; b < batch; ++b) idx[(std::size_t)s * batch + b] = s * (batch / group) + b / group;
    upload(index.reserveInts(idx.size()), idx.data(), idx.size() * sizeof(int32_t));
    gatherRows(values, width, index.ints(), steps * batch, valueRows.reserveFloats((std::size_t)steps * batch * width));
    gatherRows(keysProj, hidden, index.ints(), steps * batch,
               projRows.reserveFloats((std::size_t)steps * batch * hidden));
    values = valueRows.floats();
    keysProj = projRows.floats();
  }
  additiveScores(q, keysProj, v, vBias, batch, steps, hidden, weights);
  maskedSoftmax(weights, batch, steps, lengths, batch);
  gemmBatched(false, false, 1, width, steps, 1.f, weights, steps, steps, values, batch * width, width, beta, context,
              ldContext, ldContext, batch);
}

void Backend::additiveAttentionBackward(const float* dContext, int ldDContext, const float* weights, const float* q,
                                        const float* keysProj, const float* keys, const float* v, int batch, int steps,
                                        int hidden, float* dKeys, float* dKeysProj, float* dq, float* dv) {
  DeviceBuffer dWeights(this);
  float* dA = dWeights.reserveFloats((std::size_t)batch * steps);
  // context = a K: da = dc K^T, dK += a^T dc (per batch row); then the softmax and the scores.
  gemmBatched(false, true, 1, steps, hidden, 1.f, dContext, ldDContext, ldDContext, keys, batch * hidden, hidden, 0.f,
              dA, steps, steps, batch);
  gemmBatched(true, false, steps, hidden, 1, 1.f, weights, steps, steps, dContext, ldDContext, ldDContext, 1.f, dKeys,
              batch * hidden, hidden, batch);
  activationBackward((int)Activation::Softmax, weights, dA, dA, batch, steps);
  additiveScoresBackward(dA, q, keysProj, v, batch, steps, hidden, dKeysProj, dq, dv);
}

void Backend::additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v,
                                     int batch, int steps, int hidden, float* dKeysProj, float* dq, float* dv) {
  auto hds = toHost(*this, dScores, (std::size_t)batch * steps);
  auto hq = toHost(*this, q, (std::size_t)batch * hidden);
  auto hk = toHost(*this, keysProj, (std::size_t)steps * batch * hidden);
  auto hv = toHost(*this, v, (std::size_t)hidden);
  auto hdk = toHost(*this, (const float*)dKeysProj, (std::size_t)steps * batch * hidden);
  auto hdv = toHost(*this, (const float*)dv, (std::size_t)hidden);
  std::vector<float> hdq((std::size_t)batch * hidden);
  attention::additiveScoresBackward(hds.data(), hq.data(), hk.data(), hv.data(), batch, steps, hidden, hdk.data(),
                                    hdq.data(), hdv.data());
  upload(dKeysProj, hdk.data(), hdk.size() * sizeof(float));
  upload(dq, hdq.data(), hdq.size() * sizeof(float));
  upload(dv, hdv.data(), hdv.size() * sizeof(float));
}

}  // namespace rnnkit
