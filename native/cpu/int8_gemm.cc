#include "int8_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "recurrent_step.h"
#include "simd_dispatch.h"
#include "step_gemv.h"
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
// Rows per tile of the several-row kernels (tileVnni).
constexpr int kTileRows = 8;

// Below this many multiply-adds per thread, a second thread's hand-off costs more than it saves (the products of a
// batch-1 step of a 256-unit LSTM layer are 331 k).
constexpr std::size_t kInt8MinWorkPerThread = (std::size_t)1 << 17;

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

#ifdef RNNKIT_INT8_X86
// The same quantization with explicit vectors (GCC vectorizes neither the NaN-ignoring maximum nor nearbyint): the
// same IEEE operations per element, so the same integers as quantizeRowImpl. The maximum ignores NaN as the scalar
// comparison does (vmaxps returns its second operand when either is NaN); the clamp keeps a NaN (vminps/vmaxps with
// the constant first), which converts to 0x80000000 and truncates to the byte 0, as (int8_t)(int)NaN does on x86.
// Clamping before the rounding conversion gives the same integers as rounding first: the bounds are integers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// (The same GCC 12 false positive as below, from its own _mm512_undefined_* inside the maximum and the reduction.)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))) float quantizeRowAvx512Vec(const float* x,
                                                                                                  int count,
                                                                                                  int8_t* q) {
  __m512 m = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= count; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m);
  if (i < count) {
    const __mmask16 k = (__mmask16)((1u << (count - i)) - 1);
    m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)), m);
  }
  const float maxAbs = _mm512_reduce_max_ps(m);
  const float scale = maxAbs > 0.f ? maxAbs / 127.f : 1.f;
  const float inv = 1.f / scale;
  const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-127.f);
  for (i = 0; i + 16 <= count; i += 16) {
    const __m512 v = _mm512_max_ps(lo, _mm512_min_ps(hi, _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
  if (i < count) {
    const __mmask16 k = (__mmask16)((1u << (count - i)) - 1);
    const __m512 v = _mm512_max_ps(lo, _mm512_min_ps(hi, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vinv)));
    _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
  return scale;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

__attribute__((target("avx2,fma"))) float quantizeRowAvx2Vec(const float* x, int count, int8_t* q) {
  __m256 m = _mm256_setzero_ps();
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int i = 0;
  for (; i + 8 <= count; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absMask), m);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float maxAbs = 0.f;
  for (float v : lanes) maxAbs = v > maxAbs ? v : maxAbs;
  for (; i < count; ++i) {
    const float a = std::fabs(x[i]);
    maxAbs = a > maxAbs ? a : maxAbs;
  }
  const float scale = maxAbs > 0.f ? maxAbs / 127.f : 1.f;
  const float inv = 1.f / scale;
  const __m256 vinv = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  for (i = 0; i + 8 <= count; i += 8) {
    const __m256 v = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv)));
    const __m256i d = _mm256_cvtps_epi32(v);
    // Low byte of each int32 lane (truncation, as vpmovdb does).
    const __m256i bytes = _mm256_shuffle_epi8(d, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                  -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                  -1, -1, -1, -1));
    const uint32_t lo4 = (uint32_t)_mm256_extract_epi32(bytes, 0), hi4 = (uint32_t)_mm256_extract_epi32(bytes, 4);
    std::memcpy(q + i, &lo4, 4);
    std::memcpy(q + i + 4, &hi4, 4);
  }
  for (; i < count; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
    q[i] = (int8_t)(int)v;
  }
  return scale;
}

#endif

float quantizeRowScalar(const float* x, int count, int8_t* q) { return quantizeRowImpl(x, count, q); }

// The float part, the same for every kernel (compiled for the baseline, so no kernel's FMA contraction changes it):
// c[n] = acc[n] * (rowScale * colScale[n]), added to start[n] where start is given (c itself for beta 1, or a
// bias row: the same sum as the bias broadcast into C first).
void finishRow(const int32_t* acc, int count, float rowScale, const float* colScales, const float* start, float* c) {
  if (!start) {
    for (int j = 0; j < count; ++j) c[j] = (float)acc[j] * (rowScale * colScales[j]);
  } else {
    for (int j = 0; j < count; ++j) c[j] = start[j] + (float)acc[j] * (rowScale * colScales[j]);
  }
}

