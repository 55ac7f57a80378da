// A stack of recurrent layers (one or two directions each), PyTorch's nn.RNN/LSTM/GRU: parameters
// `weight_ih_l{k}[_reverse]` etc. The output is every step's top-layer output (directions concatenated or summed),
// or, without returnSequences, only the last step of each direction (its final hidden state).
#pragma once

#include <memory>
#include <vector>

#include "recurrent_layer.h"
#include "stage.h"

namespace rnnkit {

class RecurrentStage final : public Stage {
 public:
  RecurrentStage(Backend& be, const StageSpec& spec, int inputFeatures, bool oneHotInput);
  void declareParams(ParamLayout& layout) override;
  void initParams(Random& rng, float* host) const override;
  Activations forward(const PassContext& ctx, const Activations& in) override;
  const float* backward(const PassContext& ctx, const Activations& in, const float* dOut, bool needInputGrad) override;
  int statePerRow() const override { return spec_.numLayers * spec_.directions() * spec_.hiddenSize; }
  bool hasCellState() const override { return rnnkit::hasCellState(spec_.cell); }

 private:
  LayerWeights weights(const PassContext& ctx, int k, int d) const;
  RecurrentLayer& layer(int k, int d) { return *layers_[(std::size_t)k * spec_.directions() + d]; }
  LayerInput layerInput(const Activations& in, int k);
  // The int8 forms of every layer's weights, made (again) when the parameters' version differs from quantized_.
  void quantize(const PassContext& ctx);
  // The float32 step forms ([W_ih | W_hh] per layer, Backend::stepGemvPack) for batch-1 steps, made (again) when the
  // parameters' version differs from stepPackedVersion_. False when the backend or the cell has no such form.
  bool packForSteps(const PassContext& ctx);

  Backend& be_;
  StageSpec spec_;
  int in_;
  bool oneHot_;
  std::vector<std::unique_ptr<RecurrentLayer>> layers_;
  struct Offsets {
    std::size_t wih, whh, bih, bhh;
  };
  std::vector<Offsets> offsets_;
  std::vector<std::size_t> sizes_;  // floats per tensor, in declaration order
  std::vector<std::size_t> starts_;

  std::vector<DeviceBuffer> ys_;      // per layer [N, D*H] when training; two alternating buffers otherwise
  std::vector<DeviceBuffer> masks_;   // dropout masks between layers (training)
  std::vector<DeviceBuffer> dropped_; // the masked inputs of layers 1..L-1 (training)
  std::vector<float> maskHost_;
  bool dropoutApplied_ = false;
  bool train_ = false;
  DeviceBuffer out_, hn_, cn_, dTop_, dhn_, dys_[2], dIn_;
  std::vector<DeviceBuffer> qwih_, qwhh_;  // per (layer, direction), for int8 inference
  std::vector<DeviceBuffer> qwhhStep_;     // W_hh in the backend's fused int8 step form, where it has one
  uint64_t quantized_ = 0;                 // the parameters' version they were made from (0: none)
  std::vector<DeviceBuffer> stepPacked_;   // per (layer, direction), for float32 batch-1 steps
  uint64_t stepPackedVersion_ = 0;
};

}  // namespace rnnkit
