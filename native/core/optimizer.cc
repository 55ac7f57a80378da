#include "optimizer.h"

#include <cmath>

#include "error.h"

namespace rnnkit {

OptimizerKind parseOptimizerKind(const std::string& name) {
  if (name == "sgd") return OptimizerKind::Sgd;
  if (name == "adam") return OptimizerKind::Adam;
  if (name == "adamw") return OptimizerKind::AdamW;
  if (name == "rmsprop") return OptimizerKind::RmsProp;
  fail(ErrorCode::Argument, "unknown optimizer '" + name + "': expected one of sgd, adam, adamw, rmsprop");
}

const char* optimizerKindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Sgd: return "sgd";
    case OptimizerKind::Adam: return "adam";
    case OptimizerKind::AdamW: return "adamw";
    case OptimizerKind::RmsProp: return "rmsprop";
  }
  return "?";
}

// The one table of optimizer defaults (PyTorch's): the JavaScript helpers (lib/optimizers.ts, which documents it)
// set nothing themselves, so optimizers.sgd() and { type: 'sgd' } both get these.
OptimizerConfig OptimizerConfig::defaults(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  switch (kind) {
    case OptimizerKind::Sgd: c.lr = 1e-3; break;
    case OptimizerKind::Adam: c.lr = 1e-3; break;
    case OptimizerKind::AdamW: c.lr = 1e-3; c.weightDecay = 1e-2; break;
    case OptimizerKind::RmsProp: c.lr = 1e-2; break;
  }
  return c;
}

void OptimizerConfig::validate() const {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) fail(ErrorCode::Argument, "optimizer: " + what);
  };
  check(std::isfinite(lr) && lr >= 0, "lr must be a finite number >= 0");
  check(std::isfinite(weightDecay) && weightDecay >= 0, "weightDecay must be >= 0");
  check(std::isfinite(momentum) && momentum >= 0, "momentum must be >= 0");
  check(std::isfinite(dampening), "dampening must be finite");
  check(!(nesterov && (momentum <= 0 || dampening != 0)), "nesterov needs momentum > 0 and dampening 0");
  check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "betas must be in [0, 1)");
  check(std::isfinite(eps) && eps >= 0, "eps must be >= 0");
  check(alpha >= 0 && alpha <= 1, "alpha must be in [0, 1]");
}

Optimizer::Optimizer(Backend& backend, const OptimizerConfig& config, std::size_t size)
    : be_(backend), config_(config), size_(size), a_(&backend), b_(&backend), c_(&backend) {
  config_.validate();
  auto zeroed = [&](DeviceBuffer& buf) { be_.fill(buf.reserveFloats(size_), size_, 0.f); };
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      if (config_.momentum != 0) zeroed(a_);
      break;
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW:
      zeroed(a_);
      zeroed(b_);
      if (config_.amsgrad) zeroed(c_);
      break;
    case OptimizerKind::RmsProp:
      zeroed(a_);
      if (config_.momentum > 0) zeroed(b_);
      if (config_.centered) zeroed(c_);
      break;
  }
}

void Optimizer::step(float* p, const float* g) {
  ++steps_;
  const OptimizerConfig& c = config_;
  switch (c.kind) {
    case OptimizerKind::Sgd: {
      SgdHyper h{(float)c.lr, (float)c.momentum, (float)c.dampening, (float)c.weightDecay, c.nesterov, c.maximize};
      be_.sgdUpdate(p, g, a_.floats(), size_, h, steps_);
      break;
    }
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW: {
      AdamHyper h{(float)c.lr, (float)c.beta1, (float)c.beta2, (float)c.eps, (float)c.weightDecay,
                  c.kind == OptimizerKind::AdamW, c.amsgrad, c.maximize};
      be_.adamUpdate(p, g, a_.floats(), b_.floats(), c_.floats(), size_, h, steps_);
      break;
    }
    case OptimizerKind::RmsProp: {
      RmspropHyper h{(float)c.lr, (float)c.alpha, (float)c.eps, (float)c.weightDecay, (float)c.momentum, c.centered,
                     c.maximize};
      be_.rmspropUpdate(p, g, a_.floats(), b_.floats(), c_.floats(), size_, h, steps_);
      break;
    }
  }
}

std::vector<std::string> Optimizer::stateNames() const {
  std::vector<std::string> names;
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      if (a_.floats()) names.push_back("momentum_buffer");
      break;
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW:
      names = {"exp_avg", "exp_avg_sq"};
      if (c_.floats()) names.push_back("max_exp_avg_sq");
      break;
    case OptimizerKind::RmsProp:
      names.push_back("square_avg");
      if (b_.floats()) names.push_back("momentum_buffer");
      if (c_.floats()) names.push_back("grad_avg");
      break;
  }
  return names;
}

float* Optimizer::stateSlot(const std::string& name) {
  switch (config_.kind) {
    case OptimizerKind::Sgd:
      if (name == "momentum_buffer" && a_.floats()) return a_.floats();
      break;
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW:
      if (name == "exp_avg") return a_.floats();
      if (name == "exp_avg_sq") return b_.floats();
      if (name == "max_exp_avg_sq" && c_.floats()) return c_.floats();
      break;
    case OptimizerKind::RmsProp:
      if (name == "square_avg") return a_.floats();
      if (name == "momentum_buffer" && b_.floats()) return b_.floats();
      if (name == "grad_avg" && c_.floats()) return c_.floats();
      break;
  }
  fail(ErrorCode::UnknownParam, "this optimizer has no state named '" + name + "'");
}

}  // namespace rnnkit
