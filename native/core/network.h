// A recurrent network on one backend: the stacked (optionally bidirectional) recurrent layers, an optional dense
// head, its parameters and gradients, the loss, and an optimizer. Host data in, host data out; everything between
// stays in backend memory. Not thread-safe: the caller runs one method at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "device_buffer.h"
#include "network_spec.h"
#include "optimizer.h"
#include "recurrent_layer.h"

namespace rnnkit {

// A sequence batch. The input is `x` (dense, shape [T, B, I] or, with batchFirst, [B, T, I]) or `tokens`
// (shape [T, B] or [B, T]) as the network's spec says. Empty vectors mean absent: zero initial states, every row of
// full length.
struct SequenceInput {
  bool batchFirst = false;
  std::vector<long long> shape;
  std::vector<float> x;
  std::vector<int32_t> tokens;
  std::vector<int32_t> lengths;  // [B], each in [1, T]
  std::vector<float> h0, c0;     // [L*D, B, H]
};

struct SequenceOutput {
  std::vector<float> output;  // the head's logits, or the top layer's y: [T, B, F] or [B, T, F]
  std::vector<long long> shape;
  std::vector<float> hn, cn;  // [L*D, B, H]; cn only for LSTM
};

struct OutputGradient {
  std::vector<float> dOutput;  // the shape of SequenceOutput::output; empty = zero
  std::vector<float> dhn, dcn;
};

struct InputGradient {
  std::vector<float> dx;  // the shape of the input x (dense input only)
  std::vector<float> dh0, dc0;
};

enum class LossKind { SoftmaxCrossEntropy, MeanSquaredError };

struct LossTarget {
  LossKind kind = LossKind::SoftmaxCrossEntropy;
  std::vector<int32_t> classes;  // cross-entropy: [T, B] or [B, T] class ids, negative = ignored
  std::vector<float> values;     // mse: the output's shape
};

struct LossResult {
  double loss = 0;
  InputGradient grads;
};

struct TrainStepResult {
  double loss = 0;
  double gradNorm = 0;
};

class Network {
 public:
  Network(Backend& backend, const NetworkSpec& spec);

  const NetworkSpec& spec() const { return spec_; }
  const ParamLayout& layout() const { return layout_; }
  Backend& backend() { return be_; }
  // Bytes of backend memory held (parameters, gradients, optimizer state, workspace).
  std::size_t memoryBytes() const;

  SequenceOutput forward(const SequenceInput& in, bool train);
  // Backpropagate an upstream gradient through the last training forward; accumulates parameter gradients.
  InputGradient backward(const OutputGradient& grad);
  // Loss of the last training forward's output against the target, backpropagated (accumulating).
  LossResult lossBackward(const LossTarget& target);

  void zeroGrad();
  // Scale the gradients so that their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_);
  // returns the norm before clipping.
  double clipGradNorm(double maxNorm);
  double gradNorm();

  void setOptimizer(const OptimizerConfig& config);
  Optimizer* optimizer() { return optimizer_.get(); }
  void optimizerStep();

  // zeroGrad, training forward, loss, backward, optional clipping (clipNorm > 0), optimizer step.
  TrainStepResult trainStep(const SequenceInput& in, const LossTarget& target, double clipNorm);

  std::vector<float> getParam(const std::string& name) const;
  void setParam(const std::string& name, const float* data, std::size_t n);
  std::vector<float> getGrad(const std::string& name) const;
  std::vector<float> getOptimizerState(const std::string& slot) const;
  void setOptimizerState(const std::string& slot, const float* data, std::size_t n);

 private:
  struct Shape {
    int T = 0, B = 0;
    bool batchFirst = false;
  };
  Shape checkInput(const SequenceInput& in) const;
  LayerWeights weights(int layer, int dir);
  RecurrentLayer& layer(int k, int d) { return *layers_[(std::size_t)k * spec_.directions() + d]; }
  // Time-major copy of a batch-first [B, T, F] host array (or a plain copy when time-major).
  void uploadSequence(float* dst, const float* src, const Shape& s, int features);
  void uploadSequence(int32_t* dst, const int32_t* src, const Shape& s);
  std::vector<float> downloadSequence(const float* src, const Shape& s, int features);
  void backwardFrom(const float* dOutput, const float* dhn, const float* dcn, InputGradient* out);
  void initParams();

  Backend& be_;
  NetworkSpec spec_;
  ParamLayout layout_;
  DeviceBuffer params_, grads_;
  std::vector<std::unique_ptr<RecurrentLayer>> layers_;
  std::unique_ptr<Optimizer> optimizer_;

  // Inputs and activations of the last forward, in backend memory.
  DeviceBuffer x_, tokens_, lengths_, h0_, c0_, hn_, cn_;
  std::vector<DeviceBuffer> ys_;  // per layer [T*B, D*H] when training; two ping-pong buffers otherwise
  DeviceBuffer output_, dOutput_, dys_[2], dx_, dh0_, dc0_, targets_, staging_;
  Shape last_;
  bool haveTrainForward_ = false;
  bool lastHadLengths_ = false;
  bool lastHadH0_ = false;
};

}  // namespace rnnkit
