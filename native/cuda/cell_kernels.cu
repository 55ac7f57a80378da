// The fused element-wise kernels of each cell, as native/cpu/cell_kernels.cc: one thread per (batch row b, hidden
// unit j) of one time step. forwardElement / backwardElement are the CPU's forwardRow / backwardRow with the loop
// over j replaced by the thread's j; holdElement / holdElementBackward are holdRow / holdRowBackward. The kernels are
// templates over the gate activation, and each launch picks the instance for the layer's.
#include "cuda_backend.h"
#include "gate_activation.cuh"
#include "kernel_util.cuh"

namespace rnnkit::cuda {

namespace {

constexpr int kCellThreads = 128;

__device__ __forceinline__ bool rowActive(const int32_t* lengths, int b, int t) {
  return lengths == nullptr || t < lengths[b];
}

// Rows that do not take part at this step keep their state and output zeros.
__device__ __forceinline__ void holdElement(const CellForwardStep& s, int b, int j, int width) {
  const int H = s.hidden;
  s.hNext[(std::size_t)b * H + j] = s.hPrev[(std::size_t)b * H + j];
  if (s.cNext) s.cNext[(std::size_t)b * H + j] = s.cPrev[(std::size_t)b * H + j];
  if (s.y) s.y[(std::size_t)b * s.ldy + j] = 0.f;
  if (s.saved)
    for (int k = 0; k < width; ++k) s.saved[(std::size_t)b * width * H + (std::size_t)k * H + j] = 0.f;
}

template <typename Gate>
__device__ __forceinline__ void forwardElement(const CellForwardStep& s, int b, int j) {
  const int H = s.hidden;
  const float* gi = s.gi + (std::size_t)b * s.ldgi;
  const float* gh = s.gh + (std::size_t)b * s.ldgh;
  const float* hp = s.hPrev + (std::size_t)b * H;
  float* hn = s.hNext + (std::size_t)b * H;
  float h = 0.f;
  switch (s.cell) {
    case CellKind::RnnTanh:
      h = tanhf(gi[j] + gh[j]);
      break;
    case CellKind::RnnRelu: {
      float a = gi[j] + gh[j];
      h = a > 0.f ? a : 0.f;
      break;
    }
    case CellKind::Lstm: {
      const float* cp = s.cPrev + (std::size_t)b * H;
      float* cn = s.cNext + (std::size_t)b * H;
      float i = Gate::forward(gi[j] + gh[j]);
      float f = Gate::forward(gi[H + j] + gh[H + j]);
      float g = tanhf(gi[2 * H + j] + gh[2 * H + j]);
      float o = Gate::forward(gi[3 * H + j] + gh[3 * H + j]);
      float c = f * cp[j] + i * g;
      cn[j] = c;
      h = o * tanhf(c);
      if (s.saved) {
        float* sv = s.saved + (std::size_t)b * 4 * H;
        sv[j] = i;
        sv[H + j] = f;
        sv[2 * H + j] = g;
        sv[3 * H + j] = o;
      }
      break;
    }
    case CellKind::Gru: {
      // Reset-after: r scales the recurrent projection of n; reset-before: gh's n column already holds
      // W_hn(r*h) + b_hn.
      float r = Gate::forward(gi[j] + gh[j]);
      float z = Gate::forward(gi[H + j] + gh[H + j]);
      float ghn = gh[2 * H + j];
      float n = tanhf(gi[2 * H + j] + (s.resetAfter ? r * ghn : ghn));
      h = (1.f - z) * n + z * hp[j];
      if (s.saved) {
        float* sv = s.saved + (std::size_t)b * 4 * H;
        sv[j] = r;
        sv[H + j] = z;
        sv[2 * H + j] = n;
        sv[3 * H + j] = s.resetAfter ? ghn : r * hp[j];
      }
      break;
    }
  }
  hn[j] = h;
  if (s.y) s.y[(std::size_t)b * s.ldy + j] = h;
}

template <typename Gate>
__global__ void cellForwardKernel(const CellForwardStep s, int width) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= s.hidden) return;
  RNNKIT_ROWS_2D(b, s.batch) {
    if (rowActive(s.lengths, b, s.t))
      forwardElement<Gate>(s, b, j);
    else
      holdElement(s, b, j, width);
  }
}

