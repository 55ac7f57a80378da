#include "int8_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "simd_dispatch.h"
#include "thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RNNKIT_INT8_X86 1
#endif

namespace rnnkit::cpu {

namespace {

// The packed layout: rows of W (outputs) in blocks of kInt8Cols, each block holding K/4 groups of kInt8Cols x 4
// consecutive k values (64 bytes): the operand order of a VNNI dot product (one 32-bit lane = 4 k of one output).
// Header: scales (float, Npad), column sums (int32, Npad), then the int8 blocks.
constexpr int kInt8Cols = 16;

int roundUp(int v, int m) { return (v + m - 1) / m * m; }

struct Layout {
  int N, K, Npad, Kpad;
  std::size_t scalesOffset() const { return 0; }
  std::size_t sumsOffset() const { return (std::size_t)Npad * sizeof(float); }
  std::size_t dataOffset() const { return sumsOffset() + (std::size_t)Npad * sizeof(int32_t); }
  std::size_t bytes() const { return dataOffset() + (std::size_t)Npad * Kpad; }
};

Layout layoutOf(int N, int K) { return Layout{N, K, roundUp(N, kInt8Cols), roundUp(std::max(K, 1), 4)}; }

// The weight of output n at k in the packed blocks.
inline std::size_t packedIndex(int n, int k, int Kpad) {
  return (std::size_t)(n / kInt8Cols) * kInt8Cols * Kpad + (std::size_t)(k / 4) * kInt8Cols * 4 + (n % kInt8Cols) * 4 + k % 4;
}

// Symmetric quantization of one row of `count` values to [-127, 127] with scale max|x| / 127 (1 for a zero row),
// rounding to nearest even. Shared by weights and activations, and by every int8 kernel, so that each sees the same
// integers. Compiled for each SIMD level: the maximum, the product x * (1 / scale) and the rounding are exact IEEE
// operations, so every level gives the same integers.
RNNKIT_INLINE float quantizeRowImpl(const float* x, int count, int8_t* q) {
  float maxAbs = 0.f;
  for (int i = 0; i < count; ++i) {
    const float a = std::fabs(x[i]);
    maxAbs = a > maxAbs ? a : maxAbs;
  }
  const float scale = maxAbs > 0.f ? maxAbs / 127.f : 1.f;
  const float inv = 1.f / scale;
  for (int i = 0; i < count; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
    q[i] = (int8_t)(int)v;
  }
  return scale;
}

RNNKIT_SIMD_VARIANTS(float, quantizeRow, quantizeRowImpl, (const float* x, int count, int8_t* q), (x, count, q))

// The float part, the same for every kernel (compiled for the baseline, so no kernel's FMA contraction changes it):
// C[n] = beta * C[n] + acc[n] * (rowScale * colScale[n]), beta 0 or 1.
void finishRow(const int32_t* acc, int count, float rowScale, const float* colScales, float beta, float* c) {
  if (beta == 0.f) {
    for (int j = 0; j < count; ++j) c[j] = (float)acc[j] * (rowScale * colScales[j]);
  } else {
    for (int j = 0; j < count; ++j) c[j] = c[j] + (float)acc[j] * (rowScale * colScales[j]);
  }
}

// Activations of one call, quantized per row: int8 values (K padded with zeros to Kpad), one scale per row.
struct QuantizedRowsA {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

// A kernel computes the int32 dot products acc[r][j] = sum_k qa[m0 + r][k] * qw[n0 + j][k] for rows m0..m0+rows-1
// (rows <= 4) and the kInt8Cols outputs of block nb.
using BlockKernel = void (*)(const int8_t* qa, int Kpad, int rows, const int8_t* block, const int32_t* colSums,
                             int32_t acc[4][kInt8Cols]);

// The reference: plain integer loops over the packed layout.
void blockScalar(const int8_t* qa, int Kpad, int rows, const int8_t* block, const int32_t*, int32_t acc[4][kInt8Cols]) {
  for (int r = 0; r < rows; ++r) {
    const int8_t* a = qa + (std::size_t)r * Kpad;
    for (int j = 0; j < kInt8Cols; ++j) {
      int32_t s = 0;
      for (int k = 0; k < Kpad; ++k) s += (int32_t)a[k] * (int32_t)block[(std::size_t)(k / 4) * kInt8Cols * 4 + j * 4 + k % 4];
      acc[r][j] = s;
    }
  }
}

#ifdef RNNKIT_INT8_X86
// AVX2: int8 widened to int16 and multiplied pairwise into int32 (vpmaddwd), exact (no saturation). A 64-byte group
// (16 outputs x 4 k) is four 16-byte loads, each widened to 4 outputs x 4 k; the row's 4 k values are broadcast as
// int16. Each int32 lane then holds 2 k of one output; adjacent lanes are summed at the end.
__attribute__((target("avx2,fma"))) void blockAvx2(const int8_t* qa, int Kpad, int rows, const int8_t* block,
                                                   const int32_t*, int32_t acc[4][kInt8Cols]) {
  __m256i sum[4][4];
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) sum[r][q] = _mm256_setzero_si256();
  for (int k = 0; k < Kpad; k += 4) {
    const int8_t* g = block + (std::size_t)(k / 4) * kInt8Cols * 4;
    __m256i w[4];
    for (int q = 0; q < 4; ++q) w[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16 * q)));
    for (int r = 0; r < rows; ++r) {
      const int8_t* a = qa + (std::size_t)r * Kpad + k;
      const uint64_t a4 = (uint64_t)(uint16_t)(int16_t)a[0] | (uint64_t)(uint16_t)(int16_t)a[1] << 16 |
                          (uint64_t)(uint16_t)(int16_t)a[2] << 32 | (uint64_t)(uint16_t)(int16_t)a[3] << 48;
      const __m256i av = _mm256_set1_epi64x((long long)a4);
      for (int q = 0; q < 4; ++q) sum[r][q] = _mm256_add_epi32(sum[r][q], _mm256_madd_epi16(av, w[q]));
    }
  }
  for (int r = 0; r < rows; ++r) {
    alignas(32) int32_t lanes[8];
    for (int q = 0; q < 4; ++q) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum[r][q]);
      for (int j = 0; j < 4; ++j) acc[r][q * 4 + j] = lanes[2 * j] + lanes[2 * j + 1];
    }
  }
}

