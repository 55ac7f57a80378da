#include "embedding_stage.h"

#include <cmath>

namespace rnnkit {

EmbeddingStage::EmbeddingStage(Backend& be, const StageSpec& spec, int vocab) : spec_(spec), vocab_(vocab), out_(&be) {}

void EmbeddingStage::declareParams(ParamLayout& layout) {
  weight_ = layout.add(spec_.prefix + "weight", {vocab_, spec_.embeddingDim});
  weightSize_ = (std::size_t)vocab_ * spec_.embeddingDim;
}

void EmbeddingStage::initParams(Random& rng, float* host) const {
  // N(0, 1), as torch.nn.Embedding.
  for (std::size_t i = 0; i < weightSize_; ++i) {
    float u1 = std::max(rng.uniform(), 1e-7f), u2 = rng.uniform();
    host[weight_ + i] = std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
  }
}

Activations EmbeddingStage::forward(const PassContext& ctx, const Activations& in) {
  float* out = out_.reserveFloats((std::size_t)in.rows * spec_.embeddingDim);
  ctx.be->gatherRows(ctx.params + weight_, spec_.embeddingDim, in.tokens, in.rows, out);
  return Activations{out, nullptr, in.rows, spec_.embeddingDim, in.sequence};
}

const float* EmbeddingStage::backward(const PassContext& ctx, const Activations& in, const float* dOut, bool) {
  ctx.be->scatterAddRows(dOut, in.rows, spec_.embeddingDim, in.tokens, ctx.grads + weight_);
  return nullptr;
}

}  // namespace rnnkit
