// Inverted dropout: in training each value is kept with probability 1 - rate and scaled by 1 / (1 - rate);
// in inference the stage passes its input through.
#pragma once

#include <vector>

#include "stage.h"

namespace rnnkit {

// Fill a host mask of n values (0 or 1/(1-rate)) and upload it.
void makeDropoutMask(Backend& be, Random& rng, float rate, std::size_t n, std::vector<float>& host, DeviceBuffer& mask);

class DropoutStage final : public Stage {
 public:
  DropoutStage(Backend& be, const StageSpec& spec) : spec_(spec), mask_(&be), out_(&be), dIn_(&be) {}
  void declareParams(ParamLayout&) override {}
  void initParams(Random&, float*) const override {}
  Activations forward(const PassContext& ctx, const Activations& in) override;
  const float* backward(const PassContext& ctx, const Activations& in, const float* dOut, bool needInputGrad) override;

 private:
  StageSpec spec_;
  bool applied_ = false;
  std::vector<float> host_;
  DeviceBuffer mask_, out_, dIn_;
};

}  // namespace rnnkit