__device__ __forceinline__ void holdElementBackward(const CellBackwardStep& s, int b, int j, int G) {
  const int H = s.hidden;
  s.dhPrev[(std::size_t)b * H + j] = s.dh[(std::size_t)b * H + j];
  if (s.dcPrev) s.dcPrev[(std::size_t)b * H + j] = s.dc[(std::size_t)b * H + j];
  for (int k = 0; k < G; ++k) s.dGi[(std::size_t)b * s.ldgi + (std::size_t)k * H + j] = 0.f;
  if (s.dGh != s.dGi)
    for (int k = 0; k < G; ++k) s.dGh[(std::size_t)b * s.ldgh + (std::size_t)k * H + j] = 0.f;
}

template <typename Gate>
__device__ __forceinline__ void backwardElement(const CellBackwardStep& s, int b, int j) {
  const int H = s.hidden;
  const float* dhIn = s.dh + (std::size_t)b * H;
  const float* hp = s.hPrev + (std::size_t)b * H;
  const float* hn = s.hNext + (std::size_t)b * H;
  float* dGi = s.dGi + (std::size_t)b * s.ldgi;
  float* dGh = s.dGh + (std::size_t)b * s.ldgh;
  float* dhp = s.dhPrev + (std::size_t)b * H;
  const float* sv = s.saved ? s.saved + (std::size_t)b * 4 * H : nullptr;
  // totalDh: the gradient from later steps plus this step's output gradient, when there is one.
  const float dh = s.dy ? dhIn[j] + s.dy[(std::size_t)b * s.ldy + j] : dhIn[j];
  switch (s.cell) {
    case CellKind::RnnTanh:
      dGi[j] = dh * (1.f - hn[j] * hn[j]);
      dhp[j] = 0.f;
      break;
    case CellKind::RnnRelu:
      dGi[j] = hn[j] > 0.f ? dh : 0.f;
      dhp[j] = 0.f;
      break;
    case CellKind::Lstm: {
      const float* cp = s.cPrev + (std::size_t)b * H;
      const float* cn = s.cNext + (std::size_t)b * H;
      const float* dcIn = s.dc + (std::size_t)b * H;
      float* dcp = s.dcPrev + (std::size_t)b * H;
      float* dG = dGi;
      const float i = sv[j], f = sv[H + j], g = sv[2 * H + j], o = sv[3 * H + j];
      const float tc = tanhf(cn[j]);
      const float dc = dcIn[j] + dh * o * (1.f - tc * tc);
      dG[j] = Gate::gradient(dc * g, i);
      dG[H + j] = Gate::gradient(dc * cp[j], f);
      dG[2 * H + j] = dc * i * (1.f - g * g);
      dG[3 * H + j] = Gate::gradient(dh * tc, o);
      dcp[j] = dc * f;
      dhp[j] = 0.f;
      break;
    }
    case CellKind::Gru: {
      // h' = (1-z)*n + z*h. Reset-after: n = tanh(gi_n + r*ghn), so r's gradient goes through ghn (kept in the
      // saved activations) and the recurrent side of n is scaled by r. Reset-before: r's gradient needs
      // dn_pre x W_hn first, so gruResetGateBackward fills it in later (dGh aliases dGi there).
      const float r = sv[j], z = sv[H + j], n = sv[2 * H + j], extra = sv[3 * H + j];
      const float dnPre = dh * (1.f - z) * (1.f - n * n);
      const float dzPre = Gate::gradient(dh * (hp[j] - n), z);
      dhp[j] = dh * z;
      dGi[H + j] = dzPre;
      dGi[2 * H + j] = dnPre;
      if (s.resetAfter) {
        const float drPre = Gate::gradient(dnPre * extra, r);
        dGi[j] = drPre;
        dGh[j] = drPre;
        dGh[H + j] = dzPre;
        dGh[2 * H + j] = dnPre * r;
      } else {
        dGi[j] = 0.f;
      }
      break;
    }
  }
}

