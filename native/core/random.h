// A small, portable random generator (xoshiro128+ seeded through splitmix64): the same seed gives the same
// initial weights on every platform and standard library, which std::uniform_real_distribution does not promise.
#pragma once

#include <cstdint>
#include <vector>

namespace rnnkit {

class Random {
 public:
  explicit Random(uint64_t seed) {
    for (uint32_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = (uint32_t)((z ^ (z >> 31)) >> 16);
    }
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
  }
  uint32_t next() {
    const uint32_t result = s_[0] + s_[3];
    const uint32_t t = s_[1] << 9;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 11) | (s_[3] >> 21);
    return result;
  }
  // Uniform in [0, 1) with 24 random bits.
  float uniform() { return (float)(next() >> 8) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

  std::vector<uint32_t> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void setState(const std::vector<uint32_t>& s) {
    if (s.size() != 4 || (s[0] | s[1] | s[2] | s[3]) == 0) return;
    for (int i = 0; i < 4; ++i) s_[i] = s[i];
  }

 private:
  uint32_t s_[4];
};

}  // namespace rnnkit
