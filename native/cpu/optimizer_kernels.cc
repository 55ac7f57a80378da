// Fused optimizer updates over the flat parameter vector, following PyTorch's update rules (torch.optim) exactly,
// including the first-step behaviour of SGD momentum and Adam's bias corrections.
#include <cmath>

#include "cpu_backend.h"

namespace rnnkit::cpu {

void CpuBackend::sgdUpdate(float* p, const float* g, float* buf, std::size_t n, const SgdHyper& h, long long step) {
  parallelRows(n, 8, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      float d = h.maximize ? -g[i] : g[i];
      if (h.weightDecay != 0.f) d += h.weightDecay * p[i];
      if (h.momentum != 0.f) {
        float b = step == 1 ? d : h.momentum * buf[i] + (1.f - h.dampening) * d;
        buf[i] = b;
        d = h.nesterov ? d + h.momentum * b : b;
      }
      p[i] -= h.lr * d;
    }
  });
}

void CpuBackend::adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n,
                            const AdamHyper& h, long long step) {
  const double bc1 = 1.0 - std::pow((double)h.beta1, (double)step);
  const double bc2 = 1.0 - std::pow((double)h.beta2, (double)step);
  const float stepSize = (float)(h.lr / bc1);
  const float bc2Sqrt = (float)std::sqrt(bc2);
  parallelRows(n, 16, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
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
      float denom = std::sqrt(vv) / bc2Sqrt + h.eps;
      p[i] -= stepSize * m[i] / denom;
    }
  });
}

void CpuBackend::rmspropUpdate(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                               const RmspropHyper& h, long long) {
  parallelRows(n, 16, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      float d = h.maximize ? -g[i] : g[i];
      if (h.weightDecay != 0.f) d += h.weightDecay * p[i];
      sq[i] = h.alpha * sq[i] + (1.f - h.alpha) * d * d;
      float avg;
      if (h.centered) {
        gavg[i] = h.alpha * gavg[i] + (1.f - h.alpha) * d;
        avg = std::sqrt(sq[i] - gavg[i] * gavg[i]) + h.eps;
      } else {
        avg = std::sqrt(sq[i]) + h.eps;
      }
      if (h.momentum > 0.f) {
        mom[i] = h.momentum * mom[i] + d / avg;
        p[i] -= h.lr * mom[i];
      } else {
        p[i] -= h.lr * d / avg;
      }
    }
  });
}

}  // namespace rnnkit::cpu
