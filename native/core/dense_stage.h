// A dense layer applied to every row (every time step of a sequence, or every batch row): y = act(x W^T + b),
// `weight` [U, F] and `bias` [U] as torch.nn.Linear.
#pragma once

#include "stage.h"

namespace rnnkit {

class DenseStage final : public Stage {
 public:
  DenseStage(Backend& be, const StageSpec& spec, int inputFeatures);
  void declareParams(ParamLayout& layout) override;
  void initParams(Random& rng, float* host) const override;
  Activations forward(const PassContext& ctx, const Activations& in) override;
  const float* backward(const PassContext& ctx, const Activations& in, const float* dOut, bool needInputGrad) override;

  Activation activation() const { return spec_.activation; }
  // The pre-activation output of the last forward (the logits, for a softmax layer).
  const float* logits() const { return spec_.activation == Activation::Linear ? out_.floats() : pre_.floats(); }
  // Backward from the gradient of the pre-activation output (a fused softmax cross-entropy gives it directly).
  const float* backwardFromLogits(const PassContext& ctx, const Activations& in, const float* dPre, bool needInputGrad);

 private:
  StageSpec spec_;
  int in_;
  std::size_t weight_ = 0, bias_ = 0;
  DeviceBuffer pre_, out_, dPre_, dIn_;
};

}  // namespace rnnkit
