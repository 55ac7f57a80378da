#include "network.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

#include "class_targets.h"
#include "dense_stage.h"
#include "error.h"

namespace rnnkit {

namespace {
std::string shapeText(const std::vector<long long>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void checkSize(const char* what, std::size_t got, std::size_t want, const std::string& shape) {
  if (got != want)
    fail(ErrorCode::Shape, std::string(what) + " has " + std::to_string(got) + " values, expected " +
                               std::to_string(want) + " (shape " + shape + ")");
}

// The stages of a model, their parameters declared in `layout`. Stages allocate nothing until they run.
std::vector<std::unique_ptr<Stage>> makeStages(Backend& be, const ModelSpec& model, ParamLayout& layout) {
  std::vector<std::unique_ptr<Stage>> stages;
  int features = model.inputSize;
  int vocab = model.vocabSize;
  for (const StageSpec& s : model.stages) {
    std::unique_ptr<Stage> stage = makeStage(be, s, features, vocab);
    stage->declareParams(layout);
    switch (s.kind) {
      case StageKind::Embedding: features = s.embeddingDim; vocab = 0; break;
      case StageKind::Recurrent: features = s.recurrentOutputSize(); vocab = 0; break;
      case StageKind::Dense: features = s.units; break;
      case StageKind::Dropout: break;
    }
    stages.push_back(std::move(stage));
  }
  return stages;
}

uint64_t seedOf(const ModelSpec& m) {
  return m.hasSeed ? m.seed : ((uint64_t)std::random_device{}() << 32) ^ std::random_device{}();
}
}  // namespace

Network::Network(Backend& backend, const NetworkSpec& spec)
    : Network(backend, ModelSpec::fromNetworkSpec(spec)) {
  spec_ = spec;
  fromNetworkSpec_ = true;
}

Network::Network(Backend& backend, const ModelSpec& spec)
    : be_(backend),
      model_((spec.validate(), spec)),
      store_(backend, "no optimizer is set: call setOptimizer first"),
      rng_(seedOf(spec) ^ 0x5bd1e995ULL),  // dropout draws from its own stream, not the initial weights'
      carry_(&backend),
      x_(&backend),
      tokens_(&backend),
      lengths_(&backend),
      h0_(&backend),
      c0_(&backend),
      hn_(&backend),
      cn_(&backend),
      dOutput_(&backend),
      dh0_(&backend),
      dc0_(&backend),
      targets_(&backend),
      staging_(&backend) {
  build();
}

ParamLayout Network::layoutOf(Backend& backend, const ModelSpec& spec) {
  spec.validate();
  ParamLayout layout;
  makeStages(backend, spec, layout);
  return layout;
}

void Network::build() {
  stages_ = makeStages(be_, model_, store_.layout());
  for (const auto& stage : stages_) {
    hPerRow_ += stage->statePerRow();
    if (stage->hasCellState()) cPerRow_ += stage->statePerRow();
  }
  stageInputs_.resize(stages_.size());
  store_.allocate();
  initParams();
}

void Network::initParams() {
  Random rng(seedOf(model_));
  std::vector<float> host(store_.size(), 0.f);
  for (const auto& stage : stages_) stage->initParams(rng, host.data());
  store_.initialize(host);
}

Network::Shape Network::checkInput(const SequenceInput& in) const {
  const bool symbols = model_.vocabSize > 0;
  const std::string shape = shapeText(in.shape);
  const char* layoutName = in.batchFirst ? (symbols ? "[batch, time]" : "[batch, time, features]")
                                         : (symbols ? "[time, batch]" : "[time, batch, features]");
  if (in.shape.size() != (symbols ? 2u : 3u))
    fail(ErrorCode::Shape, std::string(symbols ? "token input" : "input") + " must have shape " + layoutName +
                               ", got " + shape);
  for (long long dim : in.shape)
    if (dim < 1) fail(ErrorCode::Shape, "every dimension of the input must be at least 1, got " + shape);
  Shape s;
  s.batchFirst = in.batchFirst;
  const long long T = in.batchFirst ? in.shape[1] : in.shape[0];
  const long long B = in.batchFirst ? in.shape[0] : in.shape[1];
  // Every GEMM dimension (rows = T*B, times the widest row) must fit the BLAS int interface.
  long long widest = std::max<long long>(model_.inputSize, model_.vocabSize);
  for (const ParamEntry& e : store_.layout().entries())
    for (int d : e.shape) widest = std::max<long long>(widest, d);
  if (T * B > INT_MAX / std::max<long long>(widest, 1) || T > INT_MAX || B > INT_MAX)
    fail(ErrorCode::Shape, "the batch is too large: time * batch = " + std::to_string(T * B));
  s.T = (int)T;
  s.B = (int)B;
  const std::size_t N = (std::size_t)T * B;
  if (symbols) {
    checkSize("tokens", in.tokens.size(), N, shape);
    if (!in.x.empty()) fail(ErrorCode::Argument, "this network takes token ids (vocabSize is set), not dense x");
    for (std::size_t i = 0; i < N; ++i)
      if (in.tokens[i] < 0 || in.tokens[i] >= model_.vocabSize)
        fail(ErrorCode::Value, "token " + std::to_string(in.tokens[i]) + " at index " + std::to_string(i) +
                                   " is outside the vocabulary [0, " + std::to_string(model_.vocabSize) + ")");
  } else {
    if (in.shape[2] != model_.inputSize)
      fail(ErrorCode::Shape, "input has " + std::to_string(in.shape[2]) + " features, the network expects " +
                                 std::to_string(model_.inputSize) + " (shape " + shape + ")");
    if (!in.tokens.empty()) fail(ErrorCode::Argument, "this network takes dense x (inputSize is set), not tokens");
    checkSize("x", in.x.size(), N * model_.inputSize, shape);
  }
  if (!in.lengths.empty()) {
    if (in.lengths.size() != (std::size_t)B)
      fail(ErrorCode::Shape, "lengths has " + std::to_string(in.lengths.size()) +
                                 " entries, expected one per batch row (" + std::to_string(B) + ")");
    for (std::size_t b = 0; b < in.lengths.size(); ++b)
      if (in.lengths[b] < 1 || in.lengths[b] > T)
        fail(ErrorCode::Value, "lengths[" + std::to_string(b) + "] = " + std::to_string(in.lengths[b]) +
                                   " is outside [1, " + std::to_string(T) + "]");
  }
  if (!in.h0.empty()) {
    if (hPerRow_ == 0) fail(ErrorCode::Argument, "h0 given, but the network has no recurrent layer");
    checkSize("h0", in.h0.size(), hPerRow_ * B, "[layers * directions, batch, hidden] per recurrent stage");
  }
  if (!in.c0.empty()) {
    if (cPerRow_ == 0) fail(ErrorCode::Argument, "c0 is only for LSTM networks");
    checkSize("c0", in.c0.size(), cPerRow_ * B, "[layers * directions, batch, hidden] per LSTM stage");
  }
  return s;
}

void Network::uploadSequence(float* dst, const float* src, const Shape& s, int F) {
  const std::size_t n = (std::size_t)s.T * s.B * F;
  if (!s.batchFirst) {
    be_.upload(dst, src, n * sizeof(float));
    return;
  }
  // Transpose on the host, then one upload: a device backend pays per transfer, not per byte. Host memory is
  // written in place (a staging copy and an upload of a whole sequence cost about 2 ms each at 13 MB).
  float* staging = dst;
  if (!be_.hostMemory()) {
    hostStaging_.resize(n);
    staging = hostStaging_.data();
  }
  for (int t = 0; t < s.T; ++t)
    for (int b = 0; b < s.B; ++b)
      std::copy_n(src + ((std::size_t)b * s.T + t) * F, F, staging + ((std::size_t)t * s.B + b) * F);
  if (staging != dst) be_.upload(dst, staging, n * sizeof(float));
}

void Network::uploadSequence(int32_t* dst, const int32_t* src, const Shape& s) {
  if (!s.batchFirst) {
    be_.upload(dst, src, (std::size_t)s.T * s.B * sizeof(int32_t));
    return;
  }
  std::vector<int32_t> tm((std::size_t)s.T * s.B);
  for (int t = 0; t < s.T; ++t)
    for (int b = 0; b < s.B; ++b) tm[(std::size_t)t * s.B + b] = src[(std::size_t)b * s.T + t];
  be_.upload(dst, tm.data(), tm.size() * sizeof(int32_t));
}

std::vector<float> Network::downloadRows(const float* src, const Shape& s, int F, bool sequence) {
  const std::size_t rows = sequence ? (std::size_t)s.T * s.B : (std::size_t)s.B;
  std::vector<float> out(rows * F);
  if (!sequence || !s.batchFirst) {
    be_.download(out.data(), src, out.size() * sizeof(float));
    return out;
  }
  // Host memory is read in place; a device's comes down in one transfer first.
  std::vector<float> tm;
  const float* timeMajor = src;
  if (!be_.hostMemory()) {
    tm.resize(out.size());
    be_.download(tm.data(), src, tm.size() * sizeof(float));
    timeMajor = tm.data();
  }
  for (int t = 0; t < s.T; ++t)
    for (int b = 0; b < s.B; ++b)
      std::copy_n(timeMajor + ((std::size_t)t * s.B + b) * F, F, out.data() + ((std::size_t)b * s.T + t) * F);
  return out;
}

PassContext Network::context(const Shape& s, bool train) {
  PassContext ctx;
  ctx.be = &be_;
  ctx.T = s.T;
  ctx.B = s.B;
  ctx.lengths = lastHadLengths_ ? lengths_.ints() : nullptr;
  ctx.train = train;
  ctx.params = store_.params();
  ctx.grads = store_.grads();
  ctx.rng = &rng_;
  ctx.int8 = int8Inference_ && !train;
  ctx.paramsVersion = store_.version();
  return ctx;
}

void Network::setInt8Inference(bool on) {
  if (on && !be_.supportsInt8())
    fail(ErrorCode::Device, "int8 inference runs on the CPU only; this network is on " + be_.name());
  int8Inference_ = on;
}

void Network::setStageStates(const float* h0, const float* c0, float* hn, float* cn, const float* dhn,
                             const float* dcn, float* dh0, float* dc0, int B) {
  std::size_t hOff = 0, cOff = 0;
  for (const auto& stage : stages_) {
    StateIo io;
    const std::size_t n = (std::size_t)stage->statePerRow() * B;
    if (n) {
      io.h0 = h0 ? h0 + hOff : nullptr;
      io.hn = hn ? hn + hOff : nullptr;
      io.dhn = dhn ? dhn + hOff : nullptr;
      io.dh0 = dh0 ? dh0 + hOff : nullptr;
      if (stage->hasCellState()) {
        io.c0 = c0 ? c0 + cOff : nullptr;
        io.cn = cn ? cn + cOff : nullptr;
        io.dcn = dcn ? dcn + cOff : nullptr;
        io.dc0 = dc0 ? dc0 + cOff : nullptr;
        cOff += n;
      }
      hOff += n;
    }
    stage->state = io;
  }
}

SequenceOutput Network::forward(const SequenceInput& in, bool train, RecurrentState* state, bool finalState) {
  const Shape s = checkInput(in);
  const int T = s.T, B = s.B;
  const std::size_t N = (std::size_t)T * B;
  haveTrainForward_ = false;

  Activations first;
  first.rows = (int)N;
  first.sequence = true;
  if (model_.vocabSize > 0) {
    first.tokens = tokens_.reserveInts(N);
    first.features = model_.vocabSize;
    uploadSequence(tokens_.ints(), in.tokens.data(), s);
  } else {
    first.data = x_.reserveFloats(N * model_.inputSize);
    first.features = model_.inputSize;
    uploadSequence(x_.floats(), in.x.data(), s, model_.inputSize);
  }
  lastHadLengths_ = !in.lengths.empty();
  if (lastHadLengths_) be_.upload(lengths_.reserveInts(B), in.lengths.data(), B * sizeof(int32_t));
  lastLengths_ = in.lengths;

  const std::size_t hSize = hPerRow_ * B, cSize = cPerRow_ * B;
  if (state && state->batch != 0 && state->batch != B)
    fail(ErrorCode::Shape, "the kept state is for a batch of " + std::to_string(state->batch) + " rows, this input has " +
                               std::to_string(B) + " (reset the state to change the batch size)");
  const float* h0 = nullptr;
  const float* c0 = nullptr;
  if (!in.h0.empty()) {
    h0 = h0_.reserveFloats(hSize);
    be_.upload(h0_.floats(), in.h0.data(), hSize * sizeof(float));
  } else if (state && state->batch == B) {
    h0 = state->h.floats();
  }
  if (!in.c0.empty()) {
    c0 = c0_.reserveFloats(cSize);
    be_.upload(c0_.floats(), in.c0.data(), cSize * sizeof(float));
  } else if (state && state->batch == B && cSize) {
    c0 = state->c.floats();
  }
  float* hn = hSize ? hn_.reserveFloats(hSize) : nullptr;
  float* cn = cSize ? cn_.reserveFloats(cSize) : nullptr;
  setStageStates(h0, c0, hn, cn, nullptr, nullptr, nullptr, nullptr, B);

  const PassContext ctx = context(s, train);
  Activations cur = first;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    stageInputs_[i] = cur;
    cur = stages_[i]->forward(ctx, cur);
  }
  output_ = cur;

