#include "step_gemv.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "simd_dispatch.h"
#include "thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RNNKIT_STEP_X86 1
#endif

namespace rnnkit::cpu {

namespace {

constexpr int kCols = 16;  // outputs per block

// Below this many multiply-adds per thread, a second thread's hand-off costs more than it saves (a 256-unit LSTM
// layer's step is 330-520 k).
constexpr std::size_t kMinWorkPerThread = (std::size_t)1 << 17;

int blocksOf(int N) { return (N + kCols - 1) / kCols; }

// Outputs [b0, b1) blocks of y = P v over K inputs. Each output sums its even k and its odd k apart (two chains, so
// that consecutive multiply-adds do not wait on each other), each with fused multiply-adds in k order, then adds
// the two: the order every kernel keeps.
void blocksScalar(const float* P, int K, const float* v, int b0, int b1, float* y, int N) {
  for (int b = b0; b < b1; ++b) {
    const float* w = P + (std::size_t)b * kCols * K;
    float even[kCols] = {}, odd[kCols] = {};
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      for (int j = 0; j < kCols; ++j) even[j] = std::fma(w[(std::size_t)k * kCols + j], v[k], even[j]);
      for (int j = 0; j < kCols; ++j) odd[j] = std::fma(w[(std::size_t)(k + 1) * kCols + j], v[k + 1], odd[j]);
    }
    if (k < K)
      for (int j = 0; j < kCols; ++j) even[j] = std::fma(w[(std::size_t)k * kCols + j], v[k], even[j]);
    const int n0 = b * kCols, cols = std::min(kCols, N - n0);
    for (int j = 0; j < cols; ++j) y[n0 + j] = even[j] + odd[j];
  }
}

#ifdef RNNKIT_STEP_X86
// Block b's 16 sums into y (fewer at the end of y).
__attribute__((target("avx512f,avx512vl,avx2,fma"))) inline void storeBlockAvx512(__m512 sums, int b, float* y, int N) {
  const int n0 = b * kCols, cols = std::min(kCols, N - n0);
  if (cols == kCols) _mm512_storeu_ps(y + n0, sums);
  else if (cols > 0) _mm512_mask_storeu_ps(y + n0, (__mmask16)((1u << cols) - 1), sums);
}

// Four blocks (64 outputs) at a time: eight independent chains, one broadcast per k for four products.
__attribute__((target("avx512f,avx512vl,avx2,fma"))) void blocksAvx512(const float* P, int K, const float* v, int b0,
                                                                      int b1, float* y, int N) {
  const std::size_t blockFloats = (std::size_t)kCols * K;
  int b = b0;
  for (; b + 4 <= b1; b += 4) {
    const float* w0 = P + (std::size_t)b * blockFloats;
    const float* w1 = w0 + blockFloats;
    const float* w2 = w1 + blockFloats;
    const float* w3 = w2 + blockFloats;
    __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m512 xe = _mm512_set1_ps(v[k]), xo = _mm512_set1_ps(v[k + 1]);
      e0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + at), xe, e0);
      e1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + at), xe, e1);
      e2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + at), xe, e2);
      e3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + at), xe, e3);
      o0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + at + kCols), xo, o0);
      o1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + at + kCols), xo, o1);
      o2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + at + kCols), xo, o2);
      o3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + at + kCols), xo, o3);
    }
    if (k < K) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m512 xe = _mm512_set1_ps(v[k]);
      e0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + at), xe, e0);
      e1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + at), xe, e1);
      e2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + at), xe, e2);
      e3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + at), xe, e3);
    }
    const __m512 sums[4] = {_mm512_add_ps(e0, o0), _mm512_add_ps(e1, o1), _mm512_add_ps(e2, o2),
                            _mm512_add_ps(e3, o3)};
    for (int q = 0; q < 4; ++q) storeBlockAvx512(sums[q], b + q, y, N);
  }
  for (; b < b1; ++b) {  // the last blocks one at a time, in the same order
    const float* w = P + (std::size_t)b * blockFloats;
    __m512 e = _mm512_setzero_ps(), o = e;
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      e = _mm512_fmadd_ps(_mm512_loadu_ps(w + (std::size_t)k * kCols), _mm512_set1_ps(v[k]), e);
      o = _mm512_fmadd_ps(_mm512_loadu_ps(w + (std::size_t)(k + 1) * kCols), _mm512_set1_ps(v[k + 1]), o);
    }
    if (k < K) e = _mm512_fmadd_ps(_mm512_loadu_ps(w + (std::size_t)k * kCols), _mm512_set1_ps(v[k]), e);
    storeBlockAvx512(_mm512_add_ps(e, o), b, y, N);
  }
}

