// The fused element-wise kernels of each cell: one pass per time step over [B, H] that adds the two projections,
// applies the gate activations and updates the state (forward), or turns dh/dc into the gate gradients (backward).
#include <cmath>
#include <cstring>

#include "cpu_backend.h"

namespace rnnkit::cpu {

namespace {

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

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

void forwardRow(const CellForwardStep& s, int b) {
  const int H = s.hidden;
  const float* gi = s.gi + (std::size_t)b * s.ldgi;
  const float* gh = s.gh + (std::size_t)b * s.ldgh;
  const float* hp = s.hPrev + (std::size_t)b * H;
  float* hn = s.hNext + (std::size_t)b * H;
  float* y = s.y ? s.y + (std::size_t)b * s.ldy : nullptr;
  switch (s.cell) {
    case CellKind::RnnTanh:
      for (int j = 0; j < H; ++j) hn[j] = std::tanh(gi[j] + gh[j]);
      break;
    case CellKind::RnnRelu:
      for (int j = 0; j < H; ++j) {
        float a = gi[j] + gh[j];
        hn[j] = a > 0.f ? a : 0.f;
      }
      break;
    case CellKind::Lstm: {
      const float* cp = s.cPrev + (std::size_t)b * H;
      float* cn = s.cNext + (std::size_t)b * H;
      float* sv = s.saved ? s.saved + (std::size_t)b * 4 * H : nullptr;
      for (int j = 0; j < H; ++j) {
        float i = sigmoid(gi[j] + gh[j]);
        float f = sigmoid(gi[H + j] + gh[H + j]);
        float g = std::tanh(gi[2 * H + j] + gh[2 * H + j]);
        float o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
        float c = f * cp[j] + i * g;
        cn[j] = c;
        hn[j] = o * std::tanh(c);
        if (sv) {
          sv[j] = i;
          sv[H + j] = f;
          sv[2 * H + j] = g;
          sv[3 * H + j] = o;
        }
      }
      break;
    }
    case CellKind::Gru: {
      float* sv = s.saved ? s.saved + (std::size_t)b * 4 * H : nullptr;
      for (int j = 0; j < H; ++j) {
        float r = sigmoid(gi[j] + gh[j]);
        float z = sigmoid(gi[H + j] + gh[H + j]);
        float ghn = gh[2 * H + j];
        // reset-after: r scales the recurrent projection; reset-before: gh's n column already holds W_hn(r*h)+b_hn.
        float n = std::tanh(gi[2 * H + j] + (s.resetAfter ? r * ghn : ghn));
        hn[j] = (1.f - z) * n + z * hp[j];
        if (sv) {
          sv[j] = r;
          sv[H + j] = z;
          sv[2 * H + j] = n;
          sv[3 * H + j] = s.resetAfter ? ghn : r * hp[j];
        }
      }
      break;
    }
  }
  if (y) std::memcpy(y, hn, sizeof(float) * H);
}

void holdRowBackward(const CellBackwardStep& s, int b) {
  const int H = s.hidden;
  const int G = gateCount(s.cell);
  std::memcpy(s.dhPrev + (std::size_t)b * H, s.dh + (std::size_t)b * H, sizeof(float) * H);
  if (s.dcPrev) std::memcpy(s.dcPrev + (std::size_t)b * H, s.dc + (std::size_t)b * H, sizeof(float) * H);
  std::memset(s.dGi + (std::size_t)b * s.ldgi, 0, sizeof(float) * G * H);
  if (s.dGh != s.dGi) std::memset(s.dGh + (std::size_t)b * s.ldgh, 0, sizeof(float) * G * H);
}

void backwardRow(const CellBackwardStep& s, int b) {
  const int H = s.hidden;
  const float* dhIn = s.dh + (std::size_t)b * H;
  const float* dy = s.dy ? s.dy + (std::size_t)b * s.ldy : nullptr;
  const float* hp = s.hPrev + (std::size_t)b * H;
  const float* hn = s.hNext + (std::size_t)b * H;
  float* dGi = s.dGi + (std::size_t)b * s.ldgi;
  float* dGh = s.dGh + (std::size_t)b * s.ldgh;
  float* dhp = s.dhPrev + (std::size_t)b * H;
  switch (s.cell) {
    case CellKind::RnnTanh:
      for (int j = 0; j < H; ++j) {
        float dh = dhIn[j] + (dy ? dy[j] : 0.f);
        dGi[j] = dh * (1.f - hn[j] * hn[j]);
        dhp[j] = 0.f;
      }
      break;
    case CellKind::RnnRelu:
      for (int j = 0; j < H; ++j) {
        float dh = dhIn[j] + (dy ? dy[j] : 0.f);
        dGi[j] = hn[j] > 0.f ? dh : 0.f;
        dhp[j] = 0.f;
      }
      break;
    case CellKind::Lstm: {
      const float* sv = s.saved + (std::size_t)b * 4 * H;
      const float* cp = s.cPrev + (std::size_t)b * H;
      const float* cn = s.cNext + (std::size_t)b * H;
      const float* dcIn = s.dc + (std::size_t)b * H;
      float* dcp = s.dcPrev + (std::size_t)b * H;
      for (int j = 0; j < H; ++j) {
        float i = sv[j], f = sv[H + j], g = sv[2 * H + j], o = sv[3 * H + j];
        float dh = dhIn[j] + (dy ? dy[j] : 0.f);
        float tc = std::tanh(cn[j]);
        float dc = dcIn[j] + dh * o * (1.f - tc * tc);
        dGi[j] = dc * g * i * (1.f - i);
        dGi[H + j] = dc * cp[j] * f * (1.f - f);
        dGi[2 * H + j] = dc * i * (1.f - g * g);
        dGi[3 * H + j] = dh * tc * o * (1.f - o);
        dcp[j] = dc * f;
        dhp[j] = 0.f;
      }
      break;
    }
    case CellKind::Gru: {
      const float* sv = s.saved + (std::size_t)b * 4 * H;
      for (int j = 0; j < H; ++j) {
        float r = sv[j], z = sv[H + j], n = sv[2 * H + j], extra = sv[3 * H + j];
        float dh = dhIn[j] + (dy ? dy[j] : 0.f);
        float dnPre = dh * (1.f - z) * (1.f - n * n);
        float dzPre = dh * (hp[j] - n) * z * (1.f - z);
        dhp[j] = dh * z;
        dGi[H + j] = dzPre;
        dGi[2 * H + j] = dnPre;
        if (s.resetAfter) {
          // n = tanh(gi_n + r * ghn): r's gradient goes through ghn, and the recurrent side of n is scaled by r.
          float drPre = dnPre * extra * r * (1.f - r);
          dGi[j] = drPre;
          dGh[j] = drPre;
          dGh[H + j] = dzPre;
          dGh[2 * H + j] = dnPre * r;
        } else {
          // r's gradient needs dn_pre x W_hn first: gruResetGateBackward fills dGi[r] (dGh aliases dGi here).
          dGi[j] = 0.f;
        }
      }
      break;
    }
  }
}

}  // namespace

void CpuBackend::cellForward(const CellForwardStep& s) {
  const int G = gateCount(s.cell);
  parallelRows(s.batch, (std::size_t)s.hidden * G * 8, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      if (rowActive(s.lengths, (int)b, s.t))
        forwardRow(s, (int)b);
      else
        holdRow(s, (int)b);
    }
  });
}

