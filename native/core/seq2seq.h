// An encoder-decoder (the many-to-many whose output length differs from its input's), as PyTorch's seq2seq
// tutorial builds it: an embedding and a recurrent stack reading the source; a second embedding and stack reading
// the target, started from the encoder's final state; optional attention over the encoder's outputs (the keys);
// a dense layer giving the logits. Parameters keep PyTorch's names ("encoder.rnn.weight_ih_l0", ...).
//
// Attention kinds:
//   none:      h_t = RNN(e_t, state), o_t = h_top(t)
//   bahdanau:  s = Va . tanh(Wa h_top(t-1) + Ua K), a = softmax over the row's valid source steps, c = a K,
//              h_t = RNN([e_t, c], state), o_t = h_top(t)      (inside the recurrence)
//   luong:     h_t = RNN(e_t, state), s = K . h_top(t), a, c as above, o_t = tanh(Wc [c, h_top(t)])
// logits = out(o_t).
//
// How it computes (as the fast implementations do): the keys' projection Ua K once per source batch; a step's
// scores and contexts for the whole batch as one batched product; without input feeding (none, luong) the decoder
// stack runs as whole-sequence recurrent layers (input projections hoisted over all target steps) and Luong's
// attention over all steps at once; Bahdanau's first layer hoists the embedding part of its input projection;
// weight gradients are formed after the time loop. Decoding (greedy, beam) carries the state from step to step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "device_buffer.h"
#include "network_spec.h"
#include "optimizer.h"
#include "parameter_store.h"
#include "random.h"
#include "recurrent_layer.h"

namespace rnnkit {

enum class AttentionKind { None, Bahdanau, Luong };
AttentionKind parseAttention(const std::string& name);
const char* attentionName(AttentionKind kind);

struct Seq2SeqSpec {
  CellKind cell = CellKind::Gru;
  AttentionKind attention = AttentionKind::Bahdanau;
  int srcVocab = 0, tgtVocab = 0;
  int embedSize = 0, hiddenSize = 0, numLayers = 1;
  bool hasSeed = false;
  uint64_t seed = 0;
  // Throws ERR_RNNKIT_ARGUMENT naming the first problem.
  void validate() const;
};

// A batch, batch-first as the user holds it: src [B, S], tgtIn and targets [B, T]. srcLengths empty = every row of
// full length. targets < 0 are left out of the loss (the ignore index, -1 by convention).
struct Seq2SeqBatch {
  int batch = 0, srcLen = 0, tgtLen = 0;
  std::vector<int32_t> src, srcLengths, tgtIn, targets;
};

struct Seq2SeqForward {
  std::vector<float> logits;     // [B, T, tgtVocab]
  std::vector<float> attention;  // [B, T, S], empty without attention
};

struct DecodeOptions {
  int sos = 0;
  int eos = -1;  // -1: none (decode maxLen steps)
  int maxLen = 0;
  int beamWidth = 1;
  double lengthPenalty = 0.0;  // beam scores are divided by length^lengthPenalty (0: plain sum of log-probs)
  bool wantAttention = true;
};

struct DecodeResult {
  int batch = 0, steps = 0, srcLen = 0;
  std::vector<int32_t> tokens;   // [B, steps]: eos included, then -1
  std::vector<float> scores;     // [B]: sum of the tokens' log-probabilities (beam: divided by the length penalty)
  std::vector<int32_t> lengths;  // [B]: tokens produced, eos included
  std::vector<float> attention;  // [B, steps, S] or empty
};

// Weight matrices a time loop multiplies by at every step, each set up once per loop in the backend's step layout
// (packed panels) where it has one, as RecurrentLayer does for W_hh.
class StepWeightSet {
 public:
  explicit StepWeightSet(Backend* be) : be_(be) {}
  // Slot i: op(W) is N x K; W is [N, K] with row stride ldb when transB, else [K, N]. For `steps` products of
  // `rows` rows.
  void set(std::size_t i, const float* W, bool transB, int N, int K, int ldb, int rows, int steps) {
    while (panels_.size() <= i) panels_.push_back(std::make_unique<DeviceBuffer>(be_));
    if (w_.size() <= i) w_.resize(i + 1);
    w_[i] = prepareStepWeights(*be_, *panels_[i], W, transB, N, K, ldb, rows, steps);
  }
  // C[M, N] = A[M, K] op(W_i) + beta C.
  void multiply(std::size_t i, int M, const float* A, int lda, float beta, float* C, int ldc) const {
    be_->gemmStep(M, 1.f, A, lda, w_[i], beta, C, ldc);
  }