// Two blocks (32 outputs, four vectors of 8) at a time: eight chains.
__attribute__((target("avx2,fma"))) void blocksAvx2(const float* P, int K, const float* v, int b0, int b1, float* y,
                                                    int N) {
  const std::size_t blockFloats = (std::size_t)kCols * K;
  int b = b0;
  for (; b + 2 <= b1; b += 2) {
    const float* w0 = P + (std::size_t)b * blockFloats;
    const float* w1 = w0 + blockFloats;
    __m256 e[4], o[4];
    for (int q = 0; q < 4; ++q) e[q] = o[q] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m256 xe = _mm256_set1_ps(v[k]), xo = _mm256_set1_ps(v[k + 1]);
      e[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at), xe, e[0]);
      e[1] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at + 8), xe, e[1]);
      e[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at), xe, e[2]);
      e[3] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at + 8), xe, e[3]);
      o[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at + kCols), xo, o[0]);
      o[1] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at + kCols + 8), xo, o[1]);
      o[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at + kCols), xo, o[2]);
      o[3] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at + kCols + 8), xo, o[3]);
    }
    if (k < K) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m256 xe = _mm256_set1_ps(v[k]);
      e[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at), xe, e[0]);
      e[1] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + at + 8), xe, e[1]);
      e[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at), xe, e[2]);
      e[3] = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + at + 8), xe, e[3]);
    }
    alignas(32) float out[2 * kCols];
    for (int q = 0; q < 4; ++q) _mm256_store_ps(out + 8 * q, _mm256_add_ps(e[q], o[q]));
    const int n0 = b * kCols, cols = std::min(2 * kCols, N - n0);
    std::memcpy(y + n0, out, sizeof(float) * (std::size_t)std::max(cols, 0));
  }
  if (b < b1) {  // the last block, in the same order
    const float* w = P + (std::size_t)b * blockFloats;
    __m256 e0 = _mm256_setzero_ps(), e1 = e0, o0 = e0, o1 = e0;
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m256 xe = _mm256_set1_ps(v[k]), xo = _mm256_set1_ps(v[k + 1]);
      e0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at), xe, e0);
      e1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at + 8), xe, e1);
      o0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at + kCols), xo, o0);
      o1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at + kCols + 8), xo, o1);
    }
    if (k < K) {
      const std::size_t at = (std::size_t)k * kCols;
      const __m256 xe = _mm256_set1_ps(v[k]);
      e0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at), xe, e0);
      e1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + at + 8), xe, e1);
    }
    alignas(32) float out[kCols];
    _mm256_store_ps(out, _mm256_add_ps(e0, o0));
    _mm256_store_ps(out + 8, _mm256_add_ps(e1, o1));
    const int n0 = b * kCols, cols = std::min(kCols, N - n0);
    std::memcpy(y + n0, out, sizeof(float) * (std::size_t)std::max(cols, 0));
  }
}
#endif

using BlocksFn = void (*)(const float* P, int K, const float* v, int b0, int b1, float* y, int N);

struct Kernel {
  BlocksFn fn;
  const char* name;
};

