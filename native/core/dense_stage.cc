#include "dense_stage.h"

#include <cmath>

namespace rnnkit {

DenseStage::DenseStage(Backend& be, const StageSpec& spec, int inputFeatures)
    : spec_(spec), in_(inputFeatures), pre_(&be), out_(&be), dPre_(&be), dIn_(&be) {}

void DenseStage::declareParams(ParamLayout& layout) {
  weight_ = layout.add(spec_.prefix + "weight", {spec_.units, in_});
  bias_ = layout.add(spec_.prefix + "bias", {spec_.units});
}

void DenseStage::initParams(Random& rng, float* host) const {
  // torch.nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  const float bound = 1.f / std::sqrt((float)in_);
  for (std::size_t i = 0; i < (std::size_t)spec_.units * in_; ++i) host[weight_ + i] = rng.uniform(-bound, bound);
  for (int i = 0; i < spec_.units; ++i) host[bias_ + i] = rng.uniform(-bound, bound);
}

Activations DenseStage::forward(const PassContext& ctx, const Activations& in) {
  const int U = spec_.units, rows = in.rows;
  const bool linear = spec_.activation == Activation::Linear;
  float* out = out_.reserveFloats((std::size_t)rows * U);
  float* pre = linear ? out : pre_.reserveFloats((std::size_t)rows * U);
  ctx.be->broadcastRows(pre, rows, U, U, ctx.params + bias_);
  ctx.be->gemm(false, true, rows, U, in_, 1.f, in.data, in_, ctx.params + weight_, in_, 1.f, pre, U);
  if (!linear) {
    ctx.be->copy(out, pre, sizeof(float) * rows * U);
    ctx.be->activate((int)spec_.activation, out, rows, U);
  }
  return Activations{out, nullptr, rows, U, in.sequence};
}

const float* DenseStage::backward(const PassContext& ctx, const Activations& in, const float* dOut,
                                  bool needInputGrad) {
  const int U = spec_.units, rows = in.rows;
  if (spec_.activation == Activation::Linear) return backwardFromLogits(ctx, in, dOut, needInputGrad);
  float* dPre = dPre_.reserveFloats((std::size_t)rows * U);
  ctx.be->activationBackward((int)spec_.activation, out_.floats(), dOut, dPre, rows, U);
  return backwardFromLogits(ctx, in, dPre, needInputGrad);
}

const float* DenseStage::backwardFromLogits(const PassContext& ctx, const Activations& in, const float* dPre,
                                            bool needInputGrad) {
  const int U = spec_.units, rows = in.rows;
  ctx.be->gemm(true, false, U, in_, rows, 1.f, dPre, U, in.data, in_, 1.f, ctx.grads + weight_, in_);
  ctx.be->columnSumAdd(dPre, rows, U, U, ctx.grads + bias_);
  if (!needInputGrad) return nullptr;
  float* dIn = dIn_.reserveFloats((std::size_t)rows * in_);
  ctx.be->gemm(false, false, rows, in_, U, 1.f, dPre, U, ctx.params + weight_, in_, 0.f, dIn, in_);
  return dIn;
}

}  // namespace rnnkit