// GCC 12 warns about its own _mm512_undefined_epi32() inside _mm512_slli_epi32 and the broadcasts (a known false
// positive of -Wmaybe-uninitialized in avx512fintrin.h), not about anything of ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, 4 per int32 lane, into int32 without saturation. The
// activations are made unsigned by adding 128 (in the kernel), and 128 * sum_k w[n][k] (colSums, computed when the
// weights were packed) is taken off again: the result is the same integer as the signed product.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void blockVnni(const int8_t* qa, int Kpad, int rows,
                                                                               const int8_t* block,
                                                                               const int32_t* colSums,
                                                                               int32_t acc[4][kInt8Cols]) {
  __m512i sum[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const uint32_t bias = 0x80808080u;
  for (int k = 0; k < Kpad; k += 4) {
    const __m512i w = _mm512_loadu_si512(block + (std::size_t)(k / 4) * kInt8Cols * 4);
    for (int r = 0; r < rows; ++r) {
      uint32_t a4;
      std::memcpy(&a4, qa + (std::size_t)r * Kpad + k, 4);
      sum[r] = _mm512_dpbusd_epi32(sum[r], _mm512_broadcastd_epi32(_mm_cvtsi32_si128((int)(a4 ^ bias))), w);
    }
  }
  const __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(colSums), 7);
  for (int r = 0; r < rows; ++r) _mm512_storeu_si512(acc[r], _mm512_sub_epi32(sum[r], correction));
}

