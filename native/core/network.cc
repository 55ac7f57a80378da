#include "network.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

#include "error.h"
#include "random.h"

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
}  // namespace

Network::Network(Backend& backend, const NetworkSpec& spec)
    : be_(backend),
      spec_((spec.validate(), spec)),
      layout_(spec),
      params_(&backend),
      grads_(&backend),
      x_(&backend),
      tokens_(&backend),
      lengths_(&backend),
      h0_(&backend),
      c0_(&backend),
      hn_(&backend),
      cn_(&backend),
      output_(&backend),
      dOutput_(&backend),
      dys_{DeviceBuffer(&backend), DeviceBuffer(&backend)},
      dx_(&backend),
      dh0_(&backend),
      dc0_(&backend),
      targets_(&backend),
      staging_(&backend) {
  for (int k = 0; k < spec_.numLayers; ++k)
    for (int d = 0; d < spec_.directions(); ++d)
      layers_.push_back(std::make_unique<RecurrentLayer>(be_, spec_.cell, spec_.resetAfter, spec_.layerInputSize(k),
                                                         spec_.hiddenSize, d == 1));
  params_.reserveFloats(layout_.total());
  grads_.reserveFloats(layout_.total());
  be_.fill(grads_.floats(), layout_.total(), 0.f);
  initParams();
}

void Network::initParams() {
  // PyTorch's defaults: every recurrent tensor U(-1/sqrt(H), 1/sqrt(H)); nn.Linear U(-1/sqrt(fan_in), ...).
  uint64_t seed = spec_.hasSeed ? spec_.seed : ((uint64_t)std::random_device{}() << 32) ^ std::random_device{}();
  Random rng(seed);
  std::vector<float> host(layout_.total(), 0.f);
  const float recurrentBound = 1.f / std::sqrt((float)spec_.hiddenSize);
  const float headBound = 1.f / std::sqrt((float)(spec_.hiddenSize * spec_.directions()));
  for (const ParamEntry& e : layout_.entries()) {
    const float bound = e.name.rfind("head.", 0) == 0 ? headBound : recurrentBound;
    for (std::size_t i = 0; i < e.size; ++i) host[e.offset + i] = rng.uniform(-bound, bound);
  }
  be_.upload(params_.floats(), host.data(), host.size() * sizeof(float));
}

std::size_t Network::memoryBytes() const {
  std::size_t bytes = params_.bytes() + grads_.bytes();
  if (optimizer_) bytes += optimizer_->stateNames().size() * layout_.total() * sizeof(float);
  return bytes;
}

LayerWeights Network::weights(int k, int d) {
  const bool rev = d == 1;
  const ParamEntry& wih = layout_.at(recurrentParamName("weight_ih", k, rev));
  const ParamEntry& whh = layout_.at(recurrentParamName("weight_hh", k, rev));
  const ParamEntry& bih = layout_.at(recurrentParamName("bias_ih", k, rev));
  const ParamEntry& bhh = layout_.at(recurrentParamName("bias_hh", k, rev));
  float* p = params_.floats();
  float* g = grads_.floats();
  return LayerWeights{p + wih.offset, p + whh.offset, p + bih.offset, p + bhh.offset,
                      g + wih.offset, g + whh.offset, g + bih.offset, g + bhh.offset};
}

