// The CPU backend's fused recurrent time step (Backend::recurrentStep): the hidden units are cut into one block per
// thread of the pool, and W_hh's gate rows are packed so that the product's columns of one block (every gate of those
// units) lie side by side. Each thread then takes a block: its product columns, then its cell update, with no barrier
// between the two; the only wait per step is the end of the step (the next one reads all of h). Blocks as wide as a
// thread's share keep the update's loops long (blocks of 32 units measured 6-12% more CPU time than unfused steps).
#pragma once

#include <cstddef>

#include "../core/backend.h"

namespace rnnkit::cpu {

class ThreadPool;

// Block widths are multiples of this: of every micro-kernel's panel width (32 or 16), so that every block's columns
// start on a panel.
constexpr int kUnitAlign = 32;

// The block width for `hidden` units over `threads` threads.
inline int unitBlockFor(int hidden, int threads) {
  const int share = (hidden + threads - 1) / (threads < 1 ? 1 : threads);
  return (share + kUnitAlign - 1) / kUnitAlign * kUnitAlign;
}

// The product column of gate g, unit j in the blocked layout: block k = j / block (width w, the last one possibly
// narrower) holds its G * w columns from G * k * block on, gate by gate.
inline int blockedColumn(int gates, int hidden, int block, int g, int j) {
  const int u0 = j / block * block;
  const int w = hidden - u0 < block ? hidden - u0 : block;
  return gates * u0 + g * w + (j - u0);
}

// Floats of W_hh [G*H, H] packed for the fused step with `rows` rows per product (a header, then the panels); 0 when
// the step is better left to the unfused kernels (few rows: the product then reads W_hh in place).
std::size_t fusedStepFloats(int gates, int hidden, int rows);
// Packs for blocks sized to the pool's threads now; the block width is kept in the header, so the steps agree with
// the packing even if the pool is resized in between.
void packFusedStepWeights(int gates, int hidden, const float* whh, float* panels, int threads);

// One time step: step.gh's storage `gh` receives hPrev W_hh^T (+ bhh where given) in the blocked layout.
void fusedRecurrentStep(const CellForwardStep& step, float* gh, const float* panels, const float* bhh,
                        ThreadPool& pool);

// Prefetches this step's input projection (gi) of units [u0, u1) of every row, for their update.
void prefetchInputGates(const CellForwardStep& step, int u0, int u1);
// The reset-after GRU keeps b_hh in the product (r scales W_hn h + b_hn): gh's columns of units [u0, u1) in the
// blocked layout (block width `block`) start from it, as the unfused step's do.
void startFromRecurrentBias(const CellForwardStep& step, float* gh, const float* bhh, int block, int u0, int u1);

// cell_kernels.cc: the update of units [u0, u0 + n) of every row, gh of row 0's block at ghBlock (gate g's columns
// at ghBlock[g * n], row stride step.ldgh).
void cellForwardUnits(const CellForwardStep& step, const float* ghBlock, int u0, int n);

}  // namespace rnnkit::cpu