  SequenceOutput out;
  out.output = downloadRows(cur.data, s, cur.features, cur.sequence);
  if (cur.sequence)
    out.shape = s.batchFirst ? std::vector<long long>{B, T, cur.features} : std::vector<long long>{T, B, cur.features};
  else
    out.shape = {B, cur.features};
  if (finalState) {
    out.hn.resize(hSize);
    if (hSize) be_.download(out.hn.data(), hn, hSize * sizeof(float));
    out.cn.resize(cSize);
    if (cSize) be_.download(out.cn.data(), cn, cSize * sizeof(float));
  }
  if (state) {
    if (hSize) be_.copy(state->h.reserveFloats(hSize), hn, hSize * sizeof(float));
    if (cSize) be_.copy(state->c.reserveFloats(cSize), cn, cSize * sizeof(float));
    state->batch = B;
  }
  if (train) {
    last_ = s;
    haveTrainForward_ = true;
  }
  return out;
}

void Network::backwardFrom(std::size_t stageEnd, const float* dOutput, InputGradient* result) {
  const int B = last_.B;
  const std::size_t hSize = hPerRow_ * B, cSize = cPerRow_ * B;
  const PassContext ctx = context(last_, true);
  float* dh0 = hSize ? dh0_.reserveFloats(hSize) : nullptr;
  float* dc0 = cSize ? dc0_.reserveFloats(cSize) : nullptr;
  // dhn/dcn were placed in staging_ by backward(); the loss path has none.
  for (auto& stage : stages_) {
    stage->state.dh0 = nullptr;
    stage->state.dc0 = nullptr;
  }
  std::size_t hOff = 0, cOff = 0;
  for (auto& stage : stages_) {
    const std::size_t n = (std::size_t)stage->statePerRow() * B;
    if (!n) continue;
    stage->state.dh0 = dh0 + hOff;
    hOff += n;
    if (stage->hasCellState()) {
      stage->state.dc0 = dc0 + cOff;
      cOff += n;
    }
    // A stage that the gradient never reaches still reports zero initial-state gradients.
    be_.fill(stage->state.dh0, n, 0.f);
    if (stage->hasCellState()) be_.fill(stage->state.dc0, n, 0.f);
  }
  const bool denseInput = model_.vocabSize == 0;
  const float* d = dOutput;
  const float* dx = nullptr;
  for (std::size_t i = stageEnd; i-- > 0;) {
    const bool needInputGrad = i > 0 || denseInput;
    d = stages_[i]->backward(ctx, stageInputs_[i], d, needInputGrad);
    if (i == 0) dx = d;
  }
  if (result) {
    if (denseInput && dx) result->dx = downloadRows(dx, last_, model_.inputSize, true);
    result->dh0.resize(hSize);
    if (hSize) be_.download(result->dh0.data(), dh0, hSize * sizeof(float));
    result->dc0.resize(cSize);
    if (cSize) be_.download(result->dc0.data(), dc0, cSize * sizeof(float));
  }
}

InputGradient Network::backward(const OutputGradient& grad) {
  if (!haveTrainForward_)
    fail(ErrorCode::State, "backward needs a training forward first (forward with train: true)");
  const int B = last_.B;
  const std::size_t rows = output_.rows, F = output_.features;
  const std::size_t hSize = hPerRow_ * B, cSize = cPerRow_ * B;
  const float* dOut = nullptr;
  if (!grad.dOutput.empty()) {
    checkSize("dOutput", grad.dOutput.size(), rows * F, "of the last output");
    dOut = dOutput_.reserveFloats(rows * F);
    if (output_.sequence) uploadSequence(dOutput_.floats(), grad.dOutput.data(), last_, (int)F);
    else be_.upload(dOutput_.floats(), grad.dOutput.data(), rows * F * sizeof(float));
  } else {
    // Without an output gradient the output still needs a zero gradient to start from.
    dOut = dOutput_.reserveFloats(rows * F);
    be_.fill(dOutput_.floats(), rows * F, 0.f);
  }
  staging_.reserveFloats(hSize + cSize + 1);
  const float* dhn = nullptr;
  const float* dcn = nullptr;
  if (!grad.dhn.empty()) {
    checkSize("dhn", grad.dhn.size(), hSize, "of hn");
    be_.upload(staging_.floats(), grad.dhn.data(), hSize * sizeof(float));
    dhn = staging_.floats();
  }
  if (!grad.dcn.empty()) {
    if (!cSize) fail(ErrorCode::Argument, "dcn is only for LSTM networks");
    checkSize("dcn", grad.dcn.size(), cSize, "of cn");
    be_.upload(staging_.floats() + hSize, grad.dcn.data(), cSize * sizeof(float));
    dcn = staging_.floats() + hSize;
  }
  setStageStates(nullptr, nullptr, nullptr, nullptr, dhn, dcn, nullptr, nullptr, B);
  InputGradient out;
  backwardFrom(stages_.size(), dOut, &out);
  return out;
}

bool Network::pastLength(std::size_t i) const {
  if (lastLengths_.empty() || !output_.sequence) return false;
  const std::size_t T = last_.T, B = last_.B;
  const std::size_t t = last_.batchFirst ? i % T : i / B;
  const std::size_t b = last_.batchFirst ? i / T : i % B;
  return (long long)t >= lastLengths_[b];
}

double Network::computeLoss(const LossTarget& target, bool* fromLogits, LossStats* stats) {
  const std::size_t rows = output_.rows;
  const int F = output_.features;
  float* dOut = dOutput_.reserveFloats(rows * F);
  *fromLogits = false;
  const char* layoutName = output_.sequence ? (last_.batchFirst ? "[batch, time]" : "[time, batch]") : "[batch]";
  std::size_t counted = 0;
  if (target.kind == LossKind::SoftmaxCrossEntropy) {
    checkSize("targets", target.classes.size(), rows, layoutName);
    countedTargets_.resize(rows);
    counted = classTargetsForKernel(target.classes.data(), rows, F, target.ignoreIndex,
                                    [this](std::size_t i) { return pastLength(i); }, countedTargets_.data(), "target");
    // Cross-entropy reads logits: the output of a linear last layer, or the pre-activation of a softmax one.
    auto* dense = dynamic_cast<DenseStage*>(stages_.back().get());
    const bool softmaxHead = dense && dense->activation() == Activation::Softmax;
    if (dense && !softmaxHead && dense->activation() != Activation::Linear)
      fail(ErrorCode::Argument, std::string("softmaxCrossEntropy needs logits, but the last layer applies ") +
                                    activationName(dense->activation()) + "; end with a linear or softmax dense layer");
    const float* logits = softmaxHead ? dense->logits() : output_.data;
    int32_t* classes = targets_.reserveInts(rows);
    if (output_.sequence) uploadSequence(classes, countedTargets_.data(), last_);
    else be_.upload(classes, countedTargets_.data(), rows * sizeof(int32_t));
    int kernelCounted = 0;
    const double total = be_.softmaxCrossEntropy(logits, (int)rows, F, classes, dOut, &kernelCounted);
    *fromLogits = softmaxHead;
    stats->counted = counted;
    return counted > 0 ? total / counted : 0.0;
  }
  checkSize("target", target.values.size(), rows * F, "of the output");
  float* values = staging_.reserveFloats(rows * F);
  if (output_.sequence) uploadSequence(values, target.values.data(), last_, F);
  else be_.upload(values, target.values.data(), rows * F * sizeof(float));
  const int32_t* rowCounted = nullptr;
  counted = rows;
  if (!lastLengths_.empty() && output_.sequence) {
    // Per output row (the caller's layout), whether it counts; uploaded in the backend's time-major order.
    countedRows_.assign(rows, 1);
    counted = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      countedRows_[i] = pastLength(i) ? 0 : 1;
      counted += countedRows_[i];
    }
    int32_t* mask = targets_.reserveInts(rows);
    uploadSequence(mask, countedRows_.data(), last_);
    rowCounted = mask;
  }
  stats->counted = counted;
  return be_.meanSquaredError(output_.data, values, rows, F, rowCounted, counted, dOut);
}