// Two neighbouring column blocks (32 outputs) at once: each broadcast of a row's 4 activations feeds two products.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void pairVnni(const int8_t* qa, int Kpad, int rows,
                                                                              const int8_t* block,
                                                                              const int32_t* colSums,
                                                                              int32_t acc[4][2 * kInt8Cols]) {
  __m512i sum[4][2];
  for (int r = 0; r < 4; ++r) sum[r][0] = sum[r][1] = _mm512_setzero_si512();
  const uint32_t bias = 0x80808080u;
  const int8_t* block2 = block + (std::size_t)kInt8Cols * Kpad;
  for (int k = 0; k < Kpad; k += 4) {
    const __m512i w0 = _mm512_loadu_si512(block + (std::size_t)(k / 4) * kInt8Cols * 4);
    const __m512i w1 = _mm512_loadu_si512(block2 + (std::size_t)(k / 4) * kInt8Cols * 4);
    for (int r = 0; r < rows; ++r) {
      uint32_t a4;
      std::memcpy(&a4, qa + (std::size_t)r * Kpad + k, 4);
      const __m512i a = _mm512_broadcastd_epi32(_mm_cvtsi32_si128((int)(a4 ^ bias)));
      sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], a, w0);
      sum[r][1] = _mm512_dpbusd_epi32(sum[r][1], a, w1);
    }
  }
  const __m512i c0 = _mm512_slli_epi32(_mm512_loadu_si512(colSums), 7);
  const __m512i c1 = _mm512_slli_epi32(_mm512_loadu_si512(colSums + kInt8Cols), 7);
  for (int r = 0; r < rows; ++r) {
    _mm512_storeu_si512(acc[r], _mm512_sub_epi32(sum[r][0], c0));
    _mm512_storeu_si512(acc[r] + kInt8Cols, _mm512_sub_epi32(sum[r][1], c1));
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

bool cpuHasVnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

using PairKernel = void (*)(const int8_t* qa, int Kpad, int rows, const int8_t* block, const int32_t* colSums,
                            int32_t acc[4][2 * kInt8Cols]);

struct KernelChoice {
  BlockKernel fn;
  const char* name;
  PairKernel pair = nullptr;  // two blocks at once, where the kernel has such a form
};

// Chosen once, under the ceiling RNNKIT_SIMD sets for every kernel (simdLevel): baseline -> the scalar reference,
// avx2 -> AVX2, otherwise VNNI where the CPU has it. RNNKIT_INT8_KERNEL (scalar | avx2) lowers the int8 kernel alone,
// so that tests can compare the kernels with everything else unchanged.
KernelChoice chooseKernel() {
  const char* want = std::getenv("RNNKIT_INT8_KERNEL");
  if (want && std::strcmp(want, "scalar") == 0) return {blockScalar, "scalar"};
#ifdef RNNKIT_INT8_X86
  const SimdLevel level = simdLevel();
  const bool avx2Only = want && std::strcmp(want, "avx2") == 0;
  if (level == SimdLevel::Avx512 && cpuHasVnni() && !avx2Only) return {blockVnni, "avx512vnni", pairVnni};
  if (level != SimdLevel::Baseline) return {blockAvx2, "avx2"};
#endif
  return {blockScalar, "scalar"};
}

const KernelChoice& kernel() {
  static const KernelChoice k = chooseKernel();
  return k;
}

}  // namespace

std::size_t int8WeightsBytes(int N, int K) { return layoutOf(N, K).bytes(); }

void int8PackWeights(const float* W, int N, int K, void* dst) {
  const Layout L = layoutOf(N, K);
  auto* base = static_cast<unsigned char*>(dst);
  std::memset(base, 0, L.bytes());
  float* scales = reinterpret_cast<float*>(base + L.scalesOffset());
  int32_t* sums = reinterpret_cast<int32_t*>(base + L.sumsOffset());
  int8_t* data = reinterpret_cast<int8_t*>(base + L.dataOffset());
  std::vector<int8_t> row(K > 0 ? K : 1);
  for (int n = 0; n < L.Npad; ++n) {
    if (n >= N) {
      scales[n] = 0.f;
      continue;
    }
    scales[n] = quantizeRow(W + (std::size_t)n * K, K, row.data());
    int32_t s = 0;
    for (int k = 0; k < K; ++k) {
      data[packedIndex(n, k, L.Kpad)] = row[k];
      s += row[k];
    }
    sums[n] = s;
  }
}