Network::Shape Network::checkInput(const SequenceInput& in) const {
  const bool symbols = spec_.vocabSize > 0;
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
  const int H = spec_.hiddenSize, D = spec_.directions();
  long long widest = std::max<long long>({(long long)gateCount(spec_.cell) * H, (long long)D * H,
                                          (long long)spec_.layerInputSize(0), (long long)spec_.headSize});
  if (T * B > INT_MAX / widest)
    fail(ErrorCode::Shape, "the batch is too large: time * batch = " + std::to_string(T * B));
  s.T = (int)T;
  s.B = (int)B;
  const std::size_t N = (std::size_t)T * B;
  if (symbols) {
    checkSize("tokens", in.tokens.size(), N, shape);
    if (!in.x.empty()) fail(ErrorCode::Argument, "this network takes token ids (vocabSize is set), not dense x");
    for (std::size_t i = 0; i < N; ++i)
      if (in.tokens[i] < 0 || in.tokens[i] >= spec_.vocabSize)
        fail(ErrorCode::Value, "token " + std::to_string(in.tokens[i]) + " at index " + std::to_string(i) +
                                   " is outside the vocabulary [0, " + std::to_string(spec_.vocabSize) + ")");
  } else {
    if (in.shape[2] != spec_.inputSize)
      fail(ErrorCode::Shape, "input has " + std::to_string(in.shape[2]) + " features, the network expects " +
                                 std::to_string(spec_.inputSize) + " (shape " + shape + ")");
    if (!in.tokens.empty()) fail(ErrorCode::Argument, "this network takes dense x (inputSize is set), not tokens");
    checkSize("x", in.x.size(), N * spec_.inputSize, shape);
  }
  if (!in.lengths.empty()) {
    if (in.lengths.size() != (std::size_t)B)
      fail(ErrorCode::Shape, "lengths has " + std::to_string(in.lengths.size()) + " entries, expected one per batch row (" +
                                 std::to_string(B) + ")");
    for (std::size_t b = 0; b < in.lengths.size(); ++b)
      if (in.lengths[b] < 1 || in.lengths[b] > T)
        fail(ErrorCode::Value, "lengths[" + std::to_string(b) + "] = " + std::to_string(in.lengths[b]) +
                                   " is outside [1, " + std::to_string(T) + "]");
  }
  const std::size_t stateSize = (std::size_t)spec_.numLayers * D * B * H;
  const std::string stateShape = "[" + std::to_string(spec_.numLayers * D) + ", " + std::to_string(B) + ", " +
                                 std::to_string(H) + "]";
  if (!in.h0.empty()) checkSize("h0", in.h0.size(), stateSize, stateShape);
  if (!in.c0.empty()) {
    if (!hasCellState(spec_.cell)) fail(ErrorCode::Argument, "c0 is only for LSTM networks");
    checkSize("c0", in.c0.size(), stateSize, stateShape);
  }
  return s;
}

