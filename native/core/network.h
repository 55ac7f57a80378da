// A recurrent network on one backend: the stacked (optionally bidirectional) recurrent layers, an optional dense
// head, its parameters and gradients, the loss, and an optimizer. Host data in, host data out; everything between
// stays in backend memory. Not thread-safe: the caller runs one method at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "class_targets.h"
#include "device_buffer.h"
#include "network_spec.h"
#include "model_spec.h"
#include "optimizer.h"
#include "parameter_store.h"
#include "stage.h"

namespace rnnkit {

// A sequence batch. The input is `x` (dense, shape [T, B, I] or, with batchFirst, [B, T, I]) or `tokens`
// (shape [T, B] or [B, T]) as the network's spec says. Empty vectors mean absent: zero initial states, every row of
// full length. h0 holds every recurrent stage's [L*D, B, H] state in turn; c0 likewise for the LSTM stages.
struct SequenceInput {
  bool batchFirst = false;
  std::vector<long long> shape;
  std::vector<float> x;
  std::vector<int32_t> tokens;
  std::vector<int32_t> lengths;  // [B], each in [1, T]
  std::vector<float> h0, c0;     // [L*D, B, H]
};

struct SequenceOutput {
  // The last stage's output: [T, B, F] or [B, T, F] for a sequence, [B, F] after a last-step-only stage.
  std::vector<float> output;
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

// Which output positions a loss counts (cross-entropy: class_targets.h, the rule of every model of the core):
//  - cross-entropy: a target equal to ignoreIndex (kDefaultIgnoreIndex, -1, unless given) is left out; every other
//    target must be a class of the output;
//  - with lengths on the last forward's input, a sequence output's position (t, b) with t >= lengths[b] is left out
//    (its target is not read);
//  - the loss is the mean over the counted positions (mse: over their values), 0 when none is counted.
struct LossTarget {
  LossKind kind = LossKind::SoftmaxCrossEntropy;
  std::vector<int32_t> classes;  // cross-entropy: [T, B] or [B, T] class ids, or [B] after a last-step layer
  int32_t ignoreIndex = kDefaultIgnoreIndex;
  std::vector<float> values;     // mse: the output's shape
};

struct LossResult {
  double loss = 0;
  InputGradient grads;
};

// A loss over a batch with what metrics need: the positions it counted and, for cross-entropy, how many of them the
// output's largest score gets right (accuracy = correct / counted).
struct LossStats {
  double loss = 0;
  std::size_t counted = 0;
  std::size_t correct = 0;
};

struct TrainStepResult {
  double loss = 0;
  double gradNorm = 0;
  std::size_t counted = 0;
  std::size_t correct = 0;
  bool skipped = false;  // not applied: the loss or the gradient norm was not finite (NonFinitePolicy::Skip)
};

// What trainStep does with a step whose loss or gradient norm is not finite: the update is never applied; Error
// throws ERR_RNNKIT_NON_FINITE, Skip returns the result marked skipped.
enum class NonFinitePolicy { Error, Skip };

// Recurrent state kept in backend memory between calls: a stream of single steps, or the carried state of
// truncated backpropagation through time. Empty (batch 0) means zero.
struct RecurrentState {
  explicit RecurrentState(Backend* be) : h(be), c(be) {}
  DeviceBuffer h, c;
  int batch = 0;
};

class Network {
 public:
  // A PyTorch-style stack with an optional head (parameters keep PyTorch's names).
  Network(Backend& backend, const NetworkSpec& spec);
  // A pipeline of stages.
  Network(Backend& backend, const ModelSpec& spec);
  // The parameters (names, shapes) a network of this spec would have, found without allocating any of them: what a
  // model file is compared with before a network is built from it. Validates the spec; the backend is only named.
  static ParamLayout layoutOf(Backend& backend, const ModelSpec& spec);

  const ModelSpec& modelSpec() const { return model_; }
  // The PyTorch-style spec, when the network was made from one.
  const NetworkSpec* networkSpec() const { return fromNetworkSpec_ ? &spec_ : nullptr; }
  // Vocabulary of a token-input network (0 for dense input).
  int vocabSize() const { return model_.vocabSize; }
  // Floats of h (and c) state per batch row, over every recurrent stage.
  std::size_t hiddenStatePerRow() const { return hPerRow_; }
  std::size_t cellStatePerRow() const { return cPerRow_; }
  const ParamLayout& layout() const { return store_.layout(); }
  Backend& backend() { return be_; }
  // Bytes of backend memory held (parameters, gradients, optimizer state, workspace).
  std::size_t memoryBytes() const { return store_.memoryBytes(); }