// Where a product's sums start: from zero (beta 0, no bias), from C (beta 1) or from a bias row (stride 0).
struct Start {
  const float* at;
  std::size_t ld;
  const float* row(int m, int n0) const { return at ? at + (std::size_t)m * ld + n0 : nullptr; }
};

Start startOf(float beta, const float* bias, float* C, int ldc) {
  if (bias) return {bias, 0};
  return beta != 0.f ? Start{C, (std::size_t)ldc} : Start{nullptr, 0};
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

// A tile kernel: C[r][j] = start[r][j] + (acc[r][j] - 128 * colSums[j]) * (rowScales[r] * colScales[j]) for its
// rows and its 1 or 2 blocks (`cols` of them written; start: row stride ldStart, none when null), over rows
// quantized with the +128 added.
using TileKernel = void (*)(const uint8_t* ua, int Kpad, const int8_t* block, const int32_t* colSums,
                            const float* colScales, const float* rowScales, int cols, const float* start,
                            std::size_t ldStart, float* C, int ldc);

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
      int32_t a4;
      std::memcpy(&a4, qa + (std::size_t)r * Kpad + k, 4);
      // The row's 4 activations widened to int16 (one 64-bit lane) and broadcast to every lane.
      const __m256i av = _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(a4)));
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
// positive of -Wmaybe-uninitialized, or -Wuninitialized, in avx512fintrin.h), not about anything of ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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

// One row of activations (a batch-1 step) against four neighbouring column blocks (64 outputs): with one row, the
// pair kernel's two accumulators wait on each other's latency (each vpdpbusd depends on the one before it in its
// chain); here eight independent chains (four blocks, even and odd k groups apart) keep the unit busy, and each
// broadcast of the row's 4 activations feeds four products. The integer sums are exact, so the order of the
// partial sums changes nothing.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void quadRowVnni(const int8_t* qa, int Kpad,
                                                                                 const int8_t* block,
                                                                                 const int32_t* colSums,
                                                                                 int32_t acc[4 * kInt8Cols]) {
  constexpr std::size_t kGroup = kInt8Cols * 4;  // bytes of one group of 4 k for one block
  const std::size_t blockBytes = (std::size_t)kInt8Cols * Kpad;
  const int8_t* b0 = block;
  const int8_t* b1 = block + blockBytes;
  const int8_t* b2 = block + 2 * blockBytes;
  const int8_t* b3 = block + 3 * blockBytes;
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(),
          s3 = _mm512_setzero_si512(), t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512(),
          t2 = _mm512_setzero_si512(), t3 = _mm512_setzero_si512();
  const __m512i bias = _mm512_set1_epi32((int)0x80808080u);
  int k = 0;
  for (; k + 8 <= Kpad; k += 8) {
    int32_t a0, a1;
    std::memcpy(&a0, qa + k, 4);
    std::memcpy(&a1, qa + k + 4, 4);
    const __m512i x0 = _mm512_xor_si512(_mm512_set1_epi32(a0), bias);
    const __m512i x1 = _mm512_xor_si512(_mm512_set1_epi32(a1), bias);
    const std::size_t g = (std::size_t)(k / 4) * kGroup;
    s0 = _mm512_dpbusd_epi32(s0, x0, _mm512_loadu_si512(b0 + g));
    s1 = _mm512_dpbusd_epi32(s1, x0, _mm512_loadu_si512(b1 + g));
    s2 = _mm512_dpbusd_epi32(s2, x0, _mm512_loadu_si512(b2 + g));
    s3 = _mm512_dpbusd_epi32(s3, x0, _mm512_loadu_si512(b3 + g));
    t0 = _mm512_dpbusd_epi32(t0, x1, _mm512_loadu_si512(b0 + g + kGroup));
    t1 = _mm512_dpbusd_epi32(t1, x1, _mm512_loadu_si512(b1 + g + kGroup));
    t2 = _mm512_dpbusd_epi32(t2, x1, _mm512_loadu_si512(b2 + g + kGroup));
    t3 = _mm512_dpbusd_epi32(t3, x1, _mm512_loadu_si512(b3 + g + kGroup));
  }
  if (k < Kpad) {  // Kpad is a multiple of 4: one group left
    int32_t a0;
    std::memcpy(&a0, qa + k, 4);
    const __m512i x0 = _mm512_xor_si512(_mm512_set1_epi32(a0), bias);
    const std::size_t g = (std::size_t)(k / 4) * kGroup;
    s0 = _mm512_dpbusd_epi32(s0, x0, _mm512_loadu_si512(b0 + g));
    s1 = _mm512_dpbusd_epi32(s1, x0, _mm512_loadu_si512(b1 + g));
    s2 = _mm512_dpbusd_epi32(s2, x0, _mm512_loadu_si512(b2 + g));
    s3 = _mm512_dpbusd_epi32(s3, x0, _mm512_loadu_si512(b3 + g));
  }
  const __m512i sums[4] = {_mm512_add_epi32(s0, t0), _mm512_add_epi32(s1, t1), _mm512_add_epi32(s2, t2),
                           _mm512_add_epi32(s3, t3)};
  for (int q = 0; q < 4; ++q) {
    const __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(colSums + q * kInt8Cols), 7);
    _mm512_storeu_si512(acc + q * kInt8Cols, _mm512_sub_epi32(sums[q], correction));
  }
}