void Network::uploadSequence(float* dst, const float* src, const Shape& s, int F) {
  const std::size_t row = (std::size_t)F * sizeof(float);
  if (!s.batchFirst) {
    be_.upload(dst, src, (std::size_t)s.T * s.B * row);
    return;
  }
  for (int t = 0; t < s.T; ++t)
    for (int b = 0; b < s.B; ++b)
      be_.upload(dst + ((std::size_t)t * s.B + b) * F, src + ((std::size_t)b * s.T + t) * F, row);
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

std::vector<float> Network::downloadSequence(const float* src, const Shape& s, int F) {
  std::vector<float> out((std::size_t)s.T * s.B * F);
  if (!s.batchFirst) {
    be_.download(out.data(), src, out.size() * sizeof(float));
    return out;
  }
  std::vector<float> tm(out.size());
  be_.download(tm.data(), src, tm.size() * sizeof(float));
  for (int t = 0; t < s.T; ++t)
    for (int b = 0; b < s.B; ++b)
      std::copy_n(tm.data() + ((std::size_t)t * s.B + b) * F, F, out.data() + ((std::size_t)b * s.T + t) * F);
  return out;
}

SequenceOutput Network::forward(const SequenceInput& in, bool train) {
  const Shape s = checkInput(in);
  const int T = s.T, B = s.B, H = spec_.hiddenSize, D = spec_.directions(), L = spec_.numLayers;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H, DH = (std::size_t)D * H;
  haveTrainForward_ = false;

  LayerInput first;
  if (spec_.vocabSize > 0) {
    first.tokens = tokens_.reserveInts(N);
    uploadSequence(tokens_.ints(), in.tokens.data(), s);
  } else {
    first.x = x_.reserveFloats(N * spec_.inputSize);
    first.ldx = spec_.inputSize;
    uploadSequence(x_.floats(), in.x.data(), s, spec_.inputSize);
  }
  const int32_t* lengths = nullptr;
  if (!in.lengths.empty()) {
    lengths = lengths_.reserveInts(B);
    be_.upload(lengths_.ints(), in.lengths.data(), B * sizeof(int32_t));
  }
  const float* h0 = nullptr;
  const float* c0 = nullptr;
  if (!in.h0.empty()) {
    h0 = h0_.reserveFloats(in.h0.size());
    be_.upload(h0_.floats(), in.h0.data(), in.h0.size() * sizeof(float));
  }
  if (!in.c0.empty()) {
    c0 = c0_.reserveFloats(in.c0.size());
    be_.upload(c0_.floats(), in.c0.data(), in.c0.size() * sizeof(float));
  }
  const bool lstm = hasCellState(spec_.cell);
  float* hn = hn_.reserveFloats((std::size_t)L * D * BH);
  float* cn = lstm ? cn_.reserveFloats((std::size_t)L * D * BH) : nullptr;

  // Training keeps every layer's output (the next layer's input, needed again by backward); inference alternates
  // between two buffers.
  const std::size_t buffers = train ? (std::size_t)L : std::min<std::size_t>(2, L);
  while (ys_.size() < buffers) ys_.emplace_back(&be_);
  auto yBuffer = [&](int k) -> float* { return ys_[train ? k : k % 2].floats(); };
  for (int k = 0; k < L; ++k) {
    ys_[train ? k : k % 2].reserveFloats(N * DH);
    LayerInput layerIn = first;
    if (k > 0) layerIn = LayerInput{yBuffer(k - 1), (int)DH, nullptr};
    for (int d = 0; d < D; ++d) {
      const std::size_t slot = ((std::size_t)k * D + d) * BH;
      layer(k, d).forward(weights(k, d), layerIn, T, B, lengths, h0 ? h0 + slot : nullptr, c0 ? c0 + slot : nullptr,
                          yBuffer(k) + (std::size_t)d * H, (int)DH, hn + slot, cn ? cn + slot : nullptr, train);
    }
  }
  const float* top = yBuffer(L - 1);
  const float* output = top;
  if (spec_.headSize > 0) {
    const int V = spec_.headSize;
    const ParamEntry& hw = layout_.at("head.weight");
    const ParamEntry& hb = layout_.at("head.bias");
    float* logits = output_.reserveFloats(N * V);
    be_.broadcastRows(logits, (int)N, V, V, params_.floats() + hb.offset);
    be_.gemm(false, true, (int)N, V, (int)DH, 1.f, top, (int)DH, params_.floats() + hw.offset, (int)DH, 1.f, logits,
             V);
    output = logits;
  }

  SequenceOutput out;
  const int F = spec_.outputSize();
  out.output = downloadSequence(output, s, F);
  out.shape = s.batchFirst ? std::vector<long long>{B, T, F} : std::vector<long long>{T, B, F};
  out.hn.resize((std::size_t)L * D * BH);
  be_.download(out.hn.data(), hn, out.hn.size() * sizeof(float));
  if (lstm) {
    out.cn.resize(out.hn.size());
    be_.download(out.cn.data(), cn, out.cn.size() * sizeof(float));
  }
  if (train) {
    last_ = s;
    haveTrainForward_ = true;
    lastHadLengths_ = lengths != nullptr;
  }
  return out;
}

void Network::backwardFrom(const float* dOutput, const float* dhn, const float* dcn, InputGradient* result) {
  const int T = last_.T, B = last_.B, H = spec_.hiddenSize, D = spec_.directions(), L = spec_.numLayers;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H, DH = (std::size_t)D * H;
  const bool lstm = hasCellState(spec_.cell);
  const int32_t* lengths = lastHadLengths_ ? lengths_.ints() : nullptr;
  const float* top = ys_[L - 1].floats();

  int cur = 0;
  const float* dy = dOutput;
  if (spec_.headSize > 0 && dOutput) {
    const int V = spec_.headSize;
    const ParamEntry& hw = layout_.at("head.weight");
    const ParamEntry& hb = layout_.at("head.bias");
    float* dTop = dys_[cur].reserveFloats(N * DH);
    be_.gemm(false, false, (int)N, (int)DH, V, 1.f, dOutput, V, params_.floats() + hw.offset, (int)DH, 0.f, dTop,
             (int)DH);
    be_.gemm(true, false, V, (int)DH, (int)N, 1.f, dOutput, V, top, (int)DH, 1.f, grads_.floats() + hw.offset,
             (int)DH);
    be_.columnSumAdd(dOutput, (int)N, V, V, grads_.floats() + hb.offset);
    dy = dTop;
  }
  float* dh0 = dh0_.reserveFloats((std::size_t)L * D * BH);
  float* dc0 = lstm ? dc0_.reserveFloats((std::size_t)L * D * BH) : nullptr;
  const bool denseInput = spec_.vocabSize == 0;
  for (int k = L - 1; k >= 0; --k) {
    LayerInput layerIn;
    float* dx = nullptr;
    int ldx = 0;
    if (k > 0) {
      layerIn = LayerInput{ys_[k - 1].floats(), (int)DH, nullptr};
      dx = dys_[cur ^ 1].reserveFloats(N * DH);
      ldx = (int)DH;
    } else if (denseInput) {
      layerIn = LayerInput{x_.floats(), spec_.inputSize, nullptr};
      dx = dx_.reserveFloats(N * spec_.inputSize);
      ldx = spec_.inputSize;
    } else {
      layerIn = LayerInput{nullptr, 0, tokens_.ints()};
    }
    if (dx) be_.fill(dx, N * ldx, 0.f);
    for (int d = 0; d < D; ++d) {
      const std::size_t slot = ((std::size_t)k * D + d) * BH;
      layer(k, d).backward(weights(k, d), layerIn, T, B, lengths, dy ? dy + (std::size_t)d * H : nullptr, (int)DH,
                           dhn ? dhn + slot : nullptr, dcn ? dcn + slot : nullptr, dx, ldx, dh0 + slot,
                           dc0 ? dc0 + slot : nullptr);
    }
    dy = dx;
    cur ^= 1;
  }
  if (result) {
    if (denseInput) result->dx = downloadSequence(dx_.floats(), last_, spec_.inputSize);
    result->dh0.resize((std::size_t)L * D * BH);
    be_.download(result->dh0.data(), dh0, result->dh0.size() * sizeof(float));
    if (lstm) {
      result->dc0.resize(result->dh0.size());
      be_.download(result->dc0.data(), dc0, result->dc0.size() * sizeof(float));
    }
  }
}

InputGradient Network::backward(const OutputGradient& grad) {
  if (!haveTrainForward_)
    fail(ErrorCode::State, "backward needs a training forward first (forward with train: true)");
  const int T = last_.T, B = last_.B, F = spec_.outputSize();
  const std::size_t N = (std::size_t)T * B;
  const std::size_t stateSize = (std::size_t)spec_.numLayers * spec_.directions() * B * spec_.hiddenSize;
  const float* dOut = nullptr;
  if (!grad.dOutput.empty()) {
    checkSize("dOutput", grad.dOutput.size(), N * F, "of the last output");
    dOut = dOutput_.reserveFloats(N * F);
    uploadSequence(dOutput_.floats(), grad.dOutput.data(), last_, F);
  }
  const float* dhn = nullptr;
  const float* dcn = nullptr;
  if (!grad.dhn.empty()) {
    checkSize("dhn", grad.dhn.size(), stateSize, "of hn");
    dhn = staging_.reserveFloats(stateSize * 2);
    be_.upload(staging_.floats(), grad.dhn.data(), stateSize * sizeof(float));
  }
  if (!grad.dcn.empty()) {
    if (!hasCellState(spec_.cell)) fail(ErrorCode::Argument, "dcn is only for LSTM networks");
    checkSize("dcn", grad.dcn.size(), stateSize, "of cn");
    staging_.reserveFloats(stateSize * 2);
    dhn = grad.dhn.empty() ? nullptr : staging_.floats();
    dcn = staging_.floats() + stateSize;
    be_.upload(staging_.floats() + stateSize, grad.dcn.data(), stateSize * sizeof(float));
  }
  InputGradient out;
  backwardFrom(dOut, dhn, dcn, &out);
  return out;
}

LossResult Network::lossBackward(const LossTarget& target) {
  if (!haveTrainForward_)
    fail(ErrorCode::State, "the loss needs a training forward first (forward with train: true)");
  const int T = last_.T, B = last_.B, F = spec_.outputSize();
  const std::size_t N = (std::size_t)T * B;
  const float* output = spec_.headSize > 0 ? output_.floats() : ys_[spec_.numLayers - 1].floats();
  float* dOut = dOutput_.reserveFloats(N * F);
  LossResult result;
  if (target.kind == LossKind::SoftmaxCrossEntropy) {
    checkSize("targets", target.classes.size(), N, last_.batchFirst ? "[batch, time]" : "[time, batch]");
    for (std::size_t i = 0; i < N; ++i)
      if (target.classes[i] >= F)
        fail(ErrorCode::Value, "target " + std::to_string(target.classes[i]) + " at index " + std::to_string(i) +
                                   " is not a class of the output (it has " + std::to_string(F) + ")");
    int32_t* classes = targets_.reserveInts(N);
    uploadSequence(classes, target.classes.data(), last_);
    int counted = 0;
    double total = be_.softmaxCrossEntropy(output, (int)N, F, classes, dOut, &counted);
    result.loss = counted > 0 ? total / counted : 0.0;
  } else {
    checkSize("target", target.values.size(), N * F, "of the output");
    float* values = staging_.reserveFloats(N * F);
    uploadSequence(values, target.values.data(), last_, F);
    result.loss = be_.meanSquaredError(output, values, N * F, dOut);
  }
  backwardFrom(dOut, nullptr, nullptr, &result.grads);
  return result;
}

void Network::zeroGrad() { be_.fill(grads_.floats(), layout_.total(), 0.f); }

double Network::gradNorm() { return std::sqrt(be_.sumSquares(grads_.floats(), layout_.total())); }

double Network::clipGradNorm(double maxNorm) {
  if (!(maxNorm > 0) || !std::isfinite(maxNorm))
    fail(ErrorCode::Argument, "clipNorm must be a finite number > 0");
  const double norm = gradNorm();
  const double coef = maxNorm / (norm + 1e-6);
  if (coef < 1.0) be_.scale(grads_.floats(), layout_.total(), (float)coef);
  return norm;
}

void Network::setOptimizer(const OptimizerConfig& config) {
  optimizer_ = std::make_unique<Optimizer>(be_, config, layout_.total());
}

void Network::optimizerStep() {
  if (!optimizer_) fail(ErrorCode::State, "no optimizer is set: call setOptimizer first");
  optimizer_->step(params_.floats(), grads_.floats());
  haveTrainForward_ = false;  // the kept activations belong to the old weights
}

TrainStepResult Network::trainStep(const SequenceInput& in, const LossTarget& target, double clipNorm) {
  if (!optimizer_) fail(ErrorCode::State, "no optimizer is set: call setOptimizer first");
  zeroGrad();
  forward(in, true);
  TrainStepResult r;
  r.loss = lossBackward(target).loss;
  r.gradNorm = clipNorm > 0 ? clipGradNorm(clipNorm) : gradNorm();
  optimizerStep();
  return r;
}

std::vector<float> Network::getParam(const std::string& name) const {
  const ParamEntry& e = layout_.at(name);
  std::vector<float> out(e.size);
  be_.download(out.data(), params_.floats() + e.offset, e.size * sizeof(float));
  return out;
}

std::vector<float> Network::getGrad(const std::string& name) const {
  const ParamEntry& e = layout_.at(name);
  std::vector<float> out(e.size);
  be_.download(out.data(), grads_.floats() + e.offset, e.size * sizeof(float));
  return out;
}

void Network::setParam(const std::string& name, const float* data, std::size_t n) {
  const ParamEntry& e = layout_.at(name);
  std::string shape;
  for (int d : e.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  checkSize(name.c_str(), n, e.size, "[" + shape + "]");
  be_.upload(params_.floats() + e.offset, data, n * sizeof(float));
  haveTrainForward_ = false;
}

std::vector<float> Network::getOptimizerState(const std::string& slot) const {
  if (!optimizer_) fail(ErrorCode::State, "no optimizer is set");
  std::vector<float> out(layout_.total());
  be_.download(out.data(), optimizer_->stateSlot(slot), out.size() * sizeof(float));
  return out;
}

void Network::setOptimizerState(const std::string& slot, const float* data, std::size_t n) {
  if (!optimizer_) fail(ErrorCode::State, "no optimizer is set");
  checkSize(slot.c_str(), n, layout_.total(), "of the flat parameter vector");
  be_.upload(optimizer_->stateSlot(slot), data, n * sizeof(float));
}

}  // namespace rnnkit
