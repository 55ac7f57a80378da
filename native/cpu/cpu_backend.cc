#include "cpu_backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "../core/attention_kernels.h"
#include "../core/error.h"
#include "gemm.h"
#include "int8_gemm.h"
#include "recurrent_step.h"
#include "step_gemv.h"
#include "thread_pool.h"

namespace rnnkit::cpu {

namespace {
// Below this many scalar operations a kernel runs on the calling thread: waking workers costs more.
constexpr std::size_t kParallelThreshold = 1 << 15;
constexpr std::size_t kAlignment = 64;
}  // namespace

void parallelRows(std::size_t n, std::size_t costPerItem, const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  std::size_t cost = costPerItem == 0 ? 1 : costPerItem;
  if (n * cost < kParallelThreshold || n == 1) {
    fn(0, n);
    return;
  }
  std::size_t grain = kParallelThreshold / 4 / cost;
  ThreadPool::instance().parallelFor(n, grain == 0 ? 1 : grain, fn);
}

bool CpuBackend::usingSystemBlas() { return SystemBlas::instance().available(); }

std::string CpuBackend::gemmName() const { return gemmInUseName(); }

void* CpuBackend::alloc(std::size_t bytes) {
  if (bytes == 0) bytes = kAlignment;
  std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) fail(ErrorCode::OutOfMemory, "could not allocate " + std::to_string(bytes) + " bytes");
  return p;
}

void CpuBackend::free(void* p) { std::free(p); }

void CpuBackend::upload(void* dst, const void* hostSrc, std::size_t bytes) {
  if (bytes) std::memcpy(dst, hostSrc, bytes);
}

void CpuBackend::download(void* hostDst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(hostDst, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes && dst != src) std::memmove(dst, src, bytes);
}

void CpuBackend::fill(float* p, std::size_t n, float value) {
  for (std::size_t i = 0; i < n; ++i) p[i] = value;
}

void CpuBackend::axpy(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                      const float* B, int ldb, float beta, float* C, int ldc) {
  gemmInUse(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

namespace {
// RNNKIT_PACKED_STEPS=0 turns the packing of step weights off (to measure what it buys).
bool packedStepsEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("RNNKIT_PACKED_STEPS");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return enabled;
}

// A cell's W_hh for recurrentStep: fused (recurrent_step.h) unless RNNKIT_FUSED_STEPS=0 (to measure what it buys).
bool fusedStepsEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("RNNKIT_FUSED_STEPS");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return enabled;
}

bool fusedSteps(const StepWeights& w) {
  return fusedStepsEnabled() && w.cellGates > 0 && w.transB && w.ldb == w.K && w.N == w.cellGates * w.K;
}
}  // namespace

std::size_t CpuBackend::stepWeightsBytes(const StepWeights& w, int rows, int steps) const {
  // One packing pass costs about what one step's own packing would: worth it from two steps on.
  if (steps < 2 || !packedStepsEnabled()) return 0;
  if (fusedSteps(w)) return fusedStepFloats(w.cellGates, w.K, rows) * sizeof(float);
  return builtinPackedBFloats(w.transB, w.N, w.K, rows) * sizeof(float);
}

void CpuBackend::packStepWeights(const StepWeights& w) {
  if (!w.panels) return;
  if (fusedSteps(w)) packFusedStepWeights(w.cellGates, w.K, w.B, w.panels, ThreadPool::instance().size());
  else builtinPackB(w.transB, w.N, w.K, w.B, w.ldb, w.panels);
}

void CpuBackend::recurrentStep(const CellForwardStep& step, float* gh, const StepWeights& whh, const float* bhh) {
  if (!whh.panels || !fusedSteps(whh)) {
    Backend::recurrentStep(step, gh, whh, bhh);
    return;
  }
  fusedRecurrentStep(step, gh, whh.panels, bhh, ThreadPool::instance());
}