// Several rows (batches, whole sequences) against one or two column blocks, the float part included. The rows come
// quantized with the +128 already added (unsigned bytes, biasedRows), so that each k group of a row is one
// broadcast from memory straight into vpdpbusd: per k group, BLOCKS weight loads feed ROWS x BLOCKS products, with
// ROWS x BLOCKS accumulators (8 x 2 = 16 of the 32 vector registers). The 4-row pair kernel spent 2 loads and 4
// broadcasts from general registers (each with its own xor) on 8 products; this one runs 2.3x its multiply-adds per
// second on the same products (a stand-alone loop of M 32, N 1024, K 256). The integers are exact (the correction
// 128 * colSums as in blockVnni), and the finish does finishRow's IEEE operations element by element, in the same
// order, with no fused multiply-add (the empty asm keeps the compiler from contracting the product and the sum).
template <int ROWS, int BLOCKS>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tileVnni(
    const uint8_t* ua, int Kpad, const int8_t* block, const int32_t* colSums, const float* colScales,
    const float* rowScales, int cols, const float* start, std::size_t ldStart, float* C, int ldc) {
  static_assert(BLOCKS == 1 || BLOCKS == 2, "one or two blocks");
  __m512i sum[ROWS][BLOCKS];
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r)
    for (int b = 0; b < BLOCKS; ++b) sum[r][b] = _mm512_setzero_si512();
  const std::size_t blockBytes = (std::size_t)kInt8Cols * Kpad;
  const int8_t* w0 = block;
  const int8_t* w1 = block + (BLOCKS > 1 ? blockBytes : 0);
  for (int k = 0; k < Kpad; k += 4, w0 += kInt8Cols * 4, w1 += kInt8Cols * 4) {
    const __m512i wa = _mm512_loadu_si512(w0);
    const __m512i wb = BLOCKS > 1 ? _mm512_loadu_si512(w1) : wa;
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      int32_t a4;
      std::memcpy(&a4, ua + (std::size_t)r * Kpad + k, 4);
      const __m512i a = _mm512_set1_epi32(a4);
      sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], a, wa);
      if (BLOCKS > 1) sum[r][BLOCKS - 1] = _mm512_dpbusd_epi32(sum[r][BLOCKS - 1], a, wb);
    }
  }
  for (int b = 0; b < BLOCKS; ++b) {
    const int left = cols - b * kInt8Cols;
    if (left <= 0) break;
    const __mmask16 mask = left >= kInt8Cols ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    const __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(colSums + b * kInt8Cols), 7);
    const __m512 colScale = _mm512_loadu_ps(colScales + b * kInt8Cols);
    for (int r = 0; r < ROWS; ++r) {
      __m512 scale = _mm512_mul_ps(_mm512_set1_ps(rowScales[r]), colScale);
      __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum[r][b], correction)), scale);
      float* c = C + (std::size_t)r * ldc + b * kInt8Cols;
      if (start) {
        __asm__("" : "+v"(v));
        v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, start + (std::size_t)r * ldStart + b * kInt8Cols), v);
      }
      _mm512_mask_storeu_ps(c, mask, v);
    }
  }
}

