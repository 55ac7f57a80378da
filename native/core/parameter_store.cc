#include "parameter_store.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "error.h"

namespace rnnkit {

namespace {

void checkCount(const std::string& what, std::size_t got, std::size_t want, const std::string& of) {
  if (got != want)
    fail(ErrorCode::Shape, what + " has " + std::to_string(got) + " values, expected " + std::to_string(want) + " (" +
                               of + ")");
}

std::string shapeOf(const ParamEntry& e) {
  std::string s;
  for (int d : e.shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "shape [" + s + "]";
}

}  // namespace

ParameterStore::ParameterStore(Backend& backend, std::string noOptimizer)
    : be_(backend), noOptimizer_(std::move(noOptimizer)), params_(&backend), grads_(&backend) {}

void ParameterStore::allocate() {
  // At least one float: a model without parameters still hands the stages valid pointers.
  const std::size_t n = std::max<std::size_t>(layout_.total(), 1);
  params_.reserveFloats(n);
  grads_.reserveFloats(n);
  zeroGrad();
}

void ParameterStore::initialize(const std::vector<float>& host) {
  checkCount("the initial parameters", host.size(), layout_.total(), "the flat parameter vector");
  be_.upload(params_.floats(), host.data(), host.size() * sizeof(float));
  ++version_;
}

std::size_t ParameterStore::memoryBytes() const {
  std::size_t bytes = params_.bytes() + grads_.bytes();
  if (optimizer_) bytes += optimizer_->stateNames().size() * layout_.total() * sizeof(float);
  return bytes;
}

void ParameterStore::zeroGrad() { be_.fill(grads_.floats(), layout_.total(), 0.f); }

double ParameterStore::gradNorm() { return std::sqrt(be_.sumSquares(grads_.floats(), layout_.total())); }

double ParameterStore::clipGradNorm(double maxNorm) {
  if (!(maxNorm > 0) || !std::isfinite(maxNorm)) fail(ErrorCode::Argument, "clipNorm must be a finite number > 0");
  const double norm = gradNorm();
  clipGradNorm(maxNorm, norm);
  return norm;
}

void ParameterStore::clipGradNorm(double maxNorm, double norm) {
  const double coef = maxNorm / (norm + 1e-6);
  if (coef < 1.0) be_.scale(grads_.floats(), layout_.total(), (float)coef);
}

bool ParameterStore::applyStep(double loss, double gradNorm, double clipNorm) {
  if (!std::isfinite(loss) || !std::isfinite(gradNorm)) {
    zeroGrad();
    return false;
  }
  if (clipNorm > 0) clipGradNorm(clipNorm, gradNorm);
  optimizerStep();
  return true;
}

void ParameterStore::refuseStep(double loss, double gradNorm) {
  const auto text = [](double v) { return std::isnan(v) ? std::string("NaN") : v > 0 ? "Infinity" : "-Infinity"; };
  fail(ErrorCode::NonFinite,
       std::string("training step not applied: ") +
           (std::isfinite(loss) ? "the gradient norm is " + text(gradNorm) : "the loss is " + text(loss)) +
           " (a non-finite value in the batch, or a learning rate too high); the weights and the optimizer state are "
           "unchanged");
}

void ParameterStore::setOptimizer(const OptimizerConfig& config) {
  optimizer_ = std::make_unique<Optimizer>(be_, config, layout_.total());
}

Optimizer& ParameterStore::requireOptimizer() {
  if (!optimizer_) fail(ErrorCode::State, noOptimizer_);
  return *optimizer_;
}

void ParameterStore::optimizerStep() {
  requireOptimizer().step(params_.floats(), grads_.floats());
  ++version_;
}

std::vector<float> ParameterStore::get(const std::string& name) const {
  const ParamEntry& e = layout_.at(name);
  std::vector<float> out(e.size);
  be_.download(out.data(), params_.floats() + e.offset, e.size * sizeof(float));
  return out;
}

std::vector<float> ParameterStore::getGrad(const std::string& name) const {
  const ParamEntry& e = layout_.at(name);
  std::vector<float> out(e.size);
  be_.download(out.data(), grads_.floats() + e.offset, e.size * sizeof(float));
  return out;
}

void ParameterStore::set(const std::string& name, const float* data, std::size_t n) {
  const ParamEntry& e = layout_.at(name);
  checkCount(name, n, e.size, shapeOf(e));
  be_.upload(params_.floats() + e.offset, data, n * sizeof(float));
  ++version_;
}

std::vector<float> ParameterStore::getOptimizerState(const std::string& slot) {
  float* state = requireOptimizer().stateSlot(slot);
  std::vector<float> out(layout_.total());
  be_.download(out.data(), state, out.size() * sizeof(float));
  return out;
}

void ParameterStore::setOptimizerState(const std::string& slot, const float* data, std::size_t n) {
  float* state = requireOptimizer().stateSlot(slot);
  checkCount(slot, n, layout_.total(), "shape of the flat parameter vector");
  be_.upload(state, data, n * sizeof(float));
}

}  // namespace rnnkit
