// The fused element-wise kernels of each cell: one pass per time step over [B, H] that adds the two projections,
// applies the gate activations and updates the state (forward), or turns dh/dc into the gate gradients (backward).
// The LSTM and GRU kernels are templates over the gate activation (gate_activation.h), chosen once per step.
#include <cmath>
#include <cstring>

#include "cpu_backend.h"
#include "fast_math.h"
#include "gate_activation.h"
#include "recurrent_step.h"
#include "simd_dispatch.h"

namespace rnnkit::cpu {

namespace {

RNNKIT_INLINE float tanhf(float x) { return fastTanh(x); }

inline bool rowActive(const int32_t* lengths, int b, int t) { return lengths == nullptr || t < lengths[b]; }

// Rows that do not take part at this step keep their state and output zeros.
void holdRow(const CellForwardStep& s, int b) {
  const int H = s.hidden;
  std::memcpy(s.hNext + (std::size_t)b * H, s.hPrev + (std::size_t)b * H, sizeof(float) * H);
  if (s.cNext) std::memcpy(s.cNext + (std::size_t)b * H, s.cPrev + (std::size_t)b * H, sizeof(float) * H);
  if (s.y) std::memset(s.y + (std::size_t)b * s.ldy, 0, sizeof(float) * H);
  const int width = savedWidth(s.cell);
  if (s.saved && width) std::memset(s.saved + (std::size_t)b * width * H, 0, sizeof(float) * width * H);
}

// One row of the LSTM update; Save keeps i, f, g, o for backward. A template rather than a run-time test so that
// the loop has no branch and vectorizes.
// n units; H is the gate stride of gi and sv, Hh that of gh (H too, except in the fused step's unit blocks).
template <bool Save, typename Gate>
__attribute__((always_inline)) inline void lstmRow(int n, int H, int Hh, const float* __restrict gi,
                                                   const float* __restrict gh, const float* __restrict cp,
                                                   float* __restrict cn, float* __restrict hn, float* __restrict sv) {
  for (int j = 0; j < n; ++j) {
    float i = Gate::forward(gi[j] + gh[j]);
    float f = Gate::forward(gi[H + j] + gh[Hh + j]);
    float g = tanhf(gi[2 * H + j] + gh[2 * Hh + j]);
    float o = Gate::forward(gi[3 * H + j] + gh[3 * Hh + j]);
    float c = f * cp[j] + i * g;
    cn[j] = c;
    hn[j] = o * tanhf(c);
    if (Save) {
      sv[j] = i;
      sv[H + j] = f;
      sv[2 * H + j] = g;
      sv[3 * H + j] = o;
    }
  }
}

// One row of the GRU update. Reset-after: r scales the recurrent projection of n; reset-before: gh's n column
// already holds W_hn(r*h) + b_hn.
// Strides as in lstmRow.
template <bool Save, bool ResetAfter, typename Gate>
__attribute__((always_inline)) inline void gruRow(int n, int H, int Hh, const float* __restrict gi,
                                                  const float* __restrict gh, const float* __restrict hp,
                                                  float* __restrict hn, float* __restrict sv) {
  for (int j = 0; j < n; ++j) {
    float r = Gate::forward(gi[j] + gh[j]);
    float z = Gate::forward(gi[H + j] + gh[Hh + j]);
    float ghn = gh[2 * Hh + j];
    float n = tanhf(gi[2 * H + j] + (ResetAfter ? r * ghn : ghn));
    hn[j] = (1.f - z) * n + z * hp[j];
    if (Save) {
      sv[j] = r;
      sv[H + j] = z;
      sv[2 * H + j] = n;
      sv[3 * H + j] = ResetAfter ? ghn : r * hp[j];
    }
  }
}

// Units [u0, u0 + n) of row b, gh pointing at the row's gate columns for those units with gate stride Hh (H in the
// usual layout; n in the fused step's unit blocks); everything else in the usual layout.
template <typename Gate>
RNNKIT_INLINE void forwardUnitsOfRow(const CellForwardStep& s, int b, const float* ghRow, int Hh, int u0, int n) {
  const int H = s.hidden;
  const float* __restrict gi = inputGatesRow(s, b) + u0;
  const float* __restrict gh = ghRow;
  const float* __restrict hp = s.hPrev + (std::size_t)b * H + u0;
  float* __restrict hn = s.hNext + (std::size_t)b * H + u0;
  switch (s.cell) {
    case CellKind::RnnTanh:
      for (int j = 0; j < n; ++j) hn[j] = tanhf(gi[j] + gh[j]);
      break;
    case CellKind::RnnRelu:
      for (int j = 0; j < n; ++j) {
        float a = gi[j] + gh[j];
        hn[j] = a > 0.f ? a : 0.f;
      }
      break;
    case CellKind::Lstm: {
      const float* cp = s.cPrev + (std::size_t)b * H + u0;
      float* cn = s.cNext + (std::size_t)b * H + u0;
      if (s.saved) lstmRow<true, Gate>(n, H, Hh, gi, gh, cp, cn, hn, s.saved + (std::size_t)b * 4 * H + u0);
      else lstmRow<false, Gate>(n, H, Hh, gi, gh, cp, cn, hn, nullptr);
      break;
    }
    case CellKind::Gru: {
      float* sv = s.saved ? s.saved + (std::size_t)b * 4 * H + u0 : nullptr;
      if (s.resetAfter) {
        if (sv) gruRow<true, true, Gate>(n, H, Hh, gi, gh, hp, hn, sv);
        else gruRow<false, true, Gate>(n, H, Hh, gi, gh, hp, hn, nullptr);
      } else {
        if (sv) gruRow<true, false, Gate>(n, H, Hh, gi, gh, hp, hn, sv);
        else gruRow<false, false, Gate>(n, H, Hh, gi, gh, hp, hn, nullptr);
      }
      break;
    }
  }
  if (s.y) std::memcpy(s.y + (std::size_t)b * s.ldy + u0, hn, sizeof(float) * n);
}

template <typename Gate>
RNNKIT_INLINE void forwardRowImpl(const CellForwardStep& s, int b) {
  forwardUnitsOfRow<Gate>(s, b, s.gh + (std::size_t)b * s.ldgh, s.hidden, 0, s.hidden);
}

void holdUnits(const CellForwardStep& s, int b, int u0, int n);

// The fused step's update of units [u0, u0 + n) of every row: ghBlock points at row 0's unit block, gate g's columns
// at ghBlock[g * n] (row stride ldgh). One call per block rather than per row, so that the kernel's set-up (its
// constants) is paid once for all rows.
template <typename Gate>
RNNKIT_INLINE void forwardUnitsImpl(const CellForwardStep& s, const float* ghBlock, int u0, int n) {
  for (int b = 0; b < s.batch; ++b) {
    if (rowActive(s.lengths, b, s.t)) forwardUnitsOfRow<Gate>(s, b, ghBlock + (std::size_t)b * s.ldgh, n, u0, n);
    else holdUnits(s, b, u0, n);
  }
}

// A row that does not take part, for units [u0, u0 + n) only.
void holdUnits(const CellForwardStep& s, int b, int u0, int n) {
  const int H = s.hidden;
  const std::size_t at = (std::size_t)b * H + u0;
  std::memcpy(s.hNext + at, s.hPrev + at, sizeof(float) * n);
  if (s.cNext) std::memcpy(s.cNext + at, s.cPrev + at, sizeof(float) * n);
  if (s.y) std::memset(s.y + (std::size_t)b * s.ldy + u0, 0, sizeof(float) * n);
  const int width = savedWidth(s.cell);
  if (s.saved)
    for (int q = 0; q < width; ++q) std::memset(s.saved + ((std::size_t)b * width + q) * H + u0, 0, sizeof(float) * n);
}

void holdRowBackward(const CellBackwardStep& s, int b) {
  const int H = s.hidden;
  const int G = gateCount(s.cell);
  std::memcpy(s.dhPrev + (std::size_t)b * H, s.dh + (std::size_t)b * H, sizeof(float) * H);
  if (s.dcPrev) std::memcpy(s.dcPrev + (std::size_t)b * H, s.dc + (std::size_t)b * H, sizeof(float) * H);
  std::memset(s.dGi + (std::size_t)b * s.ldgi, 0, sizeof(float) * G * H);
  if (s.dGh != s.dGi) std::memset(s.dGh + (std::size_t)b * s.ldgh, 0, sizeof(float) * G * H);
}

// Backward of one row. HasDy: an output gradient arrives at this step; the templates keep every loop branch-free.
template <bool HasDy>
RNNKIT_INLINE float totalDh(const float* __restrict dhIn, const float* __restrict dy, int j) {
  return HasDy ? dhIn[j] + dy[j] : dhIn[j];
}

template <bool HasDy>
RNNKIT_INLINE void rnnBackwardRow(bool relu, int H, const float* __restrict dhIn, const float* __restrict dy,
                                  const float* __restrict hn, float* __restrict dG, float* __restrict dhp) {
  if (relu) {
    for (int j = 0; j < H; ++j) {
      dG[j] = hn[j] > 0.f ? totalDh<HasDy>(dhIn, dy, j) : 0.f;
      dhp[j] = 0.f;
    }
  } else {
    for (int j = 0; j < H; ++j) {
      dG[j] = totalDh<HasDy>(dhIn, dy, j) * (1.f - hn[j] * hn[j]);
      dhp[j] = 0.f;
    }
  }
}

template <bool HasDy, typename Gate>
RNNKIT_INLINE void lstmBackwardRow(int H, const float* __restrict dhIn, const float* __restrict dy,
                                   const float* __restrict sv, const float* __restrict cp,
                                   const float* __restrict cn, const float* __restrict dcIn, float* __restrict dG,
                                   float* __restrict dcp, float* __restrict dhp) {
  // The gate blocks of dG are disjoint: no iteration reads what another writes. Without saying so GCC wants more
  // run-time alias checks than it allows and leaves the loop scalar.
  RNNKIT_LOOP_INDEPENDENT
  for (int j = 0; j < H; ++j) {
    const float i = sv[j], f = sv[H + j], g = sv[2 * H + j], o = sv[3 * H + j];
    const float dh = totalDh<HasDy>(dhIn, dy, j);
    const float tc = tanhf(cn[j]);
    const float dc = dcIn[j] + dh * o * (1.f - tc * tc);
    dG[j] = Gate::gradient(dc * g, i);
    dG[H + j] = Gate::gradient(dc * cp[j], f);
    dG[2 * H + j] = dc * i * (1.f - g * g);
    dG[3 * H + j] = Gate::gradient(dh * tc, o);
    dcp[j] = dc * f;
    dhp[j] = 0.f;
  }
}

// GRU: h' = (1-z)*n + z*h. Reset-after: n = tanh(gi_n + r*ghn), so r's gradient goes through ghn (kept in the saved
// activations) and the recurrent side of n is scaled by r. Reset-before: r's gradient needs dn_pre x W_hn first, so
// gruResetGateBackward fills it in later (dGh aliases dGi there).
template <bool HasDy, bool ResetAfter, typename Gate>
RNNKIT_INLINE void gruBackwardRow(int H, const float* __restrict dhIn, const float* __restrict dy,
                                  const float* __restrict sv, const float* __restrict hp, float* __restrict dGi,
                                  float* __restrict dGh, float* __restrict dhp) {
  RNNKIT_LOOP_INDEPENDENT  // as in lstmBackwardRow
  for (int j = 0; j < H; ++j) {
    const float r = sv[j], z = sv[H + j], n = sv[2 * H + j], extra = sv[3 * H + j];
    const float dh = totalDh<HasDy>(dhIn, dy, j);
    const float dnPre = dh * (1.f - z) * (1.f - n * n);
    const float dzPre = Gate::gradient(dh * (hp[j] - n), z);
    dhp[j] = dh * z;
    dGi[H + j] = dzPre;
    dGi[2 * H + j] = dnPre;
    if (ResetAfter) {
      const float drPre = Gate::gradient(dnPre * extra, r);
      dGi[j] = drPre;
      dGh[j] = drPre;
      dGh[H + j] = dzPre;
      dGh[2 * H + j] = dnPre * r;
    } else {
      dGi[j] = 0.f;
    }
  }
}

template <bool HasDy, typename Gate>
RNNKIT_INLINE void backwardRowWith(const CellBackwardStep& s, int b) {
  const int H = s.hidden;
  const float* dhIn = s.dh + (std::size_t)b * H;
  const float* dy = HasDy ? s.dy + (std::size_t)b * s.ldy : nullptr;
  const float* hp = s.hPrev + (std::size_t)b * H;
  const float* hn = s.hNext + (std::size_t)b * H;
  float* dGi = s.dGi + (std::size_t)b * s.ldgi;
  float* dGh = s.dGh + (std::size_t)b * s.ldgh;
  float* dhp = s.dhPrev + (std::size_t)b * H;
  const float* sv = s.saved ? s.saved + (std::size_t)b * 4 * H : nullptr;
  switch (s.cell) {
    case CellKind::RnnTanh:
    case CellKind::RnnRelu:
      rnnBackwardRow<HasDy>(s.cell == CellKind::RnnRelu, H, dhIn, dy, hn, dGi, dhp);
      break;
    case CellKind::Lstm:
      lstmBackwardRow<HasDy, Gate>(H, dhIn, dy, sv, s.cPrev + (std::size_t)b * H, s.cNext + (std::size_t)b * H,
                             s.dc + (std::size_t)b * H, dGi, s.dcPrev + (std::size_t)b * H, dhp);
      break;
    case CellKind::Gru:
      if (s.resetAfter) gruBackwardRow<HasDy, true, Gate>(H, dhIn, dy, sv, hp, dGi, dGh, dhp);
      else gruBackwardRow<HasDy, false, Gate>(H, dhIn, dy, sv, hp, dGi, dGh, dhp);
      break;
  }
}

template <typename Gate>
RNNKIT_INLINE void backwardRowImpl(const CellBackwardStep& s, int b) {
  if (s.dy) backwardRowWith<true, Gate>(s, b);
  else backwardRowWith<false, Gate>(s, b);
}

// Reset-before GRU: r * h for the W_hn GEMM, and later r's gradient once d(r*h) is known.
template <typename Gate>
void resetGateRows(const CellForwardStep& s, float* rh, std::size_t b0, std::size_t b1) {
  const int H = s.hidden;
  for (std::size_t b = b0; b < b1; ++b) {
    const float* gi = inputGatesRow(s, (int)b);
    const float* gh = s.gh + b * s.ldgh;
    const float* hp = s.hPrev + b * H;
    float* out = rh + b * H;
    for (int j = 0; j < H; ++j) out[j] = Gate::forward(gi[j] + gh[j]) * hp[j];
  }
}

template <typename Gate>
void resetGateBackwardRows(const CellBackwardStep& s, const float* drh, std::size_t b0, std::size_t b1) {
  const int H = s.hidden;
  for (std::size_t b = b0; b < b1; ++b) {
    if (!rowActive(s.lengths, (int)b, s.t)) continue;
    const float* sv = s.saved + b * 4 * H;
    const float* hp = s.hPrev + b * H;
    const float* d = drh + b * H;
    float* dG = s.dGi + b * s.ldgi;
    float* dhp = s.dhPrev + b * H;
    for (int j = 0; j < H; ++j) {
      float r = sv[j];
      dG[j] = Gate::gradient(d[j] * hp[j], r);
      dhp[j] += d[j] * r;
    }
  }
}

// One dispatched kernel per gate activation, chosen once per step: the sigmoid kernels are the functions they were
// before the hard sigmoid existed (the rnn cells, which have no gates, use them too).
RNNKIT_SIMD_VARIANTS(void, forwardRowSigmoid, forwardRowImpl<SigmoidGate>, (const CellForwardStep& s, int b), (s, b))
RNNKIT_SIMD_VARIANTS(void, forwardRowHardSigmoid, forwardRowImpl<HardSigmoidGate>, (const CellForwardStep& s, int b),
                     (s, b))
RNNKIT_SIMD_VARIANTS(void, forwardUnitsSigmoid, forwardUnitsImpl<SigmoidGate>,
                     (const CellForwardStep& s, const float* gh, int u0, int n), (s, gh, u0, n))
RNNKIT_SIMD_VARIANTS(void, forwardUnitsHardSigmoid, forwardUnitsImpl<HardSigmoidGate>,
                     (const CellForwardStep& s, const float* gh, int u0, int n), (s, gh, u0, n))
RNNKIT_SIMD_VARIANTS(void, backwardRowSigmoid, backwardRowImpl<SigmoidGate>, (const CellBackwardStep& s, int b),
                     (s, b))
RNNKIT_SIMD_VARIANTS(void, backwardRowHardSigmoid, backwardRowImpl<HardSigmoidGate>,
                     (const CellBackwardStep& s, int b), (s, b))

// The rows b0..b1 of one step: Row for those that take part, Hold for the others.
template <typename Step, void (*Row)(const Step&, int), void (*Hold)(const Step&, int)>
void stepRows(const Step& s, std::size_t b0, std::size_t b1) {
  for (std::size_t b = b0; b < b1; ++b) {
    if (rowActive(s.lengths, (int)b, s.t))
      Row(s, (int)b);
    else
      Hold(s, (int)b);
  }
}

}  // namespace

void CpuBackend::cellForward(const CellForwardStep& s) {
  const int G = gateCount(s.cell);
  parallelRows(s.batch, (std::size_t)s.hidden * G * 8, [&](std::size_t b0, std::size_t b1) {
    if (s.gate == GateActivation::HardSigmoid) stepRows<CellForwardStep, forwardRowHardSigmoid, holdRow>(s, b0, b1);
    else stepRows<CellForwardStep, forwardRowSigmoid, holdRow>(s, b0, b1);
  });
}

void cellForwardUnits(const CellForwardStep& s, const float* ghBlock, int u0, int n) {
  if (s.gate == GateActivation::HardSigmoid) forwardUnitsHardSigmoid(s, ghBlock, u0, n);
  else forwardUnitsSigmoid(s, ghBlock, u0, n);
}

void CpuBackend::cellBackward(const CellBackwardStep& s) {
  const int G = gateCount(s.cell);
  parallelRows(s.batch, (std::size_t)s.hidden * G * 8, [&](std::size_t b0, std::size_t b1) {
    if (s.gate == GateActivation::HardSigmoid)
      stepRows<CellBackwardStep, backwardRowHardSigmoid, holdRowBackward>(s, b0, b1);
    else
      stepRows<CellBackwardStep, backwardRowSigmoid, holdRowBackward>(s, b0, b1);
  });
}

void CpuBackend::gruResetGate(const CellForwardStep& s, float* rh) {
  parallelRows(s.batch, (std::size_t)s.hidden * 4, [&](std::size_t b0, std::size_t b1) {
    if (s.gate == GateActivation::HardSigmoid) resetGateRows<HardSigmoidGate>(s, rh, b0, b1);
    else resetGateRows<SigmoidGate>(s, rh, b0, b1);
  });
}

void CpuBackend::gruResetGateBackward(const CellBackwardStep& s, const float* drh) {
  parallelRows(s.batch, (std::size_t)s.hidden * 4, [&](std::size_t b0, std::size_t b1) {
    if (s.gate == GateActivation::HardSigmoid) resetGateBackwardRows<HardSigmoidGate>(s, drh, b0, b1);
    else resetGateBackwardRows<SigmoidGate>(s, drh, b0, b1);
  });
}

}  // namespace rnnkit::cpu