std::size_t Network::countCorrect(const SequenceOutput& out) const {
  const std::size_t rows = countedTargets_.size();
  if (rows == 0 || out.output.size() != rows * (std::size_t)output_.features) return 0;
  const std::size_t F = output_.features;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    if (countedTargets_[i] < 0) continue;
    const float* z = out.output.data() + i * F;
    // The first largest score, as argmax in PyTorch and TF.js; NaN never wins.
    std::size_t best = 0;
    for (std::size_t c = 1; c < F; ++c)
      if (z[c] > z[best]) best = c;
    correct += best == (std::size_t)countedTargets_[i] ? 1 : 0;
  }
  return correct;
}

LossResult Network::lossBackward(const LossTarget& target) {
  if (!haveTrainForward_)
    fail(ErrorCode::State, "the loss needs a training forward first (forward with train: true)");
  setStageStates(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, last_.B);
  LossResult result;
  bool fromLogits = false;
  LossStats stats;
  result.loss = computeLoss(target, &fromLogits, &stats);
  lastLossCounted_ = stats.counted;
  if (fromLogits) {
    const std::size_t lastStage = stages_.size() - 1;
    auto* dense = static_cast<DenseStage*>(stages_.back().get());
    const float* d = dense->backwardFromLogits(context(last_, true), stageInputs_[lastStage], dOutput_.floats(), true);
    backwardFrom(lastStage, d, &result.grads);
  } else {
    backwardFrom(stages_.size(), dOutput_.floats(), &result.grads);
  }
  return result;
}