void CpuBackend::gemmStep(int M, float alpha, const float* A, int lda, const StepWeights& w, float beta, float* C,
                          int ldc) {
  if (!w.panels) {
    Backend::gemmStep(M, alpha, A, lda, w, beta, C, ldc);  // in place, through gemm (and its BLAS choice)
    return;
  }
  builtinSgemmPackedB(M, w.N, w.K, alpha, A, lda, w.panels, beta, C, ldc, ThreadPool::instance());
}

void CpuBackend::gemmRowProducts(const RowProduct* products, int count) {
  for (int i = 0; i < count; ++i)
    if (products[i].M > kFewRows) {
      Backend::gemmRowProducts(products, count);
      return;
    }
  builtinFewRowProducts(products, count, ThreadPool::instance());
}

void CpuBackend::broadcastRows(float* C, int rows, int cols, int ldc, const float* bias) {
  parallelRows(rows, cols, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) std::memcpy(C + r * ldc, bias, sizeof(float) * cols);
  });
}

void CpuBackend::columnSumAdd(const float* A, int rows, int cols, int lda, float* out) {
  // Split over columns so that no two threads write the same output.
  parallelRows(cols, rows, [&](std::size_t c0, std::size_t c1) {
    for (int r = 0; r < rows; ++r) {
      const float* row = A + (std::size_t)r * lda;
      for (std::size_t c = c0; c < c1; ++c) out[c] += row[c];
    }
  });
}

void CpuBackend::gatherColumns(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n,
                               float* out, int ldo) {
  if (n >= vocab && vocab > 1) {
    // A whole sequence of tokens (a one-hot layer's input projection): read down W's columns once into rows of a
    // transposed copy, then every token's row is one contiguous run, instead of `gates` loads a column stride apart
    // per token (3.5% of a 2x256 character model's inference). The sums are the same.
    thread_local std::vector<float> transposed;
    transposed.resize((std::size_t)gates * vocab);
    float* wt = transposed.data();
    for (int g = 0; g < gates; ++g) {
      const float* row = W + (std::size_t)g * vocab;
      for (int v = 0; v < vocab; ++v) wt[(std::size_t)v * gates + g] = row[v];
    }
    parallelRows(n, gates, [&](std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i) {
        const float* __restrict col = wt + (std::size_t)idx[i] * gates;
        float* __restrict o = out + i * ldo;
        for (int g = 0; g < gates; ++g) o[g] = col[g] + bias[g];
      }
    });
    return;
  }
  parallelRows(n, gates, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      const float* col = W + idx[i];
      float* o = out + i * ldo;
      for (int g = 0; g < gates; ++g) o[g] = col[(std::size_t)g * vocab] + bias[g];
    }
  });
}

void CpuBackend::scatterAddColumns(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                                   int vocab) {
  // Split over gate rows of dW: each thread owns whole rows, so repeated tokens never race.
  parallelRows(gates, n, [&](std::size_t g0, std::size_t g1) {
    for (int i = 0; i < n; ++i) {
      const float* d = dG + (std::size_t)i * ldg;
      float* col = dW + idx[i];
      for (std::size_t g = g0; g < g1; ++g) col[g * vocab] += d[g];
    }
  });
}

// Host memory: the attention kernels run in place.
void CpuBackend::maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch) {
  attention::maskedSoftmax(x, rows, cols, lengths, batch);
}

double CpuBackend::softmaxCrossEntropy(const float* logits, int n, int classes, const int32_t* targets,
                                       float* dLogits, int* counted) {
  int count = 0;
  for (int i = 0; i < n; ++i) count += targets[i] >= 0 ? 1 : 0;
  *counted = count;
  const double inv = count > 0 ? 1.0 / count : 0.0;
  double total = 0;
  for (int i = 0; i < n; ++i) {
    const float* z = logits + (std::size_t)i * classes;
    float* d = dLogits + (std::size_t)i * classes;
    if (targets[i] < 0) {
      std::memset(d, 0, sizeof(float) * classes);
      continue;
    }
    float zmax = z[0];
    for (int c = 1; c < classes; ++c) zmax = z[c] > zmax ? z[c] : zmax;
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp((double)z[c] - zmax);
    const double logSum = std::log(sum) + zmax;
    total += logSum - z[targets[i]];
    for (int c = 0; c < classes; ++c) d[c] = (float)(std::exp((double)z[c] - logSum) * inv);
    d[targets[i]] -= (float)inv;
  }
  return total;
}

