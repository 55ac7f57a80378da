#include "peak_bench.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "../../native/cpu/simd_dispatch.h"
#include "../../native/cpu/thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RNNKIT_PEAK_X86 1
#endif

namespace rnnkit::cpu {

namespace {

// Independent accumulator chains per thread. An FMA's result is ready about 4 cycles after it issues, and a core
// issues up to two per cycle (Zen 4: two 256-bit pipes, a 512-bit FMA on both; Intel server cores: two 512-bit
// ports), so 8 chains in flight keep the pipes full; 12 leave a margin and fit the 16 ymm registers with the two
// operands.
constexpr int kChains = 12;

// acc = acc * a + b converges to b / (1 - a) (here 1): no overflow, no subnormals, whatever the iteration count.
constexpr float kA = 0.999f, kB = 0.001f;

double peakFloat32Baseline(std::int64_t iterations) {
  float acc[kChains];
  for (int q = 0; q < kChains; ++q) acc[q] = (float)q;
  // volatile reads: the compiler cannot know a and b, so it cannot fold the loop.
  volatile float va = kA, vb = kB;
  const float a = va, b = vb;
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int q = 0; q < kChains; ++q) acc[q] = acc[q] * a + b;
  double sum = 0;
  for (int q = 0; q < kChains; ++q) sum += acc[q];
  return sum;
}

#if defined(RNNKIT_PEAK_X86)
__attribute__((target("avx2,fma"))) double peakFloat32Avx2(std::int64_t iterations) {
  __m256 acc[kChains];
  for (int q = 0; q < kChains; ++q) acc[q] = _mm256_set1_ps((float)q);
  volatile float va = kA, vb = kB;
  const __m256 a = _mm256_set1_ps(va), b = _mm256_set1_ps(vb);
  for (std::int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int q = 0; q < kChains; ++q) acc[q] = _mm256_fmadd_ps(acc[q], a, b);
  }
  __m256 s = acc[0];
  for (int q = 1; q < kChains; ++q) s = _mm256_add_ps(s, acc[q]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  double sum = 0;
  for (float v : out) sum += v;
  return sum;
}

__attribute__((target("avx512f,avx2,fma"))) double peakFloat32Avx512(std::int64_t iterations) {
  __m512 acc[kChains];
  for (int q = 0; q < kChains; ++q) acc[q] = _mm512_set1_ps((float)q);
  volatile float va = kA, vb = kB;
  const __m512 a = _mm512_set1_ps(va), b = _mm512_set1_ps(vb);
  for (std::int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int q = 0; q < kChains; ++q) acc[q] = _mm512_fmadd_ps(acc[q], a, b);
  }
  __m512 s = acc[0];
  for (int q = 1; q < kChains; ++q) s = _mm512_add_ps(s, acc[q]);
  alignas(64) float out[16];  // (not _mm512_reduce_add_ps: GCC 12's header trips -Wuninitialized)
  _mm512_store_ps(out, s);
  double sum = 0;
  for (float v : out) sum += v;
  return sum;
}

bool cpuHasVnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}

// u8 x s8 products summed in fours into int32 lanes. The accumulators wrap around (integer SIMD never traps); only the
// instructions' throughput matters.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) double peakInt8Vnni(std::int64_t iterations) {
  __m512i acc[kChains];
  for (int q = 0; q < kChains; ++q) acc[q] = _mm512_set1_epi32(q);
  volatile int va = 0x01020304, vb = 0x01ff02fe;
  const __m512i a = _mm512_set1_epi32(va), b = _mm512_set1_epi32(vb);
  for (std::int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int q = 0; q < kChains; ++q) acc[q] = _mm512_dpbusd_epi32(acc[q], a, b);
  }
  __m512i s = acc[0];
  for (int q = 1; q < kChains; ++q) s = _mm512_add_epi32(s, acc[q]);
  alignas(64) int out[16];  // (likewise, not _mm512_reduce_add_epi32)
  _mm512_store_si512(out, s);
  double sum = 0;
  for (int v : out) sum += v;
  return sum;
}

