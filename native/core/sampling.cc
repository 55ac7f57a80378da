#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "error.h"

namespace rnnkit {

int sampleIndex(const float* scores, std::size_t n, const SamplingOptions& o, double u) {
  if (n == 0) fail(ErrorCode::Shape, "cannot sample from an empty distribution");
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    fail(ErrorCode::Value, "temperature must be a finite number >= 0");
  if (o.topK < 0) fail(ErrorCode::Value, "topK must be >= 0");
  if (!(o.topP > 0 && o.topP <= 1)) fail(ErrorCode::Value, "topP must be in (0, 1]");
  if (!(u >= 0 && u < 1)) fail(ErrorCode::Value, "the uniform draw must be in [0, 1)");
  std::vector<double> logit(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double s = scores[i];
    if (std::isnan(s)) fail(ErrorCode::Value, "the scores contain NaN");
    logit[i] = o.probabilities ? (s > 0 ? std::log(s) : -INFINITY) : s;
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Highest first; ties by index so the result never depends on the sort's stability.
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return logit[a] > logit[b] || (logit[a] == logit[b] && a < b);
  });
  if (o.temperature == 0 || (std::isinf(logit[order[0]]) && logit[order[0]] > 0)) return (int)order[0];
  std::size_t keep = o.topK > 0 ? std::min<std::size_t>(n, (std::size_t)o.topK) : n;
  const double top = logit[order[0]];
  if (std::isinf(top)) return (int)order[0];  // every score is -inf: nothing to weigh
  std::vector<double> w(keep);
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    w[i] = std::exp((logit[order[i]] - top) / o.temperature);
    total += w[i];
  }
  if (o.topP < 1) {
    // The smallest prefix (in probability order) whose mass reaches topP.
    double mass = 0;
    std::size_t cut = keep;
    for (std::size_t i = 0; i < keep; ++i) {
      mass += w[i] / total;
      if (mass >= o.topP) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += w[i];
  }
  double target = u * total, acc = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    acc += w[i];
    if (target < acc) return (int)order[i];
  }
  return (int)order[keep - 1];
}

}  // namespace rnnkit
