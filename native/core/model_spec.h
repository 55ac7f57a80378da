// A model as a pipeline of stages over a sequence batch: an optional embedding, recurrent stacks, dropout and dense
// layers, in the order given. The PyTorch-style NetworkSpec (one recurrent stack, optional head) is one such
// pipeline whose parameters keep PyTorch's names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cell.h"
#include "network_spec.h"

namespace rnnkit {

enum class StageKind { Embedding, Recurrent, Dense, Dropout };
enum class Activation { Linear, Softmax, Sigmoid, Tanh, Relu };
enum class MergeMode { Concat, Sum };

Activation parseActivation(const std::string& name);
const char* activationName(Activation a);
MergeMode parseMergeMode(const std::string& name);
const char* mergeModeName(MergeMode m);

struct StageSpec {
  StageKind kind = StageKind::Recurrent;
  std::string prefix;  // parameter names are prefix + PyTorch's names ("weight", "weight_ih_l0", ...)

  int embeddingDim = 0;  // embedding

  CellKind cell = CellKind::Lstm;  // recurrent
  int hiddenSize = 0;
  int numLayers = 1;
  bool bidirectional = false;
  bool resetAfter = true;
  GateActivation gateActivation = GateActivation::Sigmoid;  // lstm and gru
  MergeMode merge = MergeMode::Concat;
  bool returnSequences = true;
  bool goBackwards = false;
  float interLayerDropout = 0.f;  // between the stacked layers of this stage, training only

  int units = 0;  // dense
  Activation activation = Activation::Linear;

  float rate = 0.f;  // dropout

  int directions() const { return bidirectional ? 2 : 1; }
  // Features of one time step of this recurrent stage's output.
  int recurrentOutputSize() const { return merge == MergeMode::Sum ? hiddenSize : hiddenSize * directions(); }
};

struct ModelSpec {
  int inputSize = 0;  // dense input features
  int vocabSize = 0;  // or token ids over this many symbols (an embedding or a one-hot recurrent stage reads them)
  std::vector<StageSpec> stages;
  bool hasSeed = false;
  uint64_t seed = 0;

  static ModelSpec fromNetworkSpec(const NetworkSpec& spec);
  // Throws ERR_RNNKIT_ARGUMENT naming the first problem.
  void validate() const;
};

}  // namespace rnnkit