// The AVX2 route of an int8 product: vpmaddubsw (u8 x s8 pairs into int16), vpmaddwd by ones (pairs into int32),
// vpaddd. Each chain's signed operand is its own accumulator, so that the two multiplies cannot be hoisted out of
// the loop as constants (a real kernel's operands come from memory). 8 chains, not 12: with a temporary each, 12
// would not fit the 16 ymm registers; 8 chains' 16 multiplies on two pipes still outlast one chain's latency.
constexpr int kInt8Avx2Chains = 8;
__attribute__((target("avx2"))) double peakInt8Avx2(std::int64_t iterations) {
  __m256i acc[kInt8Avx2Chains];
  for (int q = 0; q < kInt8Avx2Chains; ++q) acc[q] = _mm256_set1_epi32(q);
  volatile int va = 0x01020304, vones = 0x00010001;
  const __m256i a = _mm256_set1_epi32(va), ones = _mm256_set1_epi32(vones);
  for (std::int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 8
    for (int q = 0; q < kInt8Avx2Chains; ++q)
      acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_maddubs_epi16(a, acc[q]), ones));
  }
  __m256i s = acc[0];
  for (int q = 1; q < kInt8Avx2Chains; ++q) s = _mm256_add_epi32(s, acc[q]);
  alignas(32) int out[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  double sum = 0;
  for (int v : out) sum += v;
  return sum;
}
#endif

struct Route {
  double (*run)(std::int64_t);
  const char* name;
  double operationsPerIteration;  // FLOPs (2 per float lane of an FMA) or int8 MACs, one thread, one iteration
};

Route float32Route() {
#if defined(RNNKIT_PEAK_X86)
  if (simdLevel() == SimdLevel::Avx512) return {peakFloat32Avx512, "avx512", 2.0 * kChains * 16};
  if (simdLevel() == SimdLevel::Avx2) return {peakFloat32Avx2, "avx2", 2.0 * kChains * 8};
#endif
  return {peakFloat32Baseline, "baseline", 2.0 * kChains};
}

Route int8Route() {
#if defined(RNNKIT_PEAK_X86)
  if (simdLevel() == SimdLevel::Avx512 && cpuHasVnni()) return {peakInt8Vnni, "avx512vnni", kChains * 64.0};
  if (simdLevel() != SimdLevel::Baseline) return {peakInt8Avx2, "avx2", kInt8Avx2Chains * 32.0};
#endif
  return {nullptr, "", 0};
}

// Every thread of the pool runs `run` once (one index each, as readAcrossPool splits its reads). The pool hands out
// chunks dynamically, and a caller whose workers are slow to wake would run both chunks itself, one after the
// other (half the peak, measured so): each chunk first waits until every chunk has started, so that all of them
// run at once. The wait gives up after a second (a pool whose workers never come measures what it has).
PeakRun acrossPool(const Route& r, std::int64_t iterations, ThreadPool& pool) {
  if (!r.run) return {0, 0};
  const std::size_t threads = static_cast<std::size_t>(pool.size());
  std::vector<double> partial(threads, 0);
  std::atomic<std::size_t> started{0};
  pool.parallelFor(threads, 1, [&](std::size_t t0, std::size_t t1) {
    started.fetch_add(t1 - t0);
    const auto giveUp = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (started.load() < threads && std::chrono::steady_clock::now() < giveUp) std::this_thread::yield();
    for (std::size_t t = t0; t < t1; ++t) partial[t] = r.run(iterations);
  });
  double sum = 0;
  for (double v : partial) sum += v;
  return {r.operationsPerIteration * (double)iterations * (double)threads, sum};
}

}  // namespace

PeakRun peakFloat32AcrossPool(std::int64_t iterations, ThreadPool& pool) {
  return acrossPool(float32Route(), iterations, pool);
}

const char* peakFloat32KernelName() { return float32Route().name; }

PeakRun peakInt8AcrossPool(std::int64_t iterations, ThreadPool& pool) {
  return acrossPool(int8Route(), iterations, pool);
}

const char* peakInt8KernelName() { return int8Route().name; }

}  // namespace rnnkit::cpu
