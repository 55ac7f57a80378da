#include "recurrent_stage.h"

#include <cmath>

#include "dropout_stage.h"

namespace rnnkit {

RecurrentStage::RecurrentStage(Backend& be, const StageSpec& spec, int inputFeatures, bool oneHotInput)
    : be_(be),
      spec_(spec),
      in_(inputFeatures),
      oneHot_(oneHotInput),
      out_(&be),
      hn_(&be),
      cn_(&be),
      dTop_(&be),
      dhn_(&be),
      dys_{DeviceBuffer(&be), DeviceBuffer(&be)},
      dIn_(&be) {
  for (int k = 0; k < spec_.numLayers; ++k)
    for (int d = 0; d < spec_.directions(); ++d)
      layers_.push_back(std::make_unique<RecurrentLayer>(be, spec_.cell, spec_.resetAfter, spec_.gateActivation,
                                                         k == 0 ? in_ : spec_.hiddenSize * spec_.directions(),
                                                         spec_.hiddenSize, d == 1 || spec_.goBackwards));
}

void RecurrentStage::declareParams(ParamLayout& layout) {
  const int G = gateCount(spec_.cell), H = spec_.hiddenSize;
  for (int k = 0; k < spec_.numLayers; ++k) {
    for (int d = 0; d < spec_.directions(); ++d) {
      const bool rev = d == 1;
      const int input = k == 0 ? in_ : H * spec_.directions();
      Offsets o;
      o.wih = layout.add(spec_.prefix + recurrentParamName("weight_ih", k, rev), {G * H, input});
      o.whh = layout.add(spec_.prefix + recurrentParamName("weight_hh", k, rev), {G * H, H});
      o.bih = layout.add(spec_.prefix + recurrentParamName("bias_ih", k, rev), {G * H});
      o.bhh = layout.add(spec_.prefix + recurrentParamName("bias_hh", k, rev), {G * H});
      offsets_.push_back(o);
      for (std::size_t n : {(std::size_t)G * H * input, (std::size_t)G * H * H, (std::size_t)G * H, (std::size_t)G * H})
        sizes_.push_back(n);
      starts_.insert(starts_.end(), {o.wih, o.whh, o.bih, o.bhh});
    }
  }
}

void RecurrentStage::initParams(Random& rng, float* host) const {
  // PyTorch's default: every recurrent tensor U(-1/sqrt(H), 1/sqrt(H)).
  const float bound = 1.f / std::sqrt((float)spec_.hiddenSize);
  for (std::size_t i = 0; i < starts_.size(); ++i)
    for (std::size_t j = 0; j < sizes_[i]; ++j) host[starts_[i] + j] = rng.uniform(-bound, bound);
}

LayerWeights RecurrentStage::weights(const PassContext& ctx, int k, int d) const {
  const Offsets& o = offsets_[(std::size_t)k * spec_.directions() + d];
  LayerWeights w{ctx.params + o.wih, ctx.params + o.whh, ctx.params + o.bih, ctx.params + o.bhh,
                 ctx.grads + o.wih,  ctx.grads + o.whh,  ctx.grads + o.bih,  ctx.grads + o.bhh};
  w.version = ctx.paramsVersion;
  return w;
}

void RecurrentStage::quantize(const PassContext& ctx) {
  if (quantized_ == ctx.paramsVersion) return;
  const int H = spec_.hiddenSize, G = gateCount(spec_.cell), D = spec_.directions();
  const std::size_t count = (std::size_t)spec_.numLayers * D;
  while (qwih_.size() < count) qwih_.emplace_back(&be_);
  while (qwhh_.size() < count) qwhh_.emplace_back(&be_);
  while (qwhhStep_.size() < count) qwhhStep_.emplace_back(&be_);
  for (int k = 0; k < spec_.numLayers; ++k) {
    const int input = k == 0 ? in_ : H * D;
    for (int d = 0; d < D; ++d) {
      const std::size_t i = (std::size_t)k * D + d;
      const Offsets& o = offsets_[i];
      if (!(k == 0 && oneHot_)) {
        qwih_[i].reserve(be_.int8WeightsBytes(G * H, input));
        be_.int8PackWeights(ctx.params + o.wih, G * H, input, qwih_[i].floats());
      }
      qwhh_[i].reserve(be_.int8WeightsBytes(G * H, H));
      be_.int8PackWeights(ctx.params + o.whh, G * H, H, qwhh_[i].floats());
      // The reset-before GRU's n gate needs r first: it never takes the fused step.
      const bool fusable = !(spec_.cell == CellKind::Gru && !spec_.resetAfter);
      if (const std::size_t bytes = fusable ? be_.int8StepWeightsBytes(G, H) : 0) {
        qwhhStep_[i].reserve(bytes);
        be_.int8PackStepWeights(ctx.params + o.whh, G, H, qwhhStep_[i].floats());
      } else {
        qwhhStep_[i].release();
      }
    }
  }
  quantized_ = ctx.paramsVersion;
}

bool RecurrentStage::packForSteps(const PassContext& ctx) {
  // The cells whose input and recurrent products only ever appear summed (a GRU keeps W_hn h apart for r * (...)).
  if (spec_.cell == CellKind::Gru) return false;
  const int H = spec_.hiddenSize, G = gateCount(spec_.cell), D = spec_.directions();
  if (be_.stepGemvFloats(G * H, in_, H) == 0) return false;
  if (stepPackedVersion_ == ctx.paramsVersion) return true;
  const std::size_t count = (std::size_t)spec_.numLayers * D;
  while (stepPacked_.size() < count) stepPacked_.emplace_back(&be_);
  for (int k = 0; k < spec_.numLayers; ++k) {
    // A one-hot first layer looks its input columns up: only W_hh is multiplied.
    const int input = k == 0 ? (oneHot_ ? 0 : in_) : H * D;
    for (int d = 0; d < D; ++d) {
      const std::size_t i = (std::size_t)k * D + d;
      const Offsets& o = offsets_[i];
      float* dst = stepPacked_[i].reserveFloats(be_.stepGemvFloats(G * H, input, H));
      be_.stepGemvPack(input ? ctx.params + o.wih : nullptr, input, ctx.params + o.whh, H, G * H, dst);
    }
  }
  stepPackedVersion_ = ctx.paramsVersion;
  return true;
}

LayerInput RecurrentStage::layerInput(const Activations& in, int k) {
  if (k == 0) return oneHot_ ? LayerInput{nullptr, 0, in.tokens} : LayerInput{in.data, in_, nullptr};
  const int DH = spec_.hiddenSize * spec_.directions();
  if (dropoutApplied_) return LayerInput{dropped_[k - 1].floats(), DH, nullptr};
  return LayerInput{ys_[train_ ? k - 1 : (k - 1) % 2].floats(), DH, nullptr};
}

Activations RecurrentStage::forward(const PassContext& ctx, const Activations& in) {
  const int T = ctx.T, B = ctx.B, H = spec_.hiddenSize, D = spec_.directions(), L = spec_.numLayers;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H, DH = (std::size_t)D * H;
  const bool lstm = hasCellState();
  train_ = ctx.train;
  const bool int8 = ctx.int8 && !ctx.train && be_.supportsInt8();
  if (int8) quantize(ctx);
  // One step of one row (a stream step) in float32: the products over the step form of the weights.
  const bool stepPacked = !int8 && !ctx.train && T == 1 && B == 1 && packForSteps(ctx);
  dropoutApplied_ = ctx.train && spec_.interLayerDropout > 0.f && L > 1;

  const std::size_t buffers = train_ ? (std::size_t)L : std::min<std::size_t>(2, L);
  while (ys_.size() < buffers) ys_.emplace_back(&be_);
  if (dropoutApplied_) {
    while (masks_.size() < (std::size_t)L - 1) masks_.emplace_back(&be_);
    while (dropped_.size() < (std::size_t)L - 1) dropped_.emplace_back(&be_);
  }
  // hn is needed for the last-step output even when the caller does not ask for the state.
  float* hn = state.hn ? state.hn : hn_.reserveFloats((std::size_t)L * D * BH);
  float* cn = lstm ? (state.cn ? state.cn : cn_.reserveFloats((std::size_t)L * D * BH)) : nullptr;

  for (int k = 0; k < L; ++k) {
    float* y = ys_[train_ ? k : k % 2].reserveFloats(N * DH);
    if (k > 0 && dropoutApplied_) {
      makeDropoutMask(be_, *ctx.rng, spec_.interLayerDropout, N * DH, maskHost_, masks_[k - 1]);
      float* dropped = dropped_[k - 1].reserveFloats(N * DH);
      be_.copy(dropped, ys_[k - 1].floats(), N * DH * sizeof(float));
      be_.multiply(dropped, masks_[k - 1].floats(), N * DH);
    }
    const LayerInput li = layerInput(in, k);
    for (int d = 0; d < D; ++d) {
      const std::size_t slot = ((std::size_t)k * D + d) * BH;
      LayerWeights w = weights(ctx, k, d);
      if (int8) {
        const std::size_t i = (std::size_t)k * D + d;
        w.qwih = k == 0 && oneHot_ ? nullptr : qwih_[i].floats();
        w.qwhh = qwhh_[i].floats();
        w.qwhhStep = qwhhStep_[i].floats();
      }
      if (stepPacked) w.stepPacked = stepPacked_[(std::size_t)k * D + d].floats();
      layer(k, d).forward(w, li, T, B, ctx.lengths, state.h0 ? state.h0 + slot : nullptr,
                          state.c0 ? state.c0 + slot : nullptr, y + (std::size_t)d * H, (int)DH, hn + slot,
                          cn ? cn + slot : nullptr, train_);
    }
  }
  const float* top = ys_[train_ ? L - 1 : (L - 1) % 2].floats();
  const bool sum = spec_.merge == MergeMode::Sum && D == 2;
  const int F = spec_.recurrentOutputSize();
  if (spec_.returnSequences) {
    if (!sum) return Activations{top, nullptr, (int)N, F, true};
    float* out = out_.reserveFloats(N * H);
    be_.copy2d((int)N, H, top, (int)DH, out, H);
    be_.add2d((int)N, H, 1.f, top + H, (int)DH, out, H);
    return Activations{out, nullptr, (int)N, F, true};
  }
  // The last step of each direction is its final state: the forward direction's at each row's last valid step,
  // the backward direction's after it has read the whole row.
  float* out = out_.reserveFloats((std::size_t)B * F);
  const float* topStates = hn + (std::size_t)(L - 1) * D * BH;
  if (sum) {
    be_.copy2d(B, H, topStates, H, out, H);
    be_.add2d(B, H, 1.f, topStates + BH, H, out, H);
  } else {
    for (int d = 0; d < D; ++d) be_.copy2d(B, H, topStates + d * BH, H, out + (std::size_t)d * H, F);
  }
  return Activations{out, nullptr, B, F, false};
}

const float* RecurrentStage::backward(const PassContext& ctx, const Activations& in, const float* dOut,
                                      bool needInputGrad) {
  const int T = ctx.T, B = ctx.B, H = spec_.hiddenSize, D = spec_.directions(), L = spec_.numLayers;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H, DH = (std::size_t)D * H;
  const bool sum = spec_.merge == MergeMode::Sum && D == 2;
  const int F = spec_.recurrentOutputSize();

  const float* dTop = nullptr;  // gradient of the top layer's y [N, DH]
  const float* dhn = state.dhn;
  if (dOut && spec_.returnSequences) {
    if (!sum) {
      dTop = dOut;
    } else {
      float* d = dTop_.reserveFloats(N * DH);
      be_.copy2d((int)N, H, dOut, H, d, (int)DH);
      be_.copy2d((int)N, H, dOut, H, d + H, (int)DH);
      dTop = d;
    }
  } else if (dOut) {
    // The output was the top layer's final states: its gradient joins dhn.
    float* d = dhn_.reserveFloats((std::size_t)L * D * BH);
    if (state.dhn) be_.copy(d, state.dhn, (std::size_t)L * D * BH * sizeof(float));
    else be_.fill(d, (std::size_t)L * D * BH, 0.f);
    float* topStates = d + (std::size_t)(L - 1) * D * BH;
    for (int dir = 0; dir < D; ++dir)
      be_.add2d(B, H, 1.f, dOut + (sum ? 0 : (std::size_t)dir * H), F, topStates + dir * BH, H);
    dhn = d;
  }

  const float* dy = dTop;
  const float* result = nullptr;
  int cur = 0;
  for (int k = L - 1; k >= 0; --k) {
    float* dx = nullptr;
    int ldx = 0;
    if (k > 0) {
      dx = dys_[cur].reserveFloats(N * DH);
      ldx = (int)DH;
    } else if (needInputGrad && !oneHot_) {
      dx = dIn_.reserveFloats(N * in_);
      ldx = in_;
    }
    if (dx) be_.fill(dx, N * ldx, 0.f);
    const LayerInput li = layerInput(in, k);
    for (int d = 0; d < D; ++d) {
      const std::size_t slot = ((std::size_t)k * D + d) * BH;
      layer(k, d).backward(weights(ctx, k, d), li, T, B, ctx.lengths, dy ? dy + (std::size_t)d * H : nullptr,
                           (int)DH, dhn ? dhn + slot : nullptr, state.dcn ? state.dcn + slot : nullptr, dx, ldx,
                           state.dh0 ? state.dh0 + slot : nullptr, state.dc0 ? state.dc0 + slot : nullptr);
    }
    if (k > 0 && dropoutApplied_) be_.multiply(dx, masks_[k - 1].floats(), N * DH);
    dy = dx;
    cur ^= 1;
    if (k == 0) result = dx;
  }
  return result;
}

}  // namespace rnnkit
