#include "network_spec.h"

#include <algorithm>
#include <climits>

#include "error.h"

namespace rnnkit {

namespace {
// Generous, but small enough that every GEMM dimension and product of two of them fits the BLAS int interface.
constexpr int kMaxSize = 1 << 20;
constexpr int kMaxLayers = 1024;

void checkRange(const char* what, int value, int lo, int hi) {
  if (value < lo || value > hi)
    fail(ErrorCode::Argument, std::string(what) + " must be an integer in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "], got " + std::to_string(value));
}
}  // namespace

void NetworkSpec::validate() const {
  checkRange("hiddenSize", hiddenSize, 1, kMaxSize);
  checkRange("numLayers", numLayers, 1, kMaxLayers);
  checkRange("headSize", headSize, 0, kMaxSize);
  if ((inputSize > 0) == (vocabSize > 0))
    fail(ErrorCode::Argument, "give exactly one of inputSize (dense input) and vocabSize (one-hot symbol input)");
  checkRange(vocabSize > 0 ? "vocabSize" : "inputSize", vocabSize > 0 ? vocabSize : inputSize, 1, kMaxSize);
  if (gateActivation != GateActivation::Sigmoid && !hasGates(cell))
    fail(ErrorCode::Argument, std::string("gateActivation is for lstm and gru cells, not ") + cellName(cell));
  long long largest = (long long)gateCount(cell) * hiddenSize * (long long)std::max(layerInputSize(0), hiddenSize * 2);
  if (largest > INT_MAX / 2) fail(ErrorCode::Argument, "the network's weight matrices are too large");
}

std::string recurrentParamName(const char* kind, int layer, bool reverse) {
  return std::string(kind) + "_l" + std::to_string(layer) + (reverse ? "_reverse" : "");
}

std::size_t ParamLayout::add(const std::string& name, std::vector<int> shape) {
  if (find(name)) fail(ErrorCode::Argument, "two parameters are named '" + name + "'");
  if (entries_.size() >= kMaxTensors)
    fail(ErrorCode::Argument, "the model has more than " + std::to_string(kMaxTensors) + " parameter tensors");
  ParamEntry e;
  e.name = name;
  e.size = 1;
  for (int s : shape) e.size *= (std::size_t)s;  // each stage caps its matrices at 2^30 values
  e.shape = std::move(shape);
  e.offset = total_;
  // Keep every tensor 16-float aligned so that SIMD kernels can assume aligned rows of the flat buffer.
  const std::size_t padded = (e.size + 15) / 16 * 16;
  if (padded > kMaxFloats - total_)
    fail(ErrorCode::Argument, "the model has more than " + std::to_string(kMaxFloats) + " parameters (" +
                                  std::to_string(kMaxFloats * sizeof(float) >> 30) + " GiB)");
  total_ += padded;
  index_.emplace(e.name, entries_.size());
  entries_.push_back(std::move(e));
  return entries_.back().offset;
}

const ParamEntry* ParamLayout::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const ParamEntry& ParamLayout::at(const std::string& name) const {
  const ParamEntry* e = find(name);
  if (!e) {
    std::string known;
    for (const ParamEntry& x : entries_) known += (known.empty() ? "" : ", ") + x.name;
    fail(ErrorCode::UnknownParam, "no parameter named '" + name + "'; this network has: " + known);
  }
  return *e;
}

}  // namespace rnnkit
