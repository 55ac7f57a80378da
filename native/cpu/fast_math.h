// Vectorizable exp, sigmoid and tanh for the fused cell kernels. Written as straight-line float arithmetic (no calls,
// no branches, no table lookups) so that the compiler turns a loop over them into SIMD code for whatever instruction
// set the enclosing function is compiled for; accurate to a few float ulps over the range the cells use.
#pragma once

#include <cstdint>
#include <cstring>

#include "simd_dispatch.h"

namespace rnnkit::cpu {


RNNKIT_INLINE float bitsToFloat(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// exp(x) by range reduction x = n*ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for exp(r).
RNNKIT_INLINE float fastExp(float in) {
  // The clamp sends NaN to -87 (both comparisons are false), so that the integer conversion below never sees NaN
  // (undefined behaviour, found by UBSan); the NaN itself is handed back at the end.
  float x = in > -87.0f ? (in < 88.0f ? in : 88.0f) : -87.0f;
  // Round x*log2(e) to the nearest integer with the 1.5*2^23 trick, which needs no rounding instruction.
  const float shifter = 12582912.0f;
  float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693145751953125f;  // ln2 split in two so r stays exact
  r = r - n * 1.428606765330187e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float e = p * bitsToFloat((int32_t)((uint32_t)((int32_t)n + 127) << 23));
  return in == in ? e : in;
}

RNNKIT_INLINE float fastSigmoid(float x) { return 1.0f / (1.0f + fastExp(-x)); }

// tanh(x) = sign(x) * (1 - e) / (1 + e) with e = exp(-2|x|); near 0 an odd polynomial keeps the relative error small.
RNNKIT_INLINE float fastTanh(float x) {
  const float ax = x < 0 ? -x : x;
  const float e = fastExp(-2.0f * ax);
  const float big = (1.0f - e) / (1.0f + e);
  const float x2 = x * x;
  // tanh(x) ~ x - x^3/3 + 2x^5/15 - 17x^7/315 for |x| < 0.0625 (error below 1e-10 there).
  const float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.053968254f)));
  const float t = x < 0 ? -big : big;
  return ax < 0.0625f ? small : t;
}

}  // namespace rnnkit::cpu