// tileVnni for 1..8 rows and 1 or 2 blocks: kTilesVnni[rows - 1][blocks - 1].
const TileKernel kTilesVnni[kTileRows][2] = {
    {tileVnni<1, 1>, tileVnni<1, 2>}, {tileVnni<2, 1>, tileVnni<2, 2>}, {tileVnni<3, 1>, tileVnni<3, 2>},
    {tileVnni<4, 1>, tileVnni<4, 2>}, {tileVnni<5, 1>, tileVnni<5, 2>}, {tileVnni<6, 1>, tileVnni<6, 2>},
    {tileVnni<7, 1>, tileVnni<7, 2>}, {tileVnni<8, 1>, tileVnni<8, 2>}};

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

// One row against four blocks at once (acc: 64 outputs).
using QuadRowKernel = void (*)(const int8_t* qa, int Kpad, const int8_t* block, const int32_t* colSums,
                               int32_t acc[4 * kInt8Cols]);

using QuantizeRowFn = float (*)(const float* x, int count, int8_t* q);

// A kernel's quantizer goes with it, so that forcing the scalar kernel (RNNKIT_INT8_KERNEL) also compares the
// vector quantizers with the scalar loop.
struct KernelChoice {
  BlockKernel fn;
  const char* name;
  PairKernel pair = nullptr;     // two blocks at once, where the kernel has such a form
  QuadRowKernel quad = nullptr;  // one row, four blocks at once (batch-1 steps), likewise
  QuantizeRowFn quantize = quantizeRowScalar;
  // Up to 8 rows against 1 or 2 blocks, over rows quantized with the +128 added (products of more than one row).
  const TileKernel (*tiles)[2] = nullptr;
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
  if (level == SimdLevel::Avx512 && cpuHasVnni() && !avx2Only) return {blockVnni, "avx512vnni", pairVnni, quadRowVnni, quantizeRowAvx512Vec, kTilesVnni};
  if (level != SimdLevel::Baseline) return {blockAvx2, "avx2", nullptr, nullptr, quantizeRowAvx2Vec};
#endif
  return {blockScalar, "scalar"};
}

const KernelChoice& kernel() {
  static const KernelChoice k = chooseKernel();
  return k;
}

float quantizeRow(const float* x, int count, int8_t* q) { return kernel().quantize(x, count, q); }

// The unsigned form of a quantized row for the tile kernels: q + 128 (the same byte as q ^ 0x80).
void biasRow(int8_t* row, int count) {
  auto* u = reinterpret_cast<uint8_t*>(row);
  for (int i = 0; i < count; ++i) u[i] = (uint8_t)(u[i] ^ 0x80u);
}

