#include "attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rnnkit::attention {

void maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch) {
  for (int r = 0; r < rows; ++r) {
    float* row = x + (std::size_t)r * cols;
    const int valid = lengths ? std::min(std::max(lengths[r % batch], 0), cols) : cols;
    if (valid == 0) {
      std::memset(row, 0, sizeof(float) * cols);
      continue;
    }
    float m = row[0];
    for (int c = 1; c < valid; ++c) m = std::max(m, row[c]);
    double sum = 0;
    for (int c = 0; c < valid; ++c) sum += std::exp((double)row[c] - m);
    const double inv = 1.0 / sum;
    for (int c = 0; c < valid; ++c) row[c] = (float)(std::exp((double)row[c] - m) * inv);
    for (int c = valid; c < cols; ++c) row[c] = 0.f;
  }
}

void additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch, int steps,
                    int hidden, float* scores) {
  const float bias = vBias ? vBias[0] : 0.f;
  for (int b = 0; b < batch; ++b) {
    const float* qb = q + (std::size_t)b * hidden;
    for (int s = 0; s < steps; ++s) {
      const float* k = keysProj + ((std::size_t)s * batch + b) * hidden;
      float acc = 0.f;
      for (int h = 0; h < hidden; ++h) acc += v[h] * std::tanh(qb[h] + k[h]);
      scores[(std::size_t)b * steps + s] = acc + bias;
    }
  }
}

void additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v, int batch,
                            int steps, int hidden, float* dKeysProj, float* dq, float* dv) {
  for (int b = 0; b < batch; ++b) {
    const float* qb = q + (std::size_t)b * hidden;
    float* dqb = dq + (std::size_t)b * hidden;
    std::memset(dqb, 0, sizeof(float) * hidden);
    for (int s = 0; s < steps; ++s) {
      const float ds = dScores[(std::size_t)b * steps + s];
      if (ds == 0.f) continue;  // a masked step (its weight is 0) sends nothing back
      const std::size_t row = ((std::size_t)s * batch + b) * hidden;
      const float* k = keysProj + row;
      float* dk = dKeysProj + row;
      for (int h = 0; h < hidden; ++h) {
        const float e = std::tanh(qb[h] + k[h]);
        dv[h] += ds * e;
        const float de = ds * v[h] * (1.f - e * e);
        dk[h] += de;
        dqb[h] += de;
      }
    }
  }
}

}  // namespace rnnkit::attention
