// Optimizers over the flat parameter vector, with PyTorch's update rules. The state (moments, momentum buffers)
// lives in backend memory beside the parameters; the update is one fused kernel per step.
#pragma once

#include <string>
#include <vector>

#include "backend.h"
#include "device_buffer.h"

namespace rnnkit {

enum class OptimizerKind { Sgd, Adam, AdamW, RmsProp };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::Adam;
  double lr = 1e-3;
  double momentum = 0, dampening = 0;
  bool nesterov = false;
  double weightDecay = 0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  double alpha = 0.99;
  bool centered = false;
  bool maximize = false;

  // PyTorch's defaults for the kind (lr, weight decay, eps, ...).
  static OptimizerConfig defaults(OptimizerKind kind);
  void validate() const;
};

OptimizerKind parseOptimizerKind(const std::string& name);
const char* optimizerKindName(OptimizerKind kind);

class Optimizer {
 public:
  Optimizer(Backend& backend, const OptimizerConfig& config, std::size_t size);
  void step(float* params, const float* grads);
  long long steps() const { return steps_; }
  const OptimizerConfig& config() const { return config_; }
  // Update the learning rate (schedules) without touching the state.
  void setLearningRate(double lr) { config_.lr = lr; }

  // The state by name (for checkpoints): each slot is the same size as the parameter vector.
  std::vector<std::string> stateNames() const;
  float* stateSlot(const std::string& name);
  void setSteps(long long steps) { steps_ = steps; }
  std::size_t size() const { return size_; }

 private:
  Backend& be_;
  OptimizerConfig config_;
  std::size_t size_;
  long long steps_ = 0;
  DeviceBuffer a_, b_, c_;  // Adam: m, v, vmax; RMSProp: square_avg, momentum, grad_avg; SGD: momentum
};

}  // namespace rnnkit
