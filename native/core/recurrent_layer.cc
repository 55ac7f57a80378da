#include "recurrent_layer.h"

#include <utility>

namespace rnnkit {

namespace {
// Cells whose two biases only ever appear as a sum: both are folded into the input projection once per sequence.
// The reset-after GRU keeps b_hn inside r * (W_hn h + b_hn), so its recurrent bias stays in the per-step GEMM.
bool foldsBiases(CellKind cell) { return cell != CellKind::Gru; }
}  // namespace

RecurrentLayer::RecurrentLayer(Backend& backend, CellKind cell, bool resetAfter, GateActivation gate, int inputSize,
                               int hidden, bool reverse)
    : be_(backend),
      cell_(cell),
      resetAfter_(resetAfter),
      gate_(gate),
      input_(inputSize),
      hidden_(hidden),
      reverse_(reverse),
      gates_(gateCount(cell)),
      bias_(&backend),
      gi_(&backend),
      gh_(&backend),
      hs_(&backend),
      cs_(&backend),
      saved_(&backend),
      rh_(&backend),
      dGi_(&backend),
      dGh_(&backend),
      dh_{DeviceBuffer(&backend), DeviceBuffer(&backend)},
      dc_{DeviceBuffer(&backend), DeviceBuffer(&backend)},
      stepPanels_(&backend),
      tokenTable_(&backend) {}

void RecurrentLayer::releaseWorkspace() {
  for (DeviceBuffer* b : {&bias_, &gi_, &gh_, &hs_, &cs_, &saved_, &rh_, &dGi_, &dGh_, &dh_[0], &dh_[1], &dc_[0],
                          &dc_[1], &stepPanels_, &tokenTable_})
    b->release();
  biasVersion_ = 0;
  tableVersion_ = 0;
}

StepWeights RecurrentLayer::prepareStepWeights(const float* W, bool transB, int N, int K, int rows, int steps,
                                               int cellGates) {
  return rnnkit::prepareStepWeights(be_, stepPanels_, W, transB, N, K, transB ? K : N, rows, steps, cellGates);
}

void RecurrentLayer::forward(const LayerWeights& w, const LayerInput& in, int T, int B, const int32_t* lengths,
                             const float* h0, const float* c0, float* y, int ldy, float* hn, float* cn, bool train) {
  const int H = hidden_, GH = gates_ * H;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H;
  const bool lstm = hasCellState(cell_);
  const bool gruBefore = cell_ == CellKind::Gru && !resetAfter_;

  // Input projection for every time step at once: gi = X W_ih^T + b_ih (+ b_hh where folded).
  // The folded biases are kept while the weights' version stays (every stream step would fold them again).
  const float* inputBias = w.bih;
  if (foldsBiases(cell_)) {
    if (!w.version || w.version != biasVersion_) {
      float* folded = bias_.reserveFloats(GH);
      be_.copy(folded, w.bih, sizeof(float) * GH);
      be_.axpy(GH, 1.f, w.bhh, folded);
      biasVersion_ = w.version;
    }
    inputBias = bias_.floats();
  }
  // A single step (a stream) runs its input product together with the recurrent one, in one pass over both
  // weight matrices: at batch 1 the step is bound by reading the weights, not by arithmetic.
  const bool singleStep = T == 1 && !in.tokens && !gruBefore;
  // int8 products (inference only; the reset-before GRU, whose n gate multiplies r * h, stays in float32).
  const bool int8 = !train && w.qwhh && !gruBefore && (in.tokens || w.qwih);
  // int8 inference over at least as many tokens as the vocabulary: gi is a table of one row per token id (its W_ih
  // column plus the bias, the same sums), which every step reads through the step's tokens (giTokens), instead of a
  // copy per token and step (8 MiB for the char-rnn's batch 32 x 64 steps, written, then read back from L3).
  const bool tokenTable = in.tokens && int8 && N >= (std::size_t)input_;
  // The table is kept while the weights' version stays.
  float* gi = tokenTable ? tokenTable_.reserveFloats((std::size_t)input_ * GH) : gi_.reserveFloats(N * GH);
  if (tokenTable) {
    if (!w.version || w.version != tableVersion_) {
      if (vocabIds_.size() != (std::size_t)input_) {
        vocabIds_.resize((std::size_t)input_);
        for (int v = 0; v < input_; ++v) vocabIds_[(std::size_t)v] = v;
      }
      be_.gatherColumns(w.wih, GH, input_, inputBias, vocabIds_.data(), input_, gi, GH);
      tableVersion_ = w.version;
    }
  } else if (in.tokens) {
    be_.gatherColumns(w.wih, GH, input_, inputBias, in.tokens, (int)N, gi, GH);
  } else if (int8 && !singleStep) {
    // gi = bias + the int8 product, the bias added as the product is written.
    Int8Product p{(int)N, in.x, in.ldx, w.qwih, GH, input_, 0.f, gi, GH};
    p.bias = inputBias;
    be_.gemmInt8Products(&p, 1);
  } else {
    be_.broadcastRows(gi, (int)N, GH, GH, inputBias);
    if (singleStep) {
      // done with the recurrent product, in the loop
    } else {
      be_.gemm(false, true, (int)N, GH, input_, 1.f, in.x, in.ldx, w.wih, input_, 1.f, gi, GH);
    }
  }

  const int slots = train ? T + 1 : 2;
  float* hs = hs_.reserveFloats((std::size_t)slots * BH);
  float* cs = lstm ? cs_.reserveFloats((std::size_t)slots * BH) : nullptr;
  float* gh = gh_.reserveFloats((std::size_t)B * GH);
  float* saved = nullptr;
  if (train && savedWidth(cell_)) saved = saved_.reserveFloats(N * savedWidth(cell_) * H);
  float* rh = gruBefore ? rh_.reserveFloats(BH) : nullptr;

  auto slotPtr = [&](float* base, int step, bool next) -> float* {
    if (train) {
      int t = reverse_ ? T - 1 - step : step;
      return base + (std::size_t)(next ? nextSlot(t) : prevSlot(t)) * BH;
    }
    return base + (std::size_t)((step + (next ? 1 : 0)) & 1) * BH;
  };

  float* start = slotPtr(hs, 0, false);
  if (h0) be_.copy(start, h0, sizeof(float) * BH); else be_.fill(start, BH, 0.f);
  if (lstm) {
    float* cstart = slotPtr(cs, 0, false);
    if (c0) be_.copy(cstart, c0, sizeof(float) * BH); else be_.fill(cstart, BH, 0.f);
  }

  // Every step multiplies by W_hh^T (reset-before GRU: two row blocks of it, left as they are).
  const StepWeights whh =
      gruBefore || int8 ? StepWeights{} : prepareStepWeights(w.whh, true, GH, H, B, T, singleStep ? 0 : gates_);

  CellForwardStep step;
  step.cell = cell_;
  step.resetAfter = resetAfter_;
  step.gate = gate_;
  step.batch = B;
  step.hidden = H;
  step.ldgi = GH;
  step.ldgh = GH;
  step.ldy = ldy;
  step.lengths = lengths;
  for (int s = 0; s < T; ++s) {
    const int t = reverse_ ? T - 1 - s : s;
    step.t = t;
    step.gi = tokenTable ? gi : gi + (std::size_t)t * B * GH;
    step.giTokens = tokenTable ? in.tokens + (std::size_t)t * B : nullptr;
    step.gh = gh;
    step.hPrev = slotPtr(hs, s, false);
    step.hNext = slotPtr(hs, s, true);
    step.cPrev = lstm ? slotPtr(cs, s, false) : nullptr;
    step.cNext = lstm ? slotPtr(cs, s, true) : nullptr;
    step.y = y ? y + (std::size_t)t * B * ldy : nullptr;
    step.saved = saved ? saved + (std::size_t)t * B * savedWidth(cell_) * H : nullptr;
    if (gruBefore) {
      // r and z see W_hh h; n sees W_hn (r*h), which needs r first.
      be_.broadcastRows(gh, B, GH, GH, w.bhh);
      be_.gemm(false, true, B, 2 * H, H, 1.f, step.hPrev, H, w.whh, H, 1.f, gh, GH);
      be_.gruResetGate(step, rh);
      be_.gemm(false, true, B, H, H, 1.f, rh, H, w.whh + (std::size_t)2 * H * H, H, 1.f, gh + 2 * H, GH);
    } else if (int8 && !singleStep && w.qwhhStep) {
      // The recurrent product and the cell update in one pass of the backend's own.
      be_.int8RecurrentStep(step, gh, w.qwhhStep, foldsBiases(cell_) ? nullptr : w.bhh);
      continue;
    } else if (int8) {
      if (!foldsBiases(cell_)) be_.broadcastRows(gh, B, GH, GH, w.bhh);
      const float beta = foldsBiases(cell_) ? 0.f : 1.f;
      if (singleStep) {
        // A stream step: the input and recurrent products in one pass, as in float32.
        const Int8Product products[2] = {{B, in.x, in.ldx, w.qwih, GH, input_, 1.f, gi, GH},
                                         {B, step.hPrev, H, w.qwhh, GH, H, beta, gh, GH}};
        be_.gemmInt8Products(products, 2);
      } else {
        be_.gemmInt8(B, step.hPrev, H, w.qwhh, GH, H, beta, gh, GH);
      }
    } else if (w.stepPacked && B == 1 && T == 1) {
      // A stream step of one row: gh = [W_ih | W_hh] [x; h] in one pass (gi holds the folded biases), or
      // gh = W_hh h after a one-hot input (gi holds the looked-up columns). Only cells that sum gi and gh get here.
      be_.stepGemv(w.stepPacked, GH, in.tokens ? nullptr : in.x, in.tokens ? 0 : input_, step.hPrev, H, gh);
    } else if (singleStep) {
      if (!foldsBiases(cell_)) be_.broadcastRows(gh, B, GH, GH, w.bhh);
      const RowProduct products[2] = {
          {B, GH, input_, in.x, in.ldx, w.wih, input_, 1.f, gi, GH},
          {B, GH, H, step.hPrev, H, w.whh, H, foldsBiases(cell_) ? 0.f : 1.f, gh, GH},
      };
      be_.gemmRowProducts(products, 2);
    } else {
      // The recurrent product and the cell update, which the backend may fuse.
      be_.recurrentStep(step, gh, whh, foldsBiases(cell_) ? nullptr : w.bhh);
      continue;
    }
    be_.cellForward(step);
  }
  if (hn) be_.copy(hn, slotPtr(hs, T - 1, true), sizeof(float) * BH);
  if (cn && lstm) be_.copy(cn, slotPtr(cs, T - 1, true), sizeof(float) * BH);
}

void RecurrentLayer::backward(const LayerWeights& w, const LayerInput& in, int T, int B, const int32_t* lengths,
                              const float* dy, int ldy, const float* dhn, const float* dcn, float* dx, int ldx,
                              float* dh0, float* dc0) {
  const int H = hidden_, GH = gates_ * H, SW = savedWidth(cell_);
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H;
  const bool lstm = hasCellState(cell_);
  const bool gruAfter = cell_ == CellKind::Gru && resetAfter_;
  const bool gruBefore = cell_ == CellKind::Gru && !resetAfter_;

  float* dGi = dGi_.reserveFloats(N * GH);
  float* dGh = gruAfter ? dGh_.reserveFloats(N * GH) : dGi;
  float* dh[2] = {dh_[0].reserveFloats(BH), dh_[1].reserveFloats(BH)};
  float* dc[2] = {nullptr, nullptr};
  if (lstm) {
    dc[0] = dc_[0].reserveFloats(BH);
    dc[1] = dc_[1].reserveFloats(BH);
  }
  float* drh = gruBefore ? rh_.reserveFloats(BH) : nullptr;
  if (dhn) be_.copy(dh[0], dhn, sizeof(float) * BH); else be_.fill(dh[0], BH, 0.f);
  if (lstm) {
    if (dcn) be_.copy(dc[0], dcn, sizeof(float) * BH); else be_.fill(dc[0], BH, 0.f);
  }

  const float* hs = hs_.floats();
  const float* cs = lstm ? cs_.floats() : nullptr;
  const float* saved = saved_.floats();

  // Every step multiplies by W_hh (reset-before GRU: two row blocks of it, left as they are).
  const StepWeights whh = gruBefore ? StepWeights{} : prepareStepWeights(w.whh, false, H, GH, B, T);

  CellBackwardStep step;
  step.cell = cell_;
  step.resetAfter = resetAfter_;
  step.gate = gate_;
  step.batch = B;
  step.hidden = H;
  step.ldy = ldy;
  step.ldgi = GH;
  step.ldgh = GH;
  step.lengths = lengths;
  int cur = 0;
  for (int s = 0; s < T; ++s) {
    const int t = reverse_ ? s : T - 1 - s;  // the opposite of the forward's order
    step.t = t;
    step.saved = SW ? saved + (std::size_t)t * B * SW * H : nullptr;
    step.hPrev = hs + (std::size_t)prevSlot(t) * BH;
    step.hNext = hs + (std::size_t)nextSlot(t) * BH;
    step.cPrev = lstm ? cs + (std::size_t)prevSlot(t) * BH : nullptr;
    step.cNext = lstm ? cs + (std::size_t)nextSlot(t) * BH : nullptr;
    step.dy = dy ? dy + (std::size_t)t * B * ldy : nullptr;
    step.dh = dh[cur];
    step.dc = dc[cur];
    step.dGi = dGi + (std::size_t)t * B * GH;
    step.dGh = dGh + (std::size_t)t * B * GH;
    step.dhPrev = dh[cur ^ 1];
    step.dcPrev = dc[cur ^ 1];
    be_.cellBackward(step);
    if (gruBefore) {
      be_.gemm(false, false, B, H, H, 1.f, step.dGi + 2 * H, GH, w.whh + (std::size_t)2 * H * H, H, 0.f, drh, H);
      be_.gruResetGateBackward(step, drh);
      be_.gemm(false, false, B, H, 2 * H, 1.f, step.dGi, GH, w.whh, H, 1.f, step.dhPrev, H);
    } else {
      be_.gemmStep(B, 1.f, step.dGh, GH, whh, 1.f, step.dhPrev, H);
    }
    cur ^= 1;
  }
  if (dh0) be_.copy(dh0, dh[cur], sizeof(float) * BH);
  if (dc0 && lstm) be_.copy(dc0, dc[cur], sizeof(float) * BH);

  // Weight gradients over all time steps at once.
  const float* hPrevAll = hs + (std::size_t)(reverse_ ? 1 : 0) * BH;  // the state before step t, for t = 0..T-1
  if (in.tokens)
    be_.scatterAddColumns(dGi, (int)N, GH, GH, in.tokens, w.dwih, input_);
  else
    be_.gemm(true, false, GH, input_, (int)N, 1.f, dGi, GH, in.x, in.ldx, 1.f, w.dwih, input_);
  be_.columnSumAdd(dGi, (int)N, GH, GH, w.dbih);
  if (gruBefore) {
    be_.gemm(true, false, 2 * H, H, (int)N, 1.f, dGi, GH, hPrevAll, H, 1.f, w.dwhh, H);
    // The n rows of W_hh multiply r*h, kept in the saved activations.
    be_.gemm(true, false, H, H, (int)N, 1.f, dGi + 2 * H, GH, saved + 3 * H, SW * H, 1.f,
             w.dwhh + (std::size_t)2 * H * H, H);
  } else {
    be_.gemm(true, false, GH, H, (int)N, 1.f, dGh, GH, hPrevAll, H, 1.f, w.dwhh, H);
  }
  be_.columnSumAdd(dGh, (int)N, GH, GH, w.dbhh);
  if (dx && !in.tokens) be_.gemm(false, false, (int)N, input_, GH, 1.f, dGi, GH, w.wih, input_, 1.f, dx, ldx);
}

}  // namespace rnnkit