void CpuBackend::cellBackward(const CellBackwardStep& s) {
  const int G = gateCount(s.cell);
  parallelRows(s.batch, (std::size_t)s.hidden * G * 8, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      if (rowActive(s.lengths, (int)b, s.t))
        backwardRow(s, (int)b);
      else
        holdRowBackward(s, (int)b);
    }
  });
}

void CpuBackend::gruResetGate(const CellForwardStep& s, float* rh) {
  const int H = s.hidden;
  parallelRows(s.batch, (std::size_t)H * 4, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const float* gi = s.gi + b * s.ldgi;
      const float* gh = s.gh + b * s.ldgh;
      const float* hp = s.hPrev + b * H;
      float* out = rh + b * H;
      for (int j = 0; j < H; ++j) out[j] = sigmoid(gi[j] + gh[j]) * hp[j];
    }
  });
}

void CpuBackend::gruResetGateBackward(const CellBackwardStep& s, const float* drh) {
  const int H = s.hidden;
  parallelRows(s.batch, (std::size_t)H * 4, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      if (!rowActive(s.lengths, (int)b, s.t)) continue;
      const float* sv = s.saved + b * 4 * H;
      const float* hp = s.hPrev + b * H;
      const float* d = drh + b * H;
      float* dG = s.dGi + b * s.ldgi;
      float* dhp = s.dhPrev + b * H;
      for (int j = 0; j < H; ++j) {
        float r = sv[j];
        dG[j] = d[j] * hp[j] * r * (1.f - r);
        dhp[j] += d[j] * r;
      }
    }
  });
}

}  // namespace rnnkit::cpu