 private:
  Backend* be_;
  std::vector<StepWeights> w_;
  std::vector<std::unique_ptr<DeviceBuffer>> panels_;
};

// The decoder's state for a batch of rows between steps (a server's per-request decode), kept in backend memory.
struct DecoderState {
  explicit DecoderState(Backend* be)
      : keys(be), keysProj(be), lengths(be), h{DeviceBuffer(be), DeviceBuffer(be)}, c{DeviceBuffer(be), DeviceBuffer(be)},
        x(be), emb(be), gi(be), gh(be), q(be), scores(be), concat(be), o(be), logits(be), tokens(be), index(be),
        keyGates(be), weights(be) {}
  int R = 0, S = 0;
  int group = 1;  // consecutive rows sharing one source row of keys / keysProj (a beam's hypotheses, Bahdanau)
  bool hasLengths = false;
  std::vector<int32_t> hostLengths;
  DeviceBuffer keys, keysProj, lengths;  // [S*R, H] time-major, [R]
  DeviceBuffer h[2], c[2];               // [L, R, H]
  int cur = 0;
  DeviceBuffer x, emb, gi, gh, q, scores, concat, o, logits, tokens, index;
  // A whole decode reads layer 0's input projection of every target token from the model's table
  // (Seq2Seq::prepareEmbeddingTable) and its step weights from the model's packed set (Seq2Seq::useDecodeWeights).
  bool embTableReady = false;
  const StepWeightSet* shared = nullptr;
  const StepWeightSet& stepWeights() const { return shared ? *shared : weights; }
  // Bahdanau: the keys through layer 0's context columns of W_ih (Seq2Seq::prepareKeyGates), for a whole decode.
  DeviceBuffer keyGates;
  bool keyGatesReady = false;
  // The step's weights (Seq2Seq::prepareStepWeights): packed for a whole decode, read in place for single steps.
  StepWeightSet weights;
};

class Seq2Seq {
 public:
  Seq2Seq(Backend& backend, const Seq2SeqSpec& spec);
  ~Seq2Seq();

  const Seq2SeqSpec& spec() const { return spec_; }
  const ParamLayout& layout() const { return store_.layout(); }
  Backend& backend() { return be_; }
  std::size_t memoryBytes() const { return store_.memoryBytes(); }

  // Teacher-forced forward. With train, keeps what backward needs.
  Seq2SeqForward forward(const Seq2SeqBatch& batch, bool train);
  // Loss of the last training forward against batch.targets (mean over counted positions), backpropagated into the
  // parameter gradients (accumulating).
  double lossBackward();
  // Inference forward and its loss (no gradients); *counted receives the positions counted.
  double evaluate(const Seq2SeqBatch& batch, int* counted);
  // zeroGrad, forward, loss, backward, clipping (clipNorm > 0), optimizer step; returns the loss.
  double trainStep(const Seq2SeqBatch& batch, double clipNorm);

  void zeroGrad() { store_.zeroGrad(); }
  double gradNorm() { return store_.gradNorm(); }
  double clipGradNorm(double maxNorm) { return store_.clipGradNorm(maxNorm); }
  void setOptimizer(const OptimizerConfig& config) { store_.setOptimizer(config); }
  Optimizer* optimizer() { return store_.optimizer(); }
  void optimizerStep();

  std::vector<float> getParam(const std::string& name) const { return store_.get(name); }
  void setParam(const std::string& name, const float* data, std::size_t n);
  std::vector<float> getGrad(const std::string& name) const { return store_.getGrad(name); }

  // Greedy (beamWidth 1) or beam search from opts.sos, srcLengths empty = full rows.
  DecodeResult decode(const std::vector<int32_t>& src, int batch, int srcLen, const std::vector<int32_t>& srcLengths,
                      const DecodeOptions& opts);

  // Step by step: begin encodes the source and keeps the decoder state; step feeds one token per row and returns
  // the logits [B, tgtVocab] (and the attention weights [B, S] when there is attention).
  std::unique_ptr<DecoderState> beginDecode(const std::vector<int32_t>& src, int batch, int srcLen,
                                            const std::vector<int32_t>& srcLengths);
  void decodeStep(DecoderState& state, const std::vector<int32_t>& tokens, std::vector<float>* logits,
                  std::vector<float>* attention);

