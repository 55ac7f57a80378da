#include "read_bench.h"

#include <vector>

#include "../../native/cpu/simd_dispatch.h"
#include "../../native/cpu/thread_pool.h"

namespace rnnkit::cpu {

namespace {

// 64 independent lanes: four vectors of sixteen with AVX-512, each a separate add chain, so the loop is bound by
// loads rather than by the latency of one accumulator. No reassociation is needed to vectorize it.
constexpr int kLanes = 64;

RNNKIT_INLINE float sumSliceImpl(const float* p, std::size_t n) {
  float acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int q = 0; q < kLanes; ++q) acc[q] += p[i + q];
  float total = 0.f;
  for (; i < n; ++i) total += p[i];
  for (int q = 0; q < kLanes; ++q) total += acc[q];
  return total;
}

RNNKIT_SIMD_VARIANTS(float, sumSlice, sumSliceImpl, (const float* p, std::size_t n), (p, n))

}  // namespace

float readAcrossPool(const float* data, std::size_t floats, ThreadPool& pool) {
  const std::size_t threads = static_cast<std::size_t>(pool.size());
  std::vector<float> partial(threads, 0.f);
  pool.parallelFor(threads, 1, [&](std::size_t t0, std::size_t t1) {
    for (std::size_t t = t0; t < t1; ++t) {
      // Slices in whole cache lines (16 floats), so that no two threads read the same line.
      const std::size_t b = floats * t / threads / 16 * 16;
      const std::size_t e = t + 1 == threads ? floats : floats * (t + 1) / threads / 16 * 16;
      partial[t] = sumSlice(data + b, e - b);
    }
  });
  float total = 0.f;
  for (float v : partial) total += v;
  return total;
}

}  // namespace rnnkit::cpu