template <typename Gate>
__global__ void cellBackwardKernel(const CellBackwardStep s, int G) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= s.hidden) return;
  RNNKIT_ROWS_2D(b, s.batch) {
    if (rowActive(s.lengths, b, s.t))
      backwardElement<Gate>(s, b, j);
    else
      holdElementBackward(s, b, j, G);
  }
}

// Every row, as on the CPU (a held row's r*h is never used: its n column is not read by holdElement).
template <typename Gate>
__global__ void gruResetGateKernel(const CellForwardStep s, float* rh) {
  const int H = s.hidden;
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= H) return;
  RNNKIT_ROWS_2D(b, s.batch) {
    const float* gi = s.gi + (std::size_t)b * s.ldgi;
    const float* gh = s.gh + (std::size_t)b * s.ldgh;
    const float* hp = s.hPrev + (std::size_t)b * H;
    float* out = rh + (std::size_t)b * H;
    out[j] = Gate::forward(gi[j] + gh[j]) * hp[j];
  }
}

template <typename Gate>
__global__ void gruResetGateBackwardKernel(const CellBackwardStep s, const float* drh) {
  const int H = s.hidden;
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= H) return;
  RNNKIT_ROWS_2D(b, s.batch) {
    if (!rowActive(s.lengths, b, s.t)) continue;
    const float* sv = s.saved + (std::size_t)b * 4 * H;
    const float* hp = s.hPrev + (std::size_t)b * H;
    const float* d = drh + (std::size_t)b * H;
    float* dG = s.dGi + (std::size_t)b * s.ldgi;
    float* dhp = s.dhPrev + (std::size_t)b * H;
    float r = sv[j];
    dG[j] = Gate::gradient(d[j] * hp[j], r);
    dhp[j] += d[j] * r;
  }
}

dim3 cellGrid(int batch, int hidden) { return grid2d(batch, hidden, kCellThreads); }

}  // namespace

void CudaBackend::cellForward(const CellForwardStep& s) {
  if (s.batch <= 0 || s.hidden <= 0) return;
  useDevice();
  const dim3 grid = cellGrid(s.batch, s.hidden);
  if (s.gate == GateActivation::HardSigmoid)
    cellForwardKernel<HardSigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, savedWidth(s.cell));
  else
    cellForwardKernel<SigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, savedWidth(s.cell));
  checkLaunch("cellForward");
}

void CudaBackend::cellBackward(const CellBackwardStep& s) {
  if (s.batch <= 0 || s.hidden <= 0) return;
  useDevice();
  const dim3 grid = cellGrid(s.batch, s.hidden);
  if (s.gate == GateActivation::HardSigmoid)
    cellBackwardKernel<HardSigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, gateCount(s.cell));
  else
    cellBackwardKernel<SigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, gateCount(s.cell));
  checkLaunch("cellBackward");
}

void CudaBackend::gruResetGate(const CellForwardStep& s, float* rh) {
  if (s.batch <= 0 || s.hidden <= 0) return;
  useDevice();
  const dim3 grid = cellGrid(s.batch, s.hidden);
  if (s.gate == GateActivation::HardSigmoid)
    gruResetGateKernel<HardSigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, rh);
  else
    gruResetGateKernel<SigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, rh);
  checkLaunch("gruResetGate");
}

void CudaBackend::gruResetGateBackward(const CellBackwardStep& s, const float* drh) {
  if (s.batch <= 0 || s.hidden <= 0) return;
  useDevice();
  const dim3 grid = cellGrid(s.batch, s.hidden);
  if (s.gate == GateActivation::HardSigmoid)
    gruResetGateBackwardKernel<HardSigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, drh);
  else
    gruResetGateBackwardKernel<SigmoidGate><<<grid, kCellThreads, 0, stream_>>>(s, drh);
  checkLaunch("gruResetGateBackward");
}

}  // namespace rnnkit::cuda