  // With a state: the state is the initial state (unless in.h0 is given), and receives the final state. Without
  // finalState, out.hn and out.cn stay empty (a stream step keeps its state natively and never reads them).
  SequenceOutput forward(const SequenceInput& in, bool train, RecurrentState* state = nullptr, bool finalState = true);
  RecurrentState& carriedState() { return carry_; }
  // Backpropagate an upstream gradient through the last training forward; accumulates parameter gradients.
  InputGradient backward(const OutputGradient& grad);
  // Loss of the last training forward's output against the target, backpropagated (accumulating).
  LossResult lossBackward(const LossTarget& target);
  // Inference forward and the loss of its output; no gradients, no dropout.
  LossStats evaluate(const SequenceInput& in, const LossTarget& target);

  void zeroGrad() { store_.zeroGrad(); }
  // Scale the gradients so that their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_);
  // returns the norm before clipping.
  double clipGradNorm(double maxNorm) { return store_.clipGradNorm(maxNorm); }
  double gradNorm() { return store_.gradNorm(); }

  void setOptimizer(const OptimizerConfig& config) { store_.setOptimizer(config); }
  Optimizer* optimizer() { return store_.optimizer(); }
  void optimizerStep();

  // zeroGrad, training forward, loss, backward, optional clipping (clipNorm > 0), optimizer step. With
  // carryState, the batch starts from the final state of the previous carried step (truncated BPTT). A step whose
  // loss or gradient norm is not finite is not applied (gradients zeroed, carried state reset), see NonFinitePolicy.
  TrainStepResult trainStep(const SequenceInput& in, const LossTarget& target, double clipNorm,
                            bool carryState = false, NonFinitePolicy nonFinite = NonFinitePolicy::Error);
  // The checks forward applies to an input (shape, sizes, token ids in the vocabulary), without running it.
  void validateInput(const SequenceInput& in) const { checkInput(in); }
  // Random state of the dropout masks (for checkpoints).
  std::vector<uint32_t> randomState() const { return rng_.state(); }
  void setRandomState(const std::vector<uint32_t>& s) { rng_.setState(s); }
  // Inference (never training) with int8 recurrent products: weights quantized per output row when first needed
  // after any change, activations per row at each product. Off by default; float32 results are never affected.
  void setInt8Inference(bool on);
  bool int8Inference() const { return int8Inference_; }

  std::vector<float> getParam(const std::string& name) const { return store_.get(name); }
  void setParam(const std::string& name, const float* data, std::size_t n);
  std::vector<float> getGrad(const std::string& name) const { return store_.getGrad(name); }
  std::vector<float> getOptimizerState(const std::string& slot) { return store_.getOptimizerState(slot); }
  void setOptimizerState(const std::string& slot, const float* data, std::size_t n) {
    store_.setOptimizerState(slot, data, n);
  }

 private:
  struct Shape {
    int T = 0, B = 0;
    bool batchFirst = false;
  };
  void build();
  Shape checkInput(const SequenceInput& in) const;
  PassContext context(const Shape& s, bool train);
  void uploadSequence(float* dst, const float* src, const Shape& s, int features);
  void uploadSequence(int32_t* dst, const int32_t* src, const Shape& s);
  std::vector<float> downloadRows(const float* src, const Shape& s, int features, bool sequence);
  void setStageStates(const float* h0, const float* c0, float* hn, float* cn, const float* dhn, const float* dcn,
                      float* dh0, float* dc0, int B);
  void backwardFrom(std::size_t stageEnd, const float* dOutput, InputGradient* out);
  // The loss of output_ against target (the rule at LossTarget); writes d(loss)/d(logits or output) to dOutput_.
  // Sets *fromLogits when the gradient is for the pre-activation of a softmax last layer. Counts the positions it
  // took in stats->counted; the class ids it counted (-1 elsewhere, the caller's layout) stay in countedTargets_.
  double computeLoss(const LossTarget& target, bool* fromLogits, LossStats* stats);
  // Whether output position i (the caller's layout) lies past its row's length in the last forward.
  bool pastLength(std::size_t i) const;
  // Of the positions computeLoss counted, those whose largest output value is at the target class.
  std::size_t countCorrect(const SequenceOutput& out) const;
  void initParams();

  Backend& be_;
  NetworkSpec spec_;
  bool fromNetworkSpec_ = false;
  ModelSpec model_;
  ParameterStore store_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::vector<Activations> stageInputs_;  // what each stage read in the last forward
  Activations output_;
  std::size_t hPerRow_ = 0, cPerRow_ = 0;
  Random rng_;
  RecurrentState carry_;

  DeviceBuffer x_, tokens_, lengths_, h0_, c0_, hn_, cn_, dOutput_, dh0_, dc0_, targets_, staging_;
  std::vector<float> hostStaging_;  // batch-first data transposed on the host before an upload
  std::vector<int32_t> lastLengths_;  // the last forward's lengths (empty: every row full)
  std::vector<int32_t> countedTargets_, countedRows_;
  std::size_t lastLossCounted_ = 0;
  Shape last_;
  bool haveTrainForward_ = false;
  bool lastHadLengths_ = false;
  bool int8Inference_ = false;
};

}  // namespace rnnkit
