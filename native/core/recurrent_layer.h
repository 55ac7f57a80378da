// One direction of one recurrent layer over a whole sequence: the input projection hoisted out of the time loop as
// one GEMM, then per step the recurrent GEMM and the cell's fused kernel. Backward walks the steps in reverse order
// keeping every gate gradient, and forms the weight gradients after the loop as three large GEMMs.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "device_buffer.h"

namespace rnnkit {

struct LayerWeights {
  const float* wih;  // [G*H, I] (or [G*H, V] for one-hot input)
  const float* whh;  // [G*H, H]
  const float* bih;  // [G*H]
  const float* bhh;  // [G*H]
  float* dwih;
  float* dwhh;
  float* dbih;
  float* dbhh;
  // int8 forms of wih and whh (Backend::int8PackWeights) for an int8 inference pass, else null; wih's is null for
  // a one-hot input too (a lookup, no product).
  const void* qwih = nullptr;
  const void* qwhh = nullptr;
  // whh in the backend's fused int8 step form (Backend::int8PackStepWeights) where it has one, else null.
  const void* qwhhStep = nullptr;
  // [W_ih | W_hh] (W_hh alone after a one-hot input) in the backend's step form (Backend::stepGemvPack) for a
  // float32 inference pass of one step of one row, else null.
  const float* stepPacked = nullptr;
  // The parameters' version these weights hold (PassContext::paramsVersion; 0: unknown), so that what the layer
  // derives from them (the folded biases) is kept while it stays the same.
  uint64_t version = 0;
};

// The layer's input, time-major [T*B, I]: dense rows, or token ids of a one-hot input over `inputSize` symbols.
struct LayerInput {
  const float* x = nullptr;
  int ldx = 0;
  const int32_t* tokens = nullptr;
};

class RecurrentLayer {
 public:
  RecurrentLayer(Backend& backend, CellKind cell, bool resetAfter, GateActivation gate, int inputSize, int hidden,
                 bool reverse);

  // y receives this direction's output columns (row stride ldy); h0/c0 may be null (zero state).
  // With train = true the activations backward needs are kept until the next forward.
  void forward(const LayerWeights& w, const LayerInput& in, int T, int B, const int32_t* lengths, const float* h0,
               const float* c0, float* y, int ldy, float* hn, float* cn, bool train);

  // Needs the training forward that preceded it (same input). dy (row stride ldy), dhn and dcn may be null.
  // Accumulates into the weight gradients of w and, when dx is given, into dx (row stride ldx);
  // writes dh0/dc0 when given.
  void backward(const LayerWeights& w, const LayerInput& in, int T, int B, const int32_t* lengths, const float* dy,
                int ldy, const float* dhn, const float* dcn, float* dx, int ldx, float* dh0, float* dc0);

  // Drop the workspace kept between calls.
  void releaseWorkspace();

 private:
  // W (op(W) is N x K) set up for `steps` products with `rows` rows each, packed into stepPanels_ where the backend
  // has a faster layout for it; cellGates > 0: W_hh for Backend::recurrentStep.
  StepWeights prepareStepWeights(const float* W, bool transB, int N, int K, int rows, int steps, int cellGates = 0);

  // The state slot before / after time step t in the training layout [T+1, B, H].
  int prevSlot(int t) const { return reverse_ ? t + 1 : t; }
  int nextSlot(int t) const { return reverse_ ? t : t + 1; }

  Backend& be_;
  CellKind cell_;
  bool resetAfter_;
  GateActivation gate_;
  int input_, hidden_;
  bool reverse_;
  int gates_;

  DeviceBuffer bias_;     // b_ih + b_hh, folded into the input projection where the cell allows it
  uint64_t biasVersion_ = 0;  // the weights' version bias_ holds (0: none)
  DeviceBuffer gi_;       // [T*B, G*H] input projection
  DeviceBuffer gh_;       // [B, G*H] recurrent projection of one step
  DeviceBuffer hs_, cs_;  // states: [T+1, B, H] when training, two ping-pong slots otherwise
  DeviceBuffer saved_;    // [T*B, savedWidth*H]
  DeviceBuffer rh_;       // [B, H] reset-before GRU: r*h, and in backward d(r*h)
  DeviceBuffer dGi_, dGh_;
  DeviceBuffer dh_[2], dc_[2];
  DeviceBuffer stepPanels_;  // W_hh in the backend's step layout, for the pass under way (forward or backward)
  std::vector<int32_t> vocabIds_;  // 0 .. inputSize-1: the rows of an int8 pass's token table (CPU only)
  DeviceBuffer tokenTable_;        // that table: each token id's W_ih column plus the bias
  uint64_t tableVersion_ = 0;      // the weights' version tokenTable_ holds (0: none)
};

}  // namespace rnnkit
