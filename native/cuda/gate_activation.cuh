// The gate activations of the LSTM and GRU kernels as types, as native/cpu/gate_activation.h: the kernels are
// templates over one, launched for the layer's activation, so the sigmoid kernels carry no test of which applies.
#pragma once

#include "kernel_util.cuh"

namespace rnnkit::cuda {

struct SigmoidGate {
  static __device__ __forceinline__ float forward(float x) { return sigmoid(x); }
  // The pre-activation's gradient from the output's gradient dy and the output y.
  static __device__ __forceinline__ float gradient(float dy, float y) { return dy * y * (1.f - y); }
};

// TF.js's hardSigmoid: clip(0.2 x + 0.5, 0, 1), slope 0.2 between the kinks and 0 where the output is clipped.
struct HardSigmoidGate {
  static __device__ __forceinline__ float forward(float x) {
    const float y = 0.2f * x + 0.5f;
    return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);  // a NaN stays NaN, as on the CPU
  }
  static __device__ __forceinline__ float gradient(float dy, float y) { return y > 0.f && y < 1.f ? dy * 0.2f : 0.f; }
};

}  // namespace rnnkit::cuda
