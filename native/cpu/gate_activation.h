// The gate activations of the LSTM and GRU kernels as types. The kernels take one as a template parameter and the
// choice is made once per time step, so the sigmoid kernel is the same code it was before a second activation
// existed, and neither loop has a per-element test of which activation applies.
#pragma once

#include "fast_math.h"
#include "simd_dispatch.h"

namespace rnnkit::cpu {

struct SigmoidGate {
  static RNNKIT_INLINE float forward(float x) { return fastSigmoid(x); }
  // The pre-activation's gradient from the output's gradient dy and the output y (backward keeps only y). Written
  // as dy * y * (1 - y), the order the kernels multiplied in before this type existed.
  static RNNKIT_INLINE float gradient(float dy, float y) { return dy * y * (1.f - y); }
};

// TF.js's hardSigmoid: clip(0.2 x + 0.5, 0, 1).
struct HardSigmoidGate {
  static RNNKIT_INLINE float forward(float x) {
    const float y = 0.2f * x + 0.5f;
    return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
  }
  // Slope 0.2 between the kinks, 0 where the output is clipped (see GateActivation about the kinks themselves).
  static RNNKIT_INLINE float gradient(float dy, float y) { return y > 0.f && y < 1.f ? dy * 0.2f : 0.f; }
};

}  // namespace rnnkit::cpu
