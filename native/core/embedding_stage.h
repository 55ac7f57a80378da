// Token ids to learned vectors: `weight` [V, E], looked up per position; its gradient is a scatter-add.
#pragma once

#include "stage.h"

namespace rnnkit {

class EmbeddingStage final : public Stage {
 public:
  EmbeddingStage(Backend& be, const StageSpec& spec, int vocab);
  void declareParams(ParamLayout& layout) override;
  void initParams(Random& rng, float* host) const override;
  Activations forward(const PassContext& ctx, const Activations& in) override;
  const float* backward(const PassContext& ctx, const Activations& in, const float* dOut, bool needInputGrad) override;

 private:
  StageSpec spec_;
  int vocab_;
  std::size_t weight_ = 0, weightSize_ = 0;
  DeviceBuffer out_;
};

}  // namespace rnnkit
