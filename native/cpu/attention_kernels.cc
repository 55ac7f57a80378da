// The CPU's additive-attention kernels: rows of the batch split over the thread pool, the hidden loop vectorized
// (fastTanh, compiled per SIMD level). The portable definitions (native/core/attention_kernels.cc) are the
// reference the tests hold these to.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "../core/attention_kernels.h"
#include "../core/error.h"
#include "cpu_backend.h"
#include "fast_math.h"
#include "simd_dispatch.h"

namespace rnnkit::cpu {

namespace {

// v . tanh(q + k) over one row. The sum runs in 16 partial sums (one vector register) so that the loop vectorizes
// without reassociation flags; a single running sum would serialize it.
RNNKIT_INLINE float additiveScore(const float* q, const float* k, const float* v, int hidden) {
  float part[16] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int h = 0;
  for (; h + 16 <= hidden; h += 16)
    for (int j = 0; j < 16; ++j) part[j] += v[h + j] * fastTanh(q[h + j] + k[h + j]);
  for (int j = 0; h < hidden; ++h, ++j) part[j] += v[h] * fastTanh(q[h] + k[h]);
  float acc = 0.f;
  for (int j = 0; j < 16; ++j) acc += part[j];
  return acc;
}

RNNKIT_INLINE void additiveRowsImpl(const float* q, const float* keysProj, const float* v, float bias, int batch,
                                    int steps, int hidden, float* scores, int b0, int b1) {
  for (int b = b0; b < b1; ++b) {
    const float* qb = q + (std::size_t)b * hidden;
    for (int s = 0; s < steps; ++s)
      scores[(std::size_t)b * steps + s] =
          additiveScore(qb, keysProj + ((std::size_t)s * batch + b) * hidden, v, hidden) + bias;
  }
}
RNNKIT_SIMD_VARIANTS(void, additiveRows, additiveRowsImpl,
                     (const float* q, const float* keysProj, const float* v, float bias, int batch, int steps,
                      int hidden, float* scores, int b0, int b1),
                     (q, keysProj, v, bias, batch, steps, hidden, scores, b0, b1))

// Rows b0..b1 of one attention step: scores, the masked softmax (the portable rule, per row), the context.
// Rows of a group share their source row (keyBatch = batch / group rows per source step), read while in cache.
RNNKIT_INLINE void attendRowsImpl(const float* q, const float* keysProj, const float* values, int width, const float* v,
                                  float bias, int keyBatch, int group, int steps, int hidden, const int32_t* lengths,
                                  float* weights, float beta, float* context, int ldContext, int b0, int b1) {
  for (int b = b0; b < b1; ++b) {
    const float* qb = q + (std::size_t)b * hidden;
    float* a = weights + (std::size_t)b * steps;
    const int kb = b / group;
    for (int s = 0; s < steps; ++s)
      a[s] = additiveScore(qb, keysProj + ((std::size_t)s * keyBatch + kb) * hidden, v, hidden) + bias;
    attention::maskedSoftmax(a, 1, steps, lengths ? lengths + b : nullptr, 1);
    float* c = context + (std::size_t)b * ldContext;
    if (beta == 0.f) {
      for (int h = 0; h < width; ++h) c[h] = 0.f;
    } else if (beta != 1.f) {
      for (int h = 0; h < width; ++h) c[h] *= beta;
    }
    for (int s = 0; s < steps; ++s) {
      const float w = a[s];
      if (w == 0.f) continue;  // past the row's length
      const float* k = values + ((std::size_t)s * keyBatch + kb) * width;
      RNNKIT_LOOP_INDEPENDENT
      for (int h = 0; h < width; ++h) c[h] += w * k[h];
    }
  }
}
RNNKIT_SIMD_VARIANTS(void, attendRows, attendRowsImpl,
                     (const float* q, const float* keysProj, const float* values, int width, const float* v,
                      float bias, int keyBatch, int group, int steps, int hidden, const int32_t* lengths,
                      float* weights, float beta, float* context, int ldContext, int b0, int b1),
                     (q, keysProj, values, width, v, bias, keyBatch, group, steps, hidden, lengths, weights, beta,
                      context, ldContext, b0, b1))

// One row's additive-score gradient from its dScores row: dq = (written), dKeysProj and dv += (accumulating).
RNNKIT_INLINE void additiveBackwardRow(const float* dScoresRow, const float* qb, const float* keysProj, const float* v,
                                       int batch, int b, int steps, int hidden, float* dKeysProj, float* dqb,
                                       float* dv) {
  for (int h = 0; h < hidden; ++h) dqb[h] = 0.f;
  for (int s = 0; s < steps; ++s) {
    const float ds = dScoresRow[s];
    if (ds == 0.f) continue;  // a masked step (weight 0) sends nothing back
    const std::size_t row = ((std::size_t)s * batch + b) * hidden;
    const float* k = keysProj + row;
    float* dk = dKeysProj + row;
    RNNKIT_LOOP_INDEPENDENT
    for (int h = 0; h < hidden; ++h) {
      const float e = fastTanh(qb[h] + k[h]);
      dv[h] += ds * e;
      const float de = ds * v[h] * (1.f - e * e);
      dk[h] += de;
      dqb[h] += de;
    }
  }
}

RNNKIT_INLINE void additiveBackwardRowsImpl(const float* dScores, const float* q, const float* keysProj,
                                            const float* v, int batch, int steps, int hidden, float* dKeysProj,
                                            float* dq, float* dv, int b0, int b1) {
  for (int b = b0; b < b1; ++b)
    additiveBackwardRow(dScores + (std::size_t)b * steps, q + (std::size_t)b * hidden, keysProj, v, batch, b, steps,
                        hidden, dKeysProj, dq + (std::size_t)b * hidden, dv);
}
RNNKIT_SIMD_VARIANTS(void, additiveBackwardRows, additiveBackwardRowsImpl,
                     (const float* dScores, const float* q, const float* keysProj, const float* v, int batch,
                      int steps, int hidden, float* dKeysProj, float* dq, float* dv, int b0, int b1),
                     (dScores, q, keysProj, v, batch, steps, hidden, dKeysProj, dq, dv, b0, b1))

// Rows b0..b1 of one step's attention backward: through the context (da_s = dc . k_s, dk_s += a_s dc), the softmax
// (ds_s = a_s (da_s - a . da)) and the scores (as additiveBackwardRows). dv accumulates into the caller's share.
RNNKIT_INLINE void attendBackwardRowsImpl(const float* dContext, int ldDContext, const float* weights, const float* q,
                                          const float* keysProj, const float* keys, const float* v, int batch,
                                          int steps, int hidden, float* dKeys, float* dKeysProj, float* dq, float* dv,
                                          float* dScores, int b0, int b1) {
  for (int b = b0; b < b1; ++b) {
    const float* dc = dContext + (std::size_t)b * ldDContext;
    const float* a = weights + (std::size_t)b * steps;
    double dot = 0;
    for (int s = 0; s < steps; ++s) {
      const std::size_t row = ((std::size_t)s * batch + b) * hidden;
      const float w = a[s];
      if (w == 0.f) {  // masked: no gradient through it
        dScores[s] = 0.f;
        continue;
      }
      const float* k = keys + row;
      float* dk = dKeys + row;
      float part[16] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      int h = 0;
      for (; h + 16 <= hidden; h += 16)
        for (int j = 0; j < 16; ++j) {
          part[j] += dc[h + j] * k[h + j];
          dk[h + j] += w * dc[h + j];
        }
      for (int j = 0; h < hidden; ++h, ++j) {
        part[j] += dc[h] * k[h];
        dk[h] += w * dc[h];
      }
      float da = 0.f;
      for (int j = 0; j < 16; ++j) da += part[j];
      dScores[s] = da;
      dot += (double)da * w;
    }
    for (int s = 0; s < steps; ++s) dScores[s] = a[s] * (dScores[s] - (float)dot);
    additiveBackwardRow(dScores, q + (std::size_t)b * hidden, keysProj, v, batch, b, steps, hidden, dKeysProj,
                        dq + (std::size_t)b * hidden, dv);
  }
}
RNNKIT_SIMD_VARIANTS(void, attendBackwardRows, attendBackwardRowsImpl,
                     (const float* dContext, int ldDContext, const float* weights, const float* q,
                      const float* keysProj, const float* keys, const float* v, int batch, int steps, int hidden,
                      float* dKeys, float* dKeysProj, float* dq, float* dv, float* dScores, int b0, int b1),
                     (dContext, ldDContext, weights, q, keysProj, keys, v, batch, steps, hidden, dKeys, dKeysProj, dq,
                      dv, dScores, b0, b1))

}  // namespace

void CpuBackend::additiveAttentionBackward(const float* dContext, int ldDContext, const float* weights, const float* q,
                                           const float* keysProj, const float* keys, const float* v, int batch,
                                           int steps, int hidden, float* dKeys, float* dKeysProj, float* dq,
                                           float* dv) {
  // Each share of the rows sums its part of dv apart; the parts are added under a lock.
  std::mutex merge;
  parallelRows(batch, (std::size_t)steps * hidden * 14, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> scratch((std::size_t)hidden + steps, 0.f);
    attendBackwardRows(dContext, ldDContext, weights, q, keysProj, keys, v, batch, steps, hidden, dKeys, dKeysProj, dq,
                       scratch.data(), scratch.data() + hidden, (int)b0, (int)b1);
    std::lock_guard<std::mutex> lock(merge);
    for (int h = 0; h < hidden; ++h) dv[h] += scratch[h];
  });
}