// Rows [m0, m1) of a product (quantized with +128, ua holding row m at m * Kpad) against its column blocks
// [nb0, nb1), with the tile kernels. Rows go in panels whose activations stay in L1 while every block pair passes
// over them; each pair of blocks (a few KiB of weights) stays in L1 while the panel's tiles of 8 rows go by.
void tileColumns(const TileKernel (*tiles)[2], const int8_t* data, const int32_t* sums, const float* scales, int N,
                 int Kpad, const uint8_t* ua, const float* rowScales, int m0, int m1, int nb0, int nb1, Start start,
                 float* C, int ldc) {
  const int panelRows = std::max(kTileRows, (16384 / std::max(Kpad, 1)) / kTileRows * kTileRows);
  for (int p0 = m0; p0 < m1; p0 += panelRows) {
    const int p1 = std::min(m1, p0 + panelRows);
    for (int nb = nb0; nb < nb1; nb += 2) {
      const int blocks = std::min(2, nb1 - nb);
      const int n0 = nb * kInt8Cols;
      const int cols = std::min(blocks * kInt8Cols, N - n0);
      const int8_t* block = data + (std::size_t)n0 * Kpad;
      for (int r0 = p0; r0 < p1; r0 += kTileRows) {
        const int rows = std::min(kTileRows, p1 - r0);
        tiles[rows - 1][blocks - 1](ua + (std::size_t)r0 * Kpad, Kpad, block, sums + n0, scales + n0, rowScales + r0,
                                    cols, start.row(r0, n0), start.ld, C + (std::size_t)r0 * ldc + n0, ldc);
      }
    }
  }
}

// Rows [0, M) of one product, quantized (qdata: row m at m * Kpad, with the +128 added where `biased`, for the tile
// kernels), against its column blocks [nb0, nb1): C = start + the products, columns below N written.
void productBlocks(const KernelChoice& kc, bool biased, const int8_t* qdata, const float* rowScales, int M, int Kpad,
                   const int8_t* data, const int32_t* sums, const float* scales, int N, int nb0, int nb1, Start start,
                   float* C, int ldc) {
  if (biased) {
    tileColumns(kc.tiles, data, sums, scales, N, Kpad, reinterpret_cast<const uint8_t*>(qdata), rowScales, 0, M, nb0,
                nb1, start, C, ldc);
    return;
  }
  int32_t acc[4][kInt8Cols];
  int32_t acc2[4][2 * kInt8Cols];
  for (int m0 = 0; m0 < M; m0 += 4) {
    const int rows = std::min(4, M - m0);
    const int8_t* a = qdata + (std::size_t)m0 * Kpad;
    int nb = nb0;
    if (rows == 1 && kc.quad) {
      int32_t acc4[4 * kInt8Cols];
      for (; nb + 4 <= nb1; nb += 4) {
        const int n0 = nb * kInt8Cols;
        kc.quad(a, Kpad, data + (std::size_t)n0 * Kpad, sums + n0, acc4);
        finishRow(acc4, std::min(4 * kInt8Cols, N - n0), rowScales[m0], scales + n0, start.row(m0, n0),
                  C + (std::size_t)m0 * ldc + n0);
      }
    }
    while (nb < nb1) {
      const int n0 = nb * kInt8Cols;
      const bool two = kc.pair && nb + 1 < nb1;
      if (two) kc.pair(a, Kpad, rows, data + (std::size_t)n0 * Kpad, sums + n0, acc2);
      else kc.fn(a, Kpad, rows, data + (std::size_t)n0 * Kpad, sums + n0, acc);
      const int cols = std::min(two ? 2 * kInt8Cols : kInt8Cols, N - n0);
      for (int r = 0; r < rows; ++r)
        finishRow(two ? acc2[r] : acc[r], cols, rowScales[m0 + r], scales + n0, start.row(m0 + r, n0),
                  C + (std::size_t)(m0 + r) * ldc + n0);
      nb += two ? 2 : 1;
    }
  }
}

