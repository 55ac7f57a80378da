// A model as a directed acyclic graph of stages: several inputs (token ids, feature sequences or feature vectors, each
// with optional per-row lengths), nodes whose inputs and outputs are tensor ids, several outputs each with its own
// loss. The nodes reuse the pipeline's stages (embedding, recurrent, dense, dropout; stage.h) and add the graph's own
// (graph_stages.h: repeat-vector, concatenate, Luong dot attention). A recurrent node may take its initial state from
// any tensor of the right width (another node's returned state, a dense layer's output) and return its final
// states as tensors. Forward, backward through every edge (gradients summed where a tensor feeds several nodes),
// the losses and the optimizer run natively; host data in and out is batch-first.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "class_targets.h"
#include "device_buffer.h"
#include "model_spec.h"
#include "network_spec.h"
#include "optimizer.h"
#include "parameter_store.h"
#include "random.h"
#include "stage.h"

namespace rnnkit {

enum class GraphOp { Embedding, Recurrent, Dense, Dropout, RepeatVector, Concatenate, DotAttention };

struct GraphInputSpec {
  std::string name;
  bool tokens = false;    // token ids over `size` symbols, [B, T]
  bool sequence = true;   // features: [B, T, size] (true) or one vector per row [B, size]
  int size = 0;
};

// Tensor ids: the inputs are 0..inputs-1, then each node's outputs in node order (see outputsOf).
struct GraphNodeSpec {
  GraphOp op = GraphOp::Dense;
  std::string name;          // names errors; parameters are `name.` + PyTorch's names
  StageSpec stage;           // embedding, recurrent, dense, dropout (stage.prefix = name + ".")
  int repeat = 0;            // repeat-vector: steps
  bool returnState = false;  // recurrent: also output h (and c) of every layer and direction, [L*D, B, H]
  std::vector<int> inputs;
  std::vector<int> initialState;  // recurrent: h, then c for an LSTM; empty: zeros
};

struct GraphSpec {
  std::vector<GraphInputSpec> inputs;
  std::vector<GraphNodeSpec> nodes;
  std::vector<int> outputs;  // tensor ids
  bool hasSeed = false;
  uint64_t seed = 0;
};

// What a tensor of the graph is, known before any data flows.
struct GraphTensorInfo {
  enum class Kind { Tokens, Sequence, Vector, State, Weights };
  Kind kind = Kind::Sequence;
  int features = 0;     // per row (per step of a sequence); the vocabulary for tokens; L*D*H for a state
  int stateSlots = 1;   // a state: L*D blocks of [B, H]
  int producer = -1;    // node index, -1 for an input
  std::string name;     // for errors: "node" or "node/h"
};

// One input of a batch, batch-first: tokens [B, T], x [B, T, F] or [B, F]; lengths [B] or empty.
struct GraphInputValue {
  std::vector<long long> shape;
  std::vector<float> x;
  std::vector<int32_t> tokens;
  std::vector<int32_t> lengths;
};

struct GraphOutputValue {
  std::vector<float> data;  // batch-first: [B, T, F], [B, F], a state [L*D, B, H], weights [B, T, S]
  std::vector<long long> shape;
};

enum class GraphLossKind { None, SoftmaxCrossEntropy, MeanSquaredError };

// The loss of one output. Cross-entropy: classes [B, T] (a sequence output) or [B], the ignore index left out, and
// so are the positions past the row's length of the sequence the output follows; mse: values of the output's shape,
// positions past the length left out. The model's loss is the weighted sum of its outputs' losses.
struct GraphLossSpec {
  GraphLossKind kind = GraphLossKind::None;
  int32_t ignoreIndex = kDefaultIgnoreIndex;
  double weight = 1.0;
  bool accuracy = false;  // cross-entropy: also count the positions whose largest logit is the target (a download)
};

struct GraphTarget {
  std::vector<int32_t> classes;
  std::vector<float> values;
};

struct GraphLossStats {
  double loss = 0;                  // the weighted sum
  std::vector<double> outputLosses; // per output (0 for one without a loss)
  std::vector<std::size_t> counted, correct;
  double gradNorm = 0;
};

class GraphNetwork {
 public:
  GraphNetwork(Backend& backend, const GraphSpec& spec);
  ~GraphNetwork();

  const GraphSpec& spec() const { return spec_; }
  const std::vector<GraphTensorInfo>& tensors() const { return tensors_; }
  const ParamLayout& layout() const { return store_.layout(); }
  std::size_t memoryBytes() const { return store_.memoryBytes(); }

  std::vector<GraphOutputValue> forward(const std::vector<GraphInputValue>& in, bool train);
  // The losses (one spec per output) of the last training forward, backpropagated; accumulates parameter gradients.
  GraphLossStats lossBackward(const std::vector<GraphLossSpec>& losses, const std::vector<GraphTarget>& targets);
  GraphLossStats evaluate(const std::vector<GraphInputValue>& in, const std::vector<GraphLossSpec>& losses,
                          const std::vector<GraphTarget>& targets);
  // zeroGrad, forward, losses, backward, clipping (clipNorm > 0), optimizer step. A step whose loss or gradient norm
  // is not finite is not applied (ERR_RNNKIT_NON_FINITE).
  GraphLossStats trainStep(const std::vector<GraphInputValue>& in, const std::vector<GraphLossSpec>& losses,
                           const std::vector<GraphTarget>& targets, double clipNorm);

  void zeroGrad() { store_.zeroGrad(); }
  double gradNorm() { return store_.gradNorm(); }
  void setOptimizer(const OptimizerConfig& config) { store_.setOptimizer(config); }
  void optimizerStep();
  std::vector<float> getParam(const std::string& name) const { return store_.get(name); }
  void setParam(const std::string& name, const float* data, std::size_t n);
  std::vector<float> getGrad(const std::string& name) const { return store_.getGrad(name); }

 private:
  struct Node;
  struct Value;
  void checkSpec();
  void checkInputs(const std::vector<GraphInputValue>& in);
  PassContext context(const Value& v, bool train);
  void runNode(std::size_t i, bool train);
  void backNode(std::size_t i);
  // d(loss)/d(output) into the output tensor's gradient (or the logits gradient of a dense softmax producer).
  double outputLoss(std::size_t k, const GraphLossSpec& loss, const GraphTarget& target, std::size_t* counted,
                    std::size_t* correct, bool wantGradient);
  bool pastLength(const Value& v, std::size_t t, std::size_t b) const;
  void addGrad(int tensor, const float* d, std::size_t n);

  Backend& be_;
  GraphSpec spec_;
  std::vector<GraphTensorInfo> tensors_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Value> values_;
  std::vector<DeviceBuffer> grads_;       // per tensor, [rows, features] like the value
  std::vector<char> hasGrad_;
  std::vector<DeviceBuffer> inputData_;   // per input, the uploaded time-major data
  std::vector<DeviceBuffer> inputLengths_;
  std::vector<std::vector<int32_t>> hostLengths_;
  ParameterStore store_;
  Random rng_;
  int B_ = 0;
  bool haveTrainForward_ = false;
  DeviceBuffer targets_, staging_;
  std::vector<float> host_;
};

}  // namespace rnnkit