 private:
  struct Layer {
    std::size_t wih, whh, bih, bhh;
    int input;
  };
  struct Stack {
    std::vector<Layer> layers;
    std::vector<std::unique_ptr<RecurrentLayer>> runners;
  };
  void declare();
  void initParams();
  LayerWeights weights(const Layer& l) const;
  void checkBatch(const Seq2SeqBatch& b, bool needTargets) const;
  void checkSource(const std::vector<int32_t>& src, int batch, int srcLen, const std::vector<int32_t>& lengths) const;
  // Encoder over the uploaded source (srcTok_, lengths_): keys encOut_[L-1], final state encH_/encC_.
  void encode(int B, int S, bool train, const int32_t* lengths);
  void encodeBackward(int B, int S, const int32_t* lengths);
  void decodeTrainBahdanau(int B, int S, int T, const int32_t* lengths, bool train);
  void backwardBahdanau(int B, int S, int T, const int32_t* lengths);
  void headForward(int B, int S, int T, const int32_t* lengths);
  void headBackward(int B, int S, int T, const int32_t* lengths);
  // One inference step of the decoder over R rows (see DecoderState).
  void stepRows(DecoderState& st);
  // The decoder's step weights for `steps` steps of st.R rows (slots: see the definition).
  void prepareStepWeights(DecoderState& st, int steps, StepWeightSet& w);
  void useDecodeWeights(DecoderState& st, int steps);
  void prepareEmbeddingTable(DecoderState& st, int steps);
  void prepareKeyGates(DecoderState& st, int sourceRows, int steps);
  std::size_t contextSlot() const { return 3 + 2 * (std::size_t)spec_.numLayers; }

  Backend& be_;
  Seq2SeqSpec spec_;
  // Parameters, gradients, optimizer state; what the model keeps for the next decode (below) is valid for one
  // store_.version().
  ParameterStore store_;
  struct DecodeWeightsKey {
    uint64_t version;
    int rows, steps;
    bool embTable, keyGates;
    bool operator==(const DecodeWeightsKey& o) const {
      return version == o.version && rows == o.rows && steps == o.steps && embTable == o.embTable &&
             keyGates == o.keyGates;
    }
  };
  StepWeightSet decodeWeights_;
  DecodeWeightsKey decodeWeightsKey_{};
  bool haveDecodeWeights_ = false;
  DeviceBuffer embTable_;
  uint64_t embTableVersion_ = ~(uint64_t)0;
  std::size_t encEmb_, decEmb_, outW_, outB_;
  std::size_t wa_ = 0, ba_ = 0, ua_ = 0, bua_ = 0, va_ = 0, bva_ = 0, wc_ = 0, bc_ = 0;
  Stack enc_, dec_;

  // Activations of the last forward (time-major, rows t*B + b).
  DeviceBuffer srcTok_, tgtTok_, lengths_, targets_;
  DeviceBuffer encX_;                      // [S*B, E]
  std::vector<DeviceBuffer> encOut_;       // per layer [S*B, H]; the top one is K (0 past each row's length)
  DeviceBuffer encH_, encC_;               // [L, B, H]
  DeviceBuffer decX_;                      // [T*B, E] (none, luong) or [T*B, E+H] (bahdanau: [e_t, c_t])
  std::vector<DeviceBuffer> decOut_;       // none/luong: per layer [T*B, H]
  DeviceBuffer keysProj_;                  // bahdanau: Ua K + b [S*B, H]
  DeviceBuffer query_;                     // bahdanau: Wa h_top(t-1) + b [T*B, H]
  DeviceBuffer attn_;                      // [T*B, S]
  DeviceBuffer concat_, o_;                // luong: [T*B, 2H] ([c, h_top]); tanh(Wc concat + b) [T*B, H]
  DeviceBuffer logits_, dLogits_;          // [T*B, V]
  // Bahdanau's step loop, per layer: gi [T*B, GH], states [T+1, B, H], saved activations, gate gradients.
  std::vector<DeviceBuffer> gi_, hs_, cs_, saved_, dGi_, dGh_;
  StepWeightSet loopForward_, loopBackward_;  // Bahdanau's step loop: the weights of its per-step products
  DeviceBuffer gh_, carryH_, carryC_, dy_;
  // Backward workspace.
  DeviceBuffer dTop_, dConcat_, dPre_, dAttn_, dKeys_, dKeysProj_, dQuery_, dX_, dEmb_, dEncH_, dEncC_;
  std::vector<DeviceBuffer> dEncOut_, dDecOut_;
  DeviceBuffer dEncX_;
  int lastB_ = 0, lastS_ = 0, lastT_ = 0;
  bool lastHadLengths_ = false;
  bool haveTrainForward_ = false;
  std::vector<int32_t> lastTargets_;  // time-major
};

}  // namespace rnnkit