// Quantizes `rows` rows of x (row stride ldx, `count` values each) into q (row stride Kpad, zero-padded; with the
// +128 added where `biased`), one scale per row.
void quantizeRows(const float* x, std::size_t ldx, int count, int Kpad, bool biased, std::size_t m0, std::size_t m1,
                  int8_t* q, float* scales) {
  for (std::size_t m = m0; m < m1; ++m) {
    int8_t* row = q + m * Kpad;
    scales[m] = quantizeRow(x + m * ldx, count, row);
    std::memset(row + count, 0, (std::size_t)(Kpad - count));
    if (biased) biasRow(row, Kpad);
  }
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
    bool biased;  // rows quantized with +128 added, for the tile kernels
  };
  thread_local std::vector<Prepared> prepared;
  thread_local QuantizedRowsA qa;
  prepared.clear();
  const TileKernel (*tiles)[2] = kernel().tiles;
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
                        L.Npad / kInt8Cols, tiles != nullptr && p.M > 1});
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
    auto quantizeShare = [&](std::size_t m0, std::size_t m1) {
      quantizeRows(p.A, (std::size_t)p.lda, p.K, pr.L.Kpad, pr.biased, m0, m1, q, s);
    };
    if ((std::size_t)p.M * p.K >= (1u << 15)) pool.parallelFor((std::size_t)p.M, 16, quantizeShare);
    else quantizeShare(0, (std::size_t)p.M);
    work += (std::size_t)p.M * p.N * (std::size_t)pr.L.Kpad;
  }

  const KernelChoice& kc = kernel();
  // Plain pointers for the workers: a thread_local named inside the lambda would be each worker's own.
  const Prepared* preparedAll = prepared.data();
  const int8_t* qBase = qa.q.data();
  const float* sBase = qa.scale.data();
  // One parallel pass over the column blocks of every product: each thread takes an equal share of the weights,
  // in whichever products they lie (a batch-1 step's input and recurrent products: one hand-off instead of two).
  // The cuts weigh each block by its Kpad (an input product of 65 features is a quarter of a recurrent one of 256)
  // and fall on multiples of 4 blocks within a product, where the one-row kernel takes four blocks at once.
  thread_local std::vector<std::size_t> cuts;
  const std::size_t chunks = work < kInt8MinWorkPerThread ? 1
                             : std::min<std::size_t>((std::size_t)pool.size(), std::max<std::size_t>(1, work / kInt8MinWorkPerThread));
  cuts.assign(chunks + 1, (std::size_t)blocks);
  cuts[0] = 0;
  {
    double total = 0;
    for (const Prepared& pr : prepared) total += (double)pr.blocks * pr.L.Kpad;
    double before = 0;
    std::size_t c = 1;
    for (const Prepared& pr : prepared) {
      for (int b = 0; b < pr.blocks && c < chunks; ++b) {
        // The cut before block b of this product, where the work before it reaches the chunk's share.
        if (before + (double)b * pr.L.Kpad >= total * (double)c / (double)chunks && (b % 4 == 0 || b == 0))
          cuts[c++] = (std::size_t)(pr.firstBlock + b);
      }
      before += (double)pr.blocks * pr.L.Kpad;
    }
  }
  const std::size_t* cutAt = cuts.data();
  // Each share stays with one core from step to step (parallelShares), as the float32 step's halves do.
  parallelShares(pool, (int)chunks, [&](int c) {
    const std::size_t b0 = cutAt[c], b1 = cutAt[c + 1];
    for (int i = 0, j = 0; i < count; ++i) {
      const Int8Product& p = products[i];
      if (p.M <= 0 || p.N <= 0) continue;
      const Prepared& pr = preparedAll[j++];
      const std::size_t lo = std::max<std::size_t>(b0, pr.firstBlock) - pr.firstBlock;
      const std::size_t hi = std::min<std::size_t>(b1, (std::size_t)pr.firstBlock + pr.blocks);
      if (hi <= (std::size_t)pr.firstBlock || lo >= (std::size_t)pr.blocks) continue;
      const std::size_t end = hi - pr.firstBlock;
      const int Kpad = pr.L.Kpad;
      productBlocks(kc, pr.biased, qBase + pr.qOffset, sBase + pr.sOffset, p.M, Kpad, pr.data, pr.sums, pr.scales,
                    p.N, (int)lo, (int)end, startOf(p.beta, p.bias, p.C, p.ldc), p.C, p.ldc);
    }
  });
}

void int8Gemm(int M, const float* A, int lda, const void* packed, int N, int K, float beta, float* C, int ldc,
              ThreadPool& pool) {
  const Int8Product p{M, A, lda, packed, N, K, beta, C, ldc};
  int8Products(&p, 1, pool);
}