void int8Products(const Int8Product* products, int count, ThreadPool& pool) {
  // The activations of every product, quantized per row (dynamic quantization: a scale per row and call).
  struct Prepared {
    Layout L;
    const float* scales;
    const int32_t* sums;
    const int8_t* data;
    std::size_t qOffset, sOffset;
    int firstBlock, blocks;
  };
  thread_local std::vector<Prepared> prepared;
  thread_local QuantizedRowsA qa;
  prepared.clear();
  std::size_t qTotal = 0, sTotal = 0;
  int blocks = 0;
  for (int i = 0; i < count; ++i) {
    const Int8Product& p = products[i];
    if (p.M <= 0 || p.N <= 0) continue;
    const Layout L = layoutOf(p.N, p.K);
    const auto* base = static_cast<const unsigned char*>(p.packed);
    prepared.push_back({L, reinterpret_cast<const float*>(base + L.scalesOffset()),
                        reinterpret_cast<const int32_t*>(base + L.sumsOffset()),
                        reinterpret_cast<const int8_t*>(base + L.dataOffset()), qTotal, sTotal, blocks,
                        L.Npad / kInt8Cols});
    qTotal += (std::size_t)p.M * L.Kpad;
    sTotal += (std::size_t)p.M;
    blocks += L.Npad / kInt8Cols;
  }
  if (prepared.empty()) return;
  qa.q.resize(qTotal);
  qa.scale.resize(sTotal);
  std::size_t work = 0;
  for (int i = 0, j = 0; i < count; ++i) {
    const Int8Product& p = products[i];
    if (p.M <= 0 || p.N <= 0) continue;
    const Prepared& pr = prepared[j++];
    int8_t* q = qa.q.data() + pr.qOffset;
    float* s = qa.scale.data() + pr.sOffset;
    auto quantizeRows = [&](std::size_t m0, std::size_t m1) {
      for (std::size_t m = m0; m < m1; ++m) {
        int8_t* row = q + m * pr.L.Kpad;
        s[m] = quantizeRow(p.A + m * p.lda, p.K, row);
        std::memset(row + p.K, 0, (std::size_t)(pr.L.Kpad - p.K));
      }
    };
    if ((std::size_t)p.M * p.K >= (1u << 15)) pool.parallelFor((std::size_t)p.M, 16, quantizeRows);
    else quantizeRows(0, (std::size_t)p.M);
    work += (std::size_t)p.M * p.N * (std::size_t)pr.L.Kpad;
  }

  const BlockKernel fn = kernel().fn;
  const PairKernel pair = kernel().pair;
  // Plain pointers for the workers: a thread_local named inside the lambda would be each worker's own.
  const Prepared* preparedAll = prepared.data();
  const int8_t* qBase = qa.q.data();
  const float* sBase = qa.scale.data();
  // One parallel pass over the column blocks of every product: each thread takes an equal share of the weights,
  // in whichever products they lie (a batch-1 step's input and recurrent products: one hand-off instead of two).
  const std::size_t grain = work < (1u << 16) ? (std::size_t)blocks : 1;
  pool.parallelFor((std::size_t)blocks, grain, [&](std::size_t b0, std::size_t b1) {
    int32_t acc[4][kInt8Cols];
    int32_t acc2[4][2 * kInt8Cols];
    for (int i = 0, j = 0; i < count; ++i) {
      const Int8Product& p = products[i];
      if (p.M <= 0 || p.N <= 0) continue;
      const Prepared& pr = preparedAll[j++];
      const std::size_t lo = std::max<std::size_t>(b0, pr.firstBlock) - pr.firstBlock;
      const std::size_t hi = std::min<std::size_t>(b1, (std::size_t)pr.firstBlock + pr.blocks);
      if (hi <= (std::size_t)pr.firstBlock || lo >= (std::size_t)pr.blocks) continue;
      const std::size_t end = hi - pr.firstBlock;
      const int Kpad = pr.L.Kpad;
      const int8_t* qdata = qBase + pr.qOffset;
      const float* rowScales = sBase + pr.sOffset;
      for (int m0 = 0; m0 < p.M; m0 += 4) {
        const int rows = std::min(4, p.M - m0);
        const int8_t* a = qdata + (std::size_t)m0 * Kpad;
        for (std::size_t nb = lo; nb < end;) {
          const int n0 = (int)nb * kInt8Cols;
          const bool two = pair && nb + 1 < end;
          if (two) pair(a, Kpad, rows, pr.data + (std::size_t)n0 * Kpad, pr.sums + n0, acc2);
          else fn(a, Kpad, rows, pr.data + (std::size_t)n0 * Kpad, pr.sums + n0, acc);
          const int cols = std::min(two ? 2 * kInt8Cols : kInt8Cols, p.N - n0);
          for (int r = 0; r < rows; ++r)
            finishRow(two ? acc2[r] : acc[r], cols, rowScales[m0 + r], pr.scales + n0, p.beta,
                      p.C + (std::size_t)(m0 + r) * p.ldc + n0);
          nb += two ? 2 : 1;
        }
      }
    }
  });
}

void int8Gemm(int M, const float* A, int lda, const void* packed, int N, int K, float beta, float* C, int ldc,
              ThreadPool& pool) {
  const Int8Product p{M, A, lda, packed, N, K, beta, C, ldc};
  int8Products(&p, 1, pool);
}

const char* int8KernelName() { return kernel().name; }

}  // namespace rnnkit::cpu