double CpuBackend::meanSquaredError(const float* out, const float* target, std::size_t rows, int features,
                                    const int32_t* rowCounted, std::size_t countedRows, float* dOut) {
  const std::size_t n = countedRows * (std::size_t)features;
  const double scale = n ? 2.0 / (double)n : 0.0;
  double total = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t at = r * (std::size_t)features;
    if (rowCounted && !rowCounted[r]) {
      std::memset(dOut + at, 0, sizeof(float) * features);
      continue;
    }
    for (std::size_t i = at; i < at + (std::size_t)features; ++i) {
      const double diff = (double)out[i] - target[i];
      total += diff * diff;
      dOut[i] = (float)(scale * diff);
    }
  }
  return n ? total / (double)n : 0.0;
}

double CpuBackend::sumSquares(const float* p, std::size_t n) {
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += (double)p[i] * p[i];
  return total;
}

void CpuBackend::scale(float* p, std::size_t n, float s) {
  for (std::size_t i = 0; i < n; ++i) p[i] *= s;
}

std::size_t CpuBackend::stepGemvFloats(int N, int K1, int K2) const { return cpu::stepGemvFloats(N, K1, K2); }

void CpuBackend::stepGemvPack(const float* W1, int K1, const float* W2, int K2, int N, float* packed) {
  cpu::stepGemvPack(W1, K1, W2, K2, N, packed);
}

void CpuBackend::stepGemv(const float* packed, int N, const float* x1, int K1, const float* x2, int K2, float* y) {
  cpu::stepGemv(packed, N, x1, K1, x2, K2, y, ThreadPool::instance());
}

std::size_t CpuBackend::int8WeightsBytes(int N, int K) const { return cpu::int8WeightsBytes(N, K); }

void CpuBackend::int8PackWeights(const float* W, int N, int K, void* dst) { cpu::int8PackWeights(W, N, K, dst); }

void CpuBackend::gemmInt8(int M, const float* A, int lda, const void* packedW, int N, int K, float beta, float* C,
                          int ldc) {
  cpu::int8Gemm(M, A, lda, packedW, N, K, beta, C, ldc, ThreadPool::instance());
}

void CpuBackend::gemmInt8Products(const Int8Product* products, int count) {
  cpu::int8Products(products, count, ThreadPool::instance());
}

// Fused as the float32 steps are, unless RNNKIT_FUSED_STEPS=0.
std::size_t CpuBackend::int8StepWeightsBytes(int gates, int hidden) const {
  return fusedStepsEnabled() && gates > 0 && hidden > 0 ? cpu::int8StepWeightsBytes(gates, hidden) : 0;
}

void CpuBackend::int8PackStepWeights(const float* whh, int gates, int hidden, void* dst) {
  cpu::int8PackStepWeights(whh, gates, hidden, dst, ThreadPool::instance().size());
}

void CpuBackend::int8RecurrentStep(const CellForwardStep& step, float* gh, const void* packedWhh, const float* bhh) {
  cpu::int8RecurrentStep(step, gh, packedWhh, bhh, ThreadPool::instance());
}

}  // namespace rnnkit::cpu

namespace rnnkit {
Backend& cpuBackend() {
  static cpu::CpuBackend* backend = new cpu::CpuBackend();  // never destroyed: outlives every addon instance
  return *backend;
}
}  // namespace rnnkit