// The fused int8 step: W_hh quantized as by int8PackWeights, its rows (the product's columns) in the blocked unit
// order of recurrent_step.h, after a header holding the block width.
namespace {
constexpr std::size_t kStepHeaderBytes = 64;  // keeps the int8 form 64-byte aligned
}

std::size_t int8StepWeightsBytes(int gates, int hidden) {
  return kStepHeaderBytes + int8WeightsBytes(gates * hidden, hidden);
}

void int8PackStepWeights(const float* whh, int gates, int hidden, void* dst, int threads) {
  const int G = gates, H = hidden, block = unitBlockFor(H, threads);
  // Each output row keeps its own scale, so the permuted rows quantize to the same integers as in place.
  std::vector<float> rows((std::size_t)G * H * H);
  for (int g = 0; g < G; ++g)
    for (int j = 0; j < H; ++j)
      std::memcpy(rows.data() + (std::size_t)blockedColumn(G, H, block, g, j) * H, whh + ((std::size_t)g * H + j) * H,
                  sizeof(float) * H);
  auto* base = static_cast<unsigned char*>(dst);
  std::memset(base, 0, kStepHeaderBytes);
  const int32_t width = block;
  std::memcpy(base, &width, sizeof width);
  int8PackWeights(rows.data(), G * H, H, base + kStepHeaderBytes);
}

void int8RecurrentStep(const CellForwardStep& s, float* gh, const void* packed, const float* bhh, ThreadPool& pool) {
  const int G = gateCount(s.cell), H = s.hidden, B = s.batch, N = G * H;
  const auto* base = static_cast<const unsigned char*>(packed);
  int32_t block;
  std::memcpy(&block, base, sizeof block);
  const Layout L = layoutOf(N, H);
  const auto* weights = base + kStepHeaderBytes;
  const float* scales = reinterpret_cast<const float*>(weights + L.scalesOffset());
  const int32_t* sums = reinterpret_cast<const int32_t*>(weights + L.sumsOffset());
  const int8_t* data = reinterpret_cast<const int8_t*>(weights + L.dataOffset());
  const KernelChoice& kc = kernel();
  const bool biased = kc.tiles != nullptr && B > 1;
  const int blocks = (H + block - 1) / block;
  // Blocks [k0, k1) on one thread: the quantized h (every row: each thread makes its own copy, the same integers,
  // rather than wait for a second hand-off), their product columns, their update.
  auto run = [&](std::size_t k0, std::size_t k1) {
    const int u0 = (int)k0 * block, u1 = std::min(H, (int)k1 * block);
    prefetchInputGates(s, u0, u1);
    thread_local QuantizedRowsA h;  // this thread's own
    h.q.resize((std::size_t)B * L.Kpad);
    h.scale.resize((std::size_t)B);
    quantizeRows(s.hPrev, (std::size_t)H, H, L.Kpad, biased, 0, (std::size_t)B, h.q.data(), h.scale.data());
    if (bhh) startFromRecurrentBias(s, gh, bhh, block, u0, u1);
    // Block boundaries (G * u0, u0 a multiple of kUnitAlign) fall on column blocks of the int8 form.
    productBlocks(kc, biased, h.q.data(), h.scale.data(), B, L.Kpad, data, sums, scales, N, G * u0 / kInt8Cols,
                  (G * u1 + kInt8Cols - 1) / kInt8Cols, startOf(bhh ? 1.f : 0.f, nullptr, gh, s.ldgh), gh, s.ldgh);
    for (int v0 = u0; v0 < u1; v0 += block) cellForwardUnits(s, gh + G * v0, v0, std::min(block, H - v0));
  };
  const std::size_t work = (std::size_t)B * N * L.Kpad;
  if (blocks == 1 || work < 2 * kInt8MinWorkPerThread) run(0, (std::size_t)blocks);
  else pool.parallelFor((std::size_t)blocks, 1, run);
}

const char* int8KernelName() { return kernel().name; }

}  // namespace rnnkit::cpu