LossStats Network::evaluate(const SequenceInput& in, const LossTarget& target) {
  const SequenceOutput out = forward(in, false);
  // An inference forward keeps the shape of its batch in last_ only when training; the loss needs it here too.
  last_ = Shape{in.batchFirst ? (int)in.shape[1] : (int)in.shape[0], in.batchFirst ? (int)in.shape[0] : (int)in.shape[1],
                in.batchFirst};
  bool fromLogits = false;
  LossStats stats;
  countedTargets_.clear();
  stats.loss = computeLoss(target, &fromLogits, &stats);
  if (target.kind == LossKind::SoftmaxCrossEntropy) stats.correct = countCorrect(out);
  return stats;
}

void Network::optimizerStep() {
  store_.optimizerStep();
  haveTrainForward_ = false;  // the kept activations belong to the old weights
}

TrainStepResult Network::trainStep(const SequenceInput& in, const LossTarget& target, double clipNorm,
                                   bool carryState, NonFinitePolicy nonFinite) {
  store_.requireOptimizer();
  if (clipNorm < 0 || !std::isfinite(clipNorm)) fail(ErrorCode::Argument, "clipNorm must be a finite number >= 0");
  zeroGrad();
  const SequenceOutput out = forward(in, true, carryState ? &carry_ : nullptr);
  TrainStepResult r;
  countedTargets_.clear();
  r.loss = lossBackward(target).loss;
  r.counted = lastLossCounted_;
  if (target.kind == LossKind::SoftmaxCrossEntropy) r.correct = countCorrect(out);
  r.gradNorm = gradNorm();
  const bool applied = store_.applyStep(r.loss, r.gradNorm, clipNorm);
  haveTrainForward_ = false;  // the kept activations belong to the old weights, or to a step that was refused
  if (!applied) {
    if (carryState) carry_.batch = 0;  // the carried state came from the same forward
    if (nonFinite != NonFinitePolicy::Skip) ParameterStore::refuseStep(r.loss, r.gradNorm);
    r.skipped = true;
  }
  return r;
}

void Network::setParam(const std::string& name, const float* data, std::size_t n) {
  store_.set(name, data, n);
  haveTrainForward_ = false;
}

}  // namespace rnnkit
