#include "model_spec.h"

#include <cmath>

#include "error.h"

namespace rnnkit {

Activation parseActivation(const std::string& name) {
  if (name == "linear" || name.empty()) return Activation::Linear;
  if (name == "softmax") return Activation::Softmax;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "tanh") return Activation::Tanh;
  if (name == "relu") return Activation::Relu;
  fail(ErrorCode::Argument, "unknown activation '" + name + "': expected linear, softmax, sigmoid, tanh or relu");
}

const char* activationName(Activation a) {
  switch (a) {
    case Activation::Linear: return "linear";
    case Activation::Softmax: return "softmax";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
    case Activation::Relu: return "relu";
  }
  return "?";
}

MergeMode parseMergeMode(const std::string& name) {
  if (name == "concat") return MergeMode::Concat;
  if (name == "sum") return MergeMode::Sum;
  fail(ErrorCode::Argument, "unknown merge mode '" + name + "': expected concat or sum");
}

const char* mergeModeName(MergeMode m) { return m == MergeMode::Sum ? "sum" : "concat"; }

ModelSpec ModelSpec::fromNetworkSpec(const NetworkSpec& spec) {
  spec.validate();
  ModelSpec m;
  m.inputSize = spec.inputSize;
  m.vocabSize = spec.vocabSize;
  m.hasSeed = spec.hasSeed;
  m.seed = spec.seed;
  StageSpec rec;
  rec.kind = StageKind::Recurrent;
  rec.cell = spec.cell;
  rec.hiddenSize = spec.hiddenSize;
  rec.numLayers = spec.numLayers;
  rec.bidirectional = spec.bidirectional;
  rec.resetAfter = spec.resetAfter;
  rec.gateActivation = spec.gateActivation;
  m.stages.push_back(rec);
  if (spec.headSize > 0) {
    StageSpec head;
    head.kind = StageKind::Dense;
    head.prefix = "head.";
    head.units = spec.headSize;
    m.stages.push_back(head);
  }
  return m;
}

void ModelSpec::validate() const {
  constexpr int kMax = 1 << 20;
  auto range = [](const std::string& what, int v, int lo, int hi) {
    if (v < lo || v > hi)
      fail(ErrorCode::Argument, what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "], got " + std::to_string(v));
  };
  if ((inputSize > 0) == (vocabSize > 0))
    fail(ErrorCode::Argument, "give exactly one of inputSize (dense input) and vocabSize (token input)");
  range(vocabSize > 0 ? "vocabSize" : "inputSize", vocabSize > 0 ? vocabSize : inputSize, 1, kMax);
  if (stages.empty()) fail(ErrorCode::Argument, "a model needs at least one layer");
  constexpr std::size_t kMaxStages = 4096;
  if (stages.size() > kMaxStages)
    fail(ErrorCode::Argument, "a model may have at most " + std::to_string(kMaxStages) + " layers, got " +
                                  std::to_string(stages.size()));
  bool tokens = vocabSize > 0;
  bool sequence = true;
  int features = inputSize;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const StageSpec& s = stages[i];
    const std::string at = "layer " + std::to_string(i);
    switch (s.kind) {
      case StageKind::Embedding:
        if (!tokens) fail(ErrorCode::Argument, at + ": an embedding must read token ids (give vocabSize, first layer)");
        range(at + " embedding size", s.embeddingDim, 1, kMax);
        tokens = false;
        features = s.embeddingDim;
        break;
      case StageKind::Recurrent:
        if (!sequence) fail(ErrorCode::Argument, at + ": a recurrent layer needs a sequence (the layer before returns only its last step)");
        range(at + " hiddenSize", s.hiddenSize, 1, kMax);
        range(at + " numLayers", s.numLayers, 1, 1024);
        if (!(s.interLayerDropout >= 0.f && s.interLayerDropout < 1.f))
          fail(ErrorCode::Argument, at + ": dropout must be in [0, 1)");
        if (s.goBackwards && s.bidirectional)
          fail(ErrorCode::Argument, at + ": goBackwards is for one-directional layers");
        if (s.gateActivation != GateActivation::Sigmoid && !hasGates(s.cell))
          fail(ErrorCode::Argument, at + ": a gate activation is for lstm and gru cells, not " + cellName(s.cell));
        if (tokens) features = vocabSize;  // one-hot input
        if ((long long)gateCount(s.cell) * s.hiddenSize * std::max(features, 2 * s.hiddenSize) > (1LL << 30))
          fail(ErrorCode::Argument, at + ": the weight matrices are too large");
        tokens = false;
        sequence = s.returnSequences;
        features = s.recurrentOutputSize();
        break;
      case StageKind::Dense:
        if (tokens) fail(ErrorCode::Argument, at + ": a dense layer cannot read token ids; add an embedding first");
        range(at + " units", s.units, 1, kMax);
        if ((long long)s.units * features > (1LL << 30)) fail(ErrorCode::Argument, at + ": the weight matrix is too large");
        features = s.units;
        break;
      case StageKind::Dropout:
        if (tokens) fail(ErrorCode::Argument, at + ": dropout cannot apply to token ids");
        if (!(s.rate >= 0.f && s.rate < 1.f)) fail(ErrorCode::Argument, at + ": dropout rate must be in [0, 1)");
        break;
    }
  }
  if (tokens) fail(ErrorCode::Argument, "a model over token ids needs an embedding or a recurrent layer first");
}

}  // namespace rnnkit