// Under the ceiling RNNKIT_SIMD sets for every kernel; RNNKIT_STEP_KERNEL (scalar | avx2) lowers this one alone, so
// that tests can compare the kernels with everything else unchanged.
const Kernel& kernel() {
  static const Kernel k = [] {
    const char* want = std::getenv("RNNKIT_STEP_KERNEL");
    if (want && std::strcmp(want, "scalar") == 0) return Kernel{blocksScalar, "scalar"};
#ifdef RNNKIT_STEP_X86
    const bool avx2Only = want && std::strcmp(want, "avx2") == 0;
    if (simdLevel() == SimdLevel::Avx512 && !avx2Only) return Kernel{blocksAvx512, "avx512"};
    if (simdLevel() != SimdLevel::Baseline) return Kernel{blocksAvx2, "avx2"};
#endif
    return Kernel{blocksScalar, "scalar"};
  }();
  return k;
}

}  // namespace

std::size_t stepGemvFloats(int N, int K1, int K2) { return (std::size_t)blocksOf(N) * kCols * (std::size_t)(K1 + K2); }

void stepGemvPack(const float* W1, int K1, const float* W2, int K2, int N, float* packed) {
  const int K = K1 + K2;
  for (int b = 0; b < blocksOf(N); ++b) {
    float* block = packed + (std::size_t)b * kCols * K;
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < kCols; ++j) {
        const int n = b * kCols + j;
        block[(std::size_t)k * kCols + j] =
            n >= N ? 0.f : k < K1 ? W1[(std::size_t)n * K1 + k] : W2[(std::size_t)n * K2 + (k - K1)];
      }
  }
}

void stepGemv(const float* packed, int N, const float* x1, int K1, const float* x2, int K2, float* y,
              ThreadPool& pool) {
  const int K = K1 + K2, blocks = blocksOf(N);
  if (N <= 0) return;
  // [x1; x2] in one run, so that every kernel reads one input per k.
  thread_local std::vector<float> v;
  v.resize((std::size_t)std::max(K, 1));
  if (K1) std::memcpy(v.data(), x1, sizeof(float) * (std::size_t)K1);
  if (K2) std::memcpy(v.data() + K1, x2, sizeof(float) * (std::size_t)K2);
  const BlocksFn fn = kernel().fn;
  const float* in = v.data();
  const std::size_t work = (std::size_t)N * (std::size_t)K;
  const int shares = (int)std::min<std::size_t>((std::size_t)pool.size(), std::max<std::size_t>(1, work / kMinWorkPerThread));
  if (shares <= 1 || blocks < 8) {
    fn(packed, K, in, 0, blocks, y, N);
    return;
  }
  // Share s covers blocks [cut(s), cut(s + 1)), cut at multiples of 4 blocks (the widest kernel's step).
  auto cut = [&](int s) { return s >= shares ? blocks : std::min(blocks, (blocks * s / shares + 3) / 4 * 4); };
  parallelShares(pool, shares, [&](int s) { fn(packed, K, in, cut(s), cut(s + 1), y, N); });
}

void parallelShares(ThreadPool& pool, int shares, const std::function<void(int)>& fn) {
  if (shares <= 1) {
    if (shares == 1) fn(0);
    return;
  }
  constexpr int kMaxShares = 64;
  if (shares > kMaxShares) {  // a pool this large: shares as the pool hands them out
    pool.parallelFor((std::size_t)shares, 1, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) fn((int)c);
    });
    return;
  }
  // The pool hands out chunks to whichever thread claims first; each claim takes a share here instead, the calling
  // thread the first one and the others from the last down.
  const int n = shares;
  std::atomic<bool> taken[kMaxShares];
  for (int s = 0; s < n; ++s) taken[s].store(false, std::memory_order_relaxed);
  auto claim = [&](bool caller) {
    if (caller && !taken[0].exchange(true, std::memory_order_acq_rel)) return 0;
    for (int s = n - 1; s >= 0; --s)
      if (!taken[s].exchange(true, std::memory_order_acq_rel)) return s;
    return -1;
  };
  const std::thread::id callerId = std::this_thread::get_id();
  pool.parallelFor((std::size_t)n, 1, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const int s = claim(std::this_thread::get_id() == callerId);
      if (s >= 0) fn(s);
    }
  });
}

const char* stepGemvKernelName() { return kernel().name; }

}  // namespace rnnkit::cpu
