// The flat parameter vector of a model and everything laid out like it: the parameters, their gradients and the
// optimizer's state (one slot per moment, each the size of the parameters), with get/set by name and a version that
// every write of the weights bumps. Network, GraphNetwork and Seq2Seq each own one; what they keep derived from the
// weights (packed step panels, int8 forms, a decoder's token table) is valid for one version().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "device_buffer.h"
#include "network_spec.h"
#include "optimizer.h"

namespace rnnkit {

class ParameterStore {
 public:
  // noOptimizer: the error a step without an optimizer gives, saying how the model gets one.
  ParameterStore(Backend& backend, std::string noOptimizer);

  // The model declares its tensors here first (stages add theirs), then allocates.
  ParamLayout& layout() { return layout_; }
  const ParamLayout& layout() const { return layout_; }
  // Backend memory for the parameters and zeroed gradients of the declared layout.
  void allocate();
  // The initial weights, host-side in layout order.
  void initialize(const std::vector<float>& host);

  std::size_t size() const { return layout_.total(); }
  float* params() const { return params_.floats(); }
  float* grads() const { return grads_.floats(); }
  // Never 0 once initialized: caches use 0 for "nothing made yet".
  uint64_t version() const { return version_; }
  // Parameters, gradients and optimizer state.
  std::size_t memoryBytes() const;

  void zeroGrad();
  double gradNorm();
  // PyTorch's clip_grad_norm_: scales the gradients so that their global L2 norm is at most maxNorm (a finite
  // number > 0); returns the norm before clipping.
  double clipGradNorm(double maxNorm);
  // The same, with the norm already measured (a training step measures it once for its non-finite guard).
  void clipGradNorm(double maxNorm, double norm);
  // The end of every training step, once its gradients and their norm are made: the non-finite guard, clipping to
  // clipNorm (0: none) and the optimizer's update. The guard comes first: one non-finite value would otherwise reach
  // every weight through the optimizer (and its moment estimates) for good, and clipping cannot help (NaN / NaN is
  // NaN). False when loss or norm is not finite: the gradients are zeroed and nothing else changes.
  bool applyStep(double loss, double gradNorm, double clipNorm);
  // ERR_RNNKIT_NON_FINITE for a step that applyStep refused, saying which value was not finite.
  [[noreturn]] static void refuseStep(double loss, double gradNorm);

  void setOptimizer(const OptimizerConfig& config);
  Optimizer* optimizer() { return optimizer_.get(); }
  // ERR_RNNKIT_STATE (the message given at construction) when no optimizer is set.
  Optimizer& requireOptimizer();
  // One update of the parameters from the gradients; bumps the version.
  void optimizerStep();

  std::vector<float> get(const std::string& name) const;
  std::vector<float> getGrad(const std::string& name) const;
  // ERR_RNNKIT_SHAPE unless n is the tensor's size; bumps the version.
  void set(const std::string& name, const float* data, std::size_t n);
  // An optimizer state slot over the whole flat vector (checkpoints).
  std::vector<float> getOptimizerState(const std::string& slot);
  void setOptimizerState(const std::string& slot, const float* data, std::size_t n);

 private:
  Backend& be_;
  std::string noOptimizer_;
  ParamLayout layout_;
  DeviceBuffer params_, grads_;
  std::unique_ptr<Optimizer> optimizer_;
  uint64_t version_ = 1;
};

}  // namespace rnnkit
