#include "dropout_stage.h"

namespace rnnkit {

void makeDropoutMask(Backend& be, Random& rng, float rate, std::size_t n, std::vector<float>& host, DeviceBuffer& mask) {
  host.resize(n);
  const float keep = 1.f - rate, scale = 1.f / keep;
  for (std::size_t i = 0; i < n; ++i) host[i] = rng.uniform() < keep ? scale : 0.f;
  be.upload(mask.reserveFloats(n), host.data(), n * sizeof(float));
}

Activations DropoutStage::forward(const PassContext& ctx, const Activations& in) {
  applied_ = ctx.train && spec_.rate > 0.f;
  if (!applied_) return in;
  const std::size_t n = (std::size_t)in.rows * in.features;
  makeDropoutMask(*ctx.be, *ctx.rng, spec_.rate, n, host_, mask_);
  float* out = out_.reserveFloats(n);
  ctx.be->copy(out, in.data, n * sizeof(float));
  ctx.be->multiply(out, mask_.floats(), n);
  return Activations{out, nullptr, in.rows, in.features, in.sequence};
}

const float* DropoutStage::backward(const PassContext& ctx, const Activations& in, const float* dOut,
                                    bool needInputGrad) {
  if (!needInputGrad) return nullptr;
  if (!applied_) return dOut;
  const std::size_t n = (std::size_t)in.rows * in.features;
  float* dIn = dIn_.reserveFloats(n);
  ctx.be->copy(dIn, dOut, n * sizeof(float));
  ctx.be->multiply(dIn, mask_.floats(), n);
  return dIn;
}

}  // namespace rnnkit
