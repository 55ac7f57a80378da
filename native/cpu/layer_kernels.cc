// Element-wise kernels of the non-recurrent stages: embedding lookups, strided copies for merging directions,
// dropout masks and the dense layers' activations.
#include <cmath>
#include <cstring>

#include "../core/model_spec.h"
#include "cpu_backend.h"

namespace rnnkit::cpu {

void CpuBackend::gatherRows(const float* W, int dim, const int32_t* idx, int n, float* out) {
  parallelRows(n, dim, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      std::memcpy(out + i * dim, W + (std::size_t)idx[i] * dim, sizeof(float) * dim);
  });
}

void CpuBackend::scatterAddRows(const float* dOut, int n, int dim, const int32_t* idx, float* dW) {
  // Split over columns: a token repeated in the batch is added by one thread only.
  parallelRows(dim, n, [&](std::size_t c0, std::size_t c1) {
    for (int i = 0; i < n; ++i) {
      const float* d = dOut + (std::size_t)i * dim;
      float* w = dW + (std::size_t)idx[i] * dim;
      for (std::size_t c = c0; c < c1; ++c) w[c] += d[c];
    }
  });
}

void CpuBackend::copy2d(int rows, int cols, const float* src, int lds, float* dst, int ldd) {
  parallelRows(rows, cols, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) std::memcpy(dst + r * ldd, src + r * lds, sizeof(float) * cols);
  });
}

void CpuBackend::add2d(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) {
  parallelRows(rows, cols, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const float* s = src + r * lds;
      float* d = dst + r * ldd;
      for (int c = 0; c < cols; ++c) d[c] += alpha * s[c];
    }
  });
}

void CpuBackend::multiply(float* x, const float* m, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] *= m[i];
}

void CpuBackend::activate(int activation, float* x, int rows, int cols) {
  const auto a = static_cast<Activation>(activation);
  if (a == Activation::Linear) return;
  parallelRows(rows, (std::size_t)cols * 8, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      float* v = x + r * cols;
      switch (a) {
        case Activation::Sigmoid:
          for (int c = 0; c < cols; ++c) v[c] = 1.f / (1.f + std::exp(-v[c]));
          break;
        case Activation::Tanh:
          for (int c = 0; c < cols; ++c) v[c] = std::tanh(v[c]);
          break;
        case Activation::Relu:
          for (int c = 0; c < cols; ++c) v[c] = v[c] > 0.f ? v[c] : 0.f;
          break;
        case Activation::Softmax: {
          float mx = v[0];
          for (int c = 1; c < cols; ++c) mx = v[c] > mx ? v[c] : mx;
          double sum = 0;
          for (int c = 0; c < cols; ++c) {
            v[c] = std::exp(v[c] - mx);
            sum += v[c];
          }
          const float inv = (float)(1.0 / sum);
          for (int c = 0; c < cols; ++c) v[c] *= inv;
          break;
        }
        case Activation::Linear: break;
      }
    }
  });
}

void CpuBackend::activationBackward(int activation, const float* y, const float* dy, float* dx, int rows, int cols) {
  const auto a = static_cast<Activation>(activation);
  parallelRows(rows, (std::size_t)cols * 2, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const float* yr = y + r * cols;
      const float* g = dy + r * cols;
      float* d = dx + r * cols;
      switch (a) {
        case Activation::Linear:
          if (d != g) std::memcpy(d, g, sizeof(float) * cols);
          break;
        case Activation::Sigmoid:
          for (int c = 0; c < cols; ++c) d[c] = g[c] * yr[c] * (1.f - yr[c]);
          break;
        case Activation::Tanh:
          for (int c = 0; c < cols; ++c) d[c] = g[c] * (1.f - yr[c] * yr[c]);
          break;
        case Activation::Relu:
          for (int c = 0; c < cols; ++c) d[c] = yr[c] > 0.f ? g[c] : 0.f;
          break;
        case Activation::Softmax: {
          double dot = 0;
          for (int c = 0; c < cols; ++c) dot += (double)g[c] * yr[c];
          for (int c = 0; c < cols; ++c) d[c] = yr[c] * (g[c] - (float)dot);
          break;
        }
      }
    }
  });
}

}  // namespace rnnkit::cpu
