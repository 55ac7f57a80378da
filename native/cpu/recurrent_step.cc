#include "recurrent_step.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "thread_pool.h"

namespace rnnkit::cpu {

namespace {
// Below this many flops per step the step runs on the calling thread (the hand-off would cost more).
constexpr double kMinFlopsPerThread = 2.0e5;
// The header before the panels: its first float holds the block width (64 bytes keep the panels aligned).
constexpr std::size_t kHeaderFloats = 16;
}  // namespace

std::size_t fusedStepFloats(int gates, int hidden, int rows) {
  if (gates <= 0 || hidden <= 0) return 0;
  const std::size_t panels = builtinPackedBFloats(true, gates * hidden, hidden, rows);
  return panels ? kHeaderFloats + panels : 0;
}

void packFusedStepWeights(int gates, int hidden, const float* whh, float* panels, int threads) {
  const int block = unitBlockFor(hidden, threads);
  std::vector<int> rowOf((std::size_t)gates * hidden);
  for (int g = 0; g < gates; ++g)
    for (int j = 0; j < hidden; ++j) rowOf[blockedColumn(gates, hidden, block, g, j)] = g * hidden + j;
  panels[0] = (float)block;
  for (std::size_t i = 1; i < kHeaderFloats; ++i) panels[i] = 0.f;
  builtinPackBRows(gates * hidden, hidden, whh, hidden, rowOf.data(), panels + kHeaderFloats);
}

void prefetchInputGates(const CellForwardStep& s, int u0, int u1) {
  const int G = gateCount(s.cell), H = s.hidden;
  // This step's input projection for these units (row b, gate g: a run of u1 - u0 floats at b * ldgi + g * H + u0)
  // was written long before and has left the caches; the update would wait on every line of it in turn, short
  // runs that the hardware prefetcher does not pick up. Ask for them now: they arrive while the product runs.
  for (int b = 0; b < s.batch; ++b)
    for (int g = 0; g < G; ++g) {
      const char* at = reinterpret_cast<const char*>(inputGatesRow(s, b) + (std::size_t)g * H + u0);
      const char* end = at + sizeof(float) * (u1 - u0);
      for (; at < end; at += 64) __builtin_prefetch(at, 0, 2);
      __builtin_prefetch(end - 1, 0, 2);
    }
}

void startFromRecurrentBias(const CellForwardStep& s, float* gh, const float* bhh, int block, int u0, int u1) {
  const int G = gateCount(s.cell), H = s.hidden;
  for (int b = 0; b < s.batch; ++b) {
    float* row = gh + (std::size_t)b * s.ldgh;
    for (int v0 = u0; v0 < u1; v0 += block) {
      const int w = std::min(block, H - v0);
      for (int g = 0; g < G; ++g) std::memcpy(row + G * v0 + g * w, bhh + (std::size_t)g * H + v0, sizeof(float) * w);
    }
  }
}

void fusedRecurrentStep(const CellForwardStep& s, float* gh, const float* packed, const float* bhh,
                        ThreadPool& pool) {
  const int G = gateCount(s.cell), H = s.hidden, B = s.batch, N = G * H;
  const int block = (int)packed[0];
  const float* panels = packed + kHeaderFloats;
  const int blocks = (H + block - 1) / block;
  // Blocks [k0, k1) on one thread: their product columns, then their update.
  auto run = [&](std::size_t k0, std::size_t k1) {
    const int u0 = (int)k0 * block, u1 = std::min(H, (int)k1 * block);
    const int n0 = G * u0, n1 = G * u1;
    prefetchInputGates(s, u0, u1);
    if (bhh) startFromRecurrentBias(s, gh, bhh, block, u0, u1);
    builtinSgemmPackedBColumns(B, N, H, 1.f, s.hPrev, H, panels, bhh ? 1.f : 0.f, gh, s.ldgh, n0, n1);
    for (int v0 = u0; v0 < u1; v0 += block)
      cellForwardUnits(s, gh + G * v0, v0, std::min(block, H - v0));
  };
  if (blocks == 1 || 2.0 * B * N * H < 2 * kMinFlopsPerThread) {
    run(0, (std::size_t)blocks);
    return;
  }
  pool.parallelFor((std::size_t)blocks, 1, run);
}

}  // namespace rnnkit::cpu
