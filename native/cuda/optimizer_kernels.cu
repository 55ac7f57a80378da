// Fused optimizer updates over the flat parameter vector, as native/cpu/optimizer_kernels.cc (PyTorch's update rules,
// including the first-step behaviour of SGD momentum and Adam's bias corrections, computed on the host as there).
#include <cmath>

#include "cuda_backend.h"
#include "kernel_util.cuh"

namespace rnnkit::cuda {

namespace {

__global__ void sgdKernel(float* p, const float* g, float* buf, std::size_t n, const SgdHyper h, bool firstStep) {
  RNNKIT_GRID_STRIDE(i, n) {
    float d = h.maximize ? -g[i] : g[i];
    if (h.weightDecay != 0.f) d += h.weightDecay * p[i];
    if (h.momentum != 0.f) {
      float b = firstStep ? d : h.momentum * buf[i] + (1.f - h.dampening) * d;
      buf[i] = b;
      d = h.nesterov ? d + h.momentum * b : b;
    }
    p[i] -= h.lr * d;
  }
}

__global__ void adamKernel(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n, const AdamHyper h,
                           float stepSize, float bc2Sqrt) {
  RNNKIT_GRID_STRIDE(i, n) {
    float d = h.maximize ? -g[i] : g[i];
    if (h.weightDecay != 0.f) {
      if (h.decoupled)
        p[i] *= 1.f - h.lr * h.weightDecay;
      else
        d += h.weightDecay * p[i];
    }
    m[i] = h.beta1 * m[i] + (1.f - h.beta1) * d;
    v[i] = h.beta2 * v[i] + (1.f - h.beta2) * d * d;
    float vv = v[i];
    if (h.amsgrad) {
      vmax[i] = vmax[i] > vv ? vmax[i] : vv;
      vv = vmax[i];
    }
    float denom = sqrtf(vv) / bc2Sqrt + h.eps;
    p[i] -= stepSize * m[i] / denom;
  }
}

__global__ void rmspropKernel(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                              const RmspropHyper h) {
  RNNKIT_GRID_STRIDE(i, n) {
    float d = h.maximize ? -g[i] : g[i];
    if (h.weightDecay != 0.f) d += h.weightDecay * p[i];
    sq[i] = h.alpha * sq[i] + (1.f - h.alpha) * d * d;
    float avg;
    if (h.centered) {
      gavg[i] = h.alpha * gavg[i] + (1.f - h.alpha) * d;
      avg = sqrtf(sq[i] - gavg[i] * gavg[i]) + h.eps;
    } else {
      avg = sqrtf(sq[i]) + h.eps;
    }
    if (h.momentum > 0.f) {
      mom[i] = h.momentum * mom[i] + d / avg;
      p[i] -= h.lr * mom[i];
    } else {
      p[i] -= h.lr * d / avg;
    }
  }
}

}  // namespace

void CudaBackend::sgdUpdate(float* p, const float* g, float* buf, std::size_t n, const SgdHyper& h, long long step) {
  if (!n) return;
  useDevice();
  sgdKernel<<<blocksFor(n), kThreads, 0, stream_>>>(p, g, buf, n, h, step == 1);
  checkLaunch("sgdUpdate");
}

void CudaBackend::adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n,
                             const AdamHyper& h, long long step) {
  if (!n) return;
  useDevice();
  const double bc1 = 1.0 - std::pow((double)h.beta1, (double)step);
  const double bc2 = 1.0 - std::pow((double)h.beta2, (double)step);
  const float stepSize = (float)(h.lr / bc1);
  const float bc2Sqrt = (float)std::sqrt(bc2);
  adamKernel<<<blocksFor(n), kThreads, 0, stream_>>>(p, g, m, v, vmax, n, h, stepSize, bc2Sqrt);
  checkLaunch("adamUpdate");
}

void CudaBackend::rmspropUpdate(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                                const RmspropHyper& h, long long) {
  if (!n) return;
  useDevice();
  rmspropKernel<<<blocksFor(n), kThreads, 0, stream_>>>(p, g, sq, mom, gavg, n, h);
  checkLaunch("rmspropUpdate");
}

}  // namespace rnnkit::cuda