void CpuBackend::additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch,
                                int steps, int hidden, float* scores) {
  const float bias = vBias ? vBias[0] : 0.f;
  parallelRows(batch, (std::size_t)steps * hidden * 8, [&](std::size_t b0, std::size_t b1) {
    additiveRows(q, keysProj, v, bias, batch, steps, hidden, scores, (int)b0, (int)b1);
  });
}

void CpuBackend::additiveAttention(const float* q, const float* keysProj, const float* values, int width,
                                   const float* v, const float* vBias, int batch, int group, int steps, int hidden,
                                   const int32_t* lengths, float* weights, float beta, float* context, int ldContext) {
  const float bias = vBias ? vBias[0] : 0.f;
  if (group < 1 || batch % group != 0) fail(ErrorCode::Internal, "additiveAttention: rows not in whole groups");
  parallelRows(batch, (std::size_t)steps * (hidden * 10 + width), [&](std::size_t b0, std::size_t b1) {
    attendRows(q, keysProj, values, width, v, bias, batch / group, group, steps, hidden, lengths, weights, beta,
               context, ldContext, (int)b0, (int)b1);
  });
}

void CpuBackend::additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v,
                                        int batch, int steps, int hidden, float* dKeysProj, float* dq, float* dv) {
  // Each share of the rows sums its part of dv apart; the parts are added under a lock.
  std::mutex merge;
  parallelRows(batch, (std::size_t)steps * hidden * 10, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> part(hidden, 0.f);
    additiveBackwardRows(dScores, q, keysProj, v, batch, steps, hidden, dKeysProj, dq, part.data(), (int)b0, (int)b1);
    std::lock_guard<std::mutex> lock(merge);
    for (int h = 0; h < hidden; ++h) dv[h] += part[h];
  });
}

void CpuBackend::gemmBatched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                             long long strideA, const float* B, int ldb, long long strideB, float beta, float* C,
                             int ldc, long long strideC, int count) {
  // Small products (an attention step's per-row scores and contexts): one per share of the pool, each run by the
  // single-threaded kernel; large ones keep the GEMM's own threading.
  const double work = 2.0 * M * N * K;
  if (work >= 1 << 20 || count == 1) {
    Backend::gemmBatched(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC,
                         count);
    return;
  }
  parallelRows(count, (std::size_t)work, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      gemm(transA, transB, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
                       C + i * strideC, ldc);
  });
}

}  // namespace rnnkit::cpu
