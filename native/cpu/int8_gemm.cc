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

// Symmetric quantization of one row of `count` values to [-127, 127] with scale max|x| / 127 (1 for a zero row).
// Shared by weights and activations, and by every kernel: each kernel sees the same integers.
float quantizeRow(const float* x, int count, int8_t* q) {
  float maxAbs = 0.f;
  for (int i = 0; i < count; ++i) maxAbs = std::max(maxAbs, std::fabs(x[i]));
  const float scale = maxAbs > 0.f ? maxAbs / 127.f : 1.f;
  const float inv = 1.f / scale;
  for (int i = 0; i < count; ++i) {
    const long v = std::lrintf(x[i] * inv);
    q[i] = (int8_t)std::min(127L, std::max(-127L, v));
  }
  return scale;
}

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
      sum[r] = _mm512_dpbusd_epi32(sum[r], _mm512_set1_epi32((int)(a4 ^ bias)), w);
    }
  }
  const __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(colSums), 7);
  for (int r = 0; r < rows; ++r) _mm512_storeu_si512(acc[r], _mm512_sub_epi32(sum[r], correction));
}

bool cpuHasVnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

struct KernelChoice {
  BlockKernel fn;
  const char* name;
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
  if (level == SimdLevel::Avx512 && cpuHasVnni() && !avx2Only) return {blockVnni, "avx512vnni"};
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

void int8Gemm(int M, const float* A, int lda, const void* packed, int N, int K, float beta, float* C, int ldc,
              ThreadPool& pool) {
  if (M <= 0 || N <= 0) return;
  const Layout L = layoutOf(N, K);
  const auto* base = static_cast<const unsigned char*>(packed);
  const float* scales = reinterpret_cast<const float*>(base + L.scalesOffset());
  const int32_t* sums = reinterpret_cast<const int32_t*>(base + L.sumsOffset());
  const int8_t* data = reinterpret_cast<const int8_t*>(base + L.dataOffset());

  // The activations, quantized per row (dynamic quantization: a scale per row and call).
  thread_local QuantizedRowsA qa;
  qa.q.assign((std::size_t)M * L.Kpad, 0);
  qa.scale.resize(M);
  for (int m = 0; m < M; ++m) qa.scale[m] = quantizeRow(A + (std::size_t)m * lda, K, qa.q.data() + (std::size_t)m * L.Kpad);

  const BlockKernel fn = kernel().fn;
  const int nBlocks = L.Npad / kInt8Cols;
  const int8_t* qdata = qa.q.data();
  const float* rowScales = qa.scale.data();
  // Each thread takes whole column blocks (its share of the weights) for every row.
  const std::size_t work = (std::size_t)M * N * (std::size_t)L.Kpad;
  const std::size_t grain = work < (1u << 16) ? (std::size_t)nBlocks : 1;
  pool.parallelFor((std::size_t)nBlocks, grain, [&](std::size_t b0, std::size_t b1) {
    int32_t acc[4][kInt8Cols];
    for (int m0 = 0; m0 < M; m0 += 4) {
      const int rows = std::min(4, M - m0);
      for (std::size_t nb = b0; nb < b1; ++nb) {
        const int n0 = (int)nb * kInt8Cols;
        fn(qdata + (std::size_t)m0 * L.Kpad, L.Kpad, rows, data + (std::size_t)n0 * L.Kpad, sums + n0, acc);
        const int count = std::min(kInt8Cols, N - n0);
        for (int r = 0; r < rows; ++r)
          finishRow(acc[r], count, rowScales[m0 + r], scales + n0, beta, C + (std::size_t)(m0 + r) * ldc + n0);
      }
    }
  });
}

const char* int8KernelName() { return kernel().name; }

}  // namespace rnnkit::cpu
