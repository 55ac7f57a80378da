// Picking the next symbol from a distribution: temperature, then top-k, then top-p (nucleus), then an inverse-CDF
// draw with a uniform number the caller supplies (so a seeded generator on the caller's side reproduces a sample).
#pragma once

#include <cstddef>

namespace rnnkit {

struct SamplingOptions {
  double temperature = 1.0;  // 0 picks the most likely symbol
  int topK = 0;              // 0: no limit
  double topP = 1.0;         // 1: no limit
  bool probabilities = false;  // the scores are probabilities (a softmax output) rather than logits
};

// Returns the chosen index in [0, n). `u` is uniform in [0, 1).
int sampleIndex(const float* scores, std::size_t n, const SamplingOptions& options, double u);

}  // namespace rnnkit
