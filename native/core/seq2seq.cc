#include "seq2seq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "class_targets.h"
#include "error.h"
#include "model_spec.h"

namespace rnnkit {

namespace {
constexpr int kSoftmax = (int)Activation::Softmax;
constexpr int kTanh = (int)Activation::Tanh;

std::string rnnName(const char* stack, const char* kind, int layer) {
  return std::string(stack) + ".rnn." + kind + "_l" + std::to_string(layer);
}

// Batch-first [B, N] ids to time-major [N, B].
std::vector<int32_t> timeMajor(const std::vector<int32_t>& v, int B, int N) {
  std::vector<int32_t> out(v.size());
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < N; ++t) out[(std::size_t)t * B + b] = v[(std::size_t)b * N + t];
  return out;
}

void checkIds(const char* what, const std::vector<int32_t>& ids, std::size_t want, int vocab, const char* shape) {
  if (ids.size() != want)
    fail(ErrorCode::Shape, std::string("seq2seq: ") + what + " has " + std::to_string(ids.size()) +
                               " values, expected " + std::to_string(want) + " (" + shape + ")");
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const int32_t v = ids[i];
    if (v < 0 || v >= vocab)
      fail(ErrorCode::Value, std::string("seq2seq: ") + what + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                 " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
}
}  // namespace

AttentionKind parseAttention(const std::string& name) {
  if (name == "none") return AttentionKind::None;
  if (name == "bahdanau") return AttentionKind::Bahdanau;
  if (name == "luong") return AttentionKind::Luong;
  fail(ErrorCode::Argument, "attention: unknown kind '" + name + "' (known: none, bahdanau, luong)");
}

const char* attentionName(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::None: return "none";
    case AttentionKind::Bahdanau: return "bahdanau";
    case AttentionKind::Luong: return "luong";
  }
  return "?";
}

void Seq2SeqSpec::validate() const {
  auto positive = [](const char* name, int v, int most) {
    if (v < 1 || v > most)
      fail(ErrorCode::Argument, std::string("seq2seq: ") + name + " must be an integer in [1, " + std::to_string(most) +
                                    "], got " + std::to_string(v));
  };
  positive("srcVocab", srcVocab, 1 << 24);
  positive("tgtVocab", tgtVocab, 1 << 24);
  positive("embedSize", embedSize, 1 << 16);
  positive("hiddenSize", hiddenSize, 1 << 14);
  positive("numLayers", numLayers, 64);
}


Seq2Seq::Seq2Seq(Backend& backend, const Seq2SeqSpec& spec)
    : be_(backend),
      spec_((spec.validate(), spec)),
      store_(backend, "seq2seq: no optimizer is set: call setOptimizer first"),
      decodeWeights_(&backend),
      embTable_(&backend),
      srcTok_(&backend),
      tgtTok_(&backend),
      lengths_(&backend),
      targets_(&backend),
      encX_(&backend),
      encH_(&backend),
      encC_(&backend),
      decX_(&backend),
      keysProj_(&backend),
      query_(&backend),
      attn_(&backend),
      concat_(&backend),
      o_(&backend),
      logits_(&backend),
      dLogits_(&backend),
      loopForward_(&backend),
      loopBackward_(&backend),
      gh_(&backend),
      carryH_(&backend),
      carryC_(&backend),
      dy_(&backend),
      dTop_(&backend),
      dConcat_(&backend),
      dPre_(&backend),
      dAttn_(&backend),
      dKeys_(&backend),
      dKeysProj_(&backend),
      dQuery_(&backend),
      dX_(&backend),
      dEmb_(&backend),
      dEncH_(&backend),
      dEncC_(&backend),
      dEncX_(&backend) {
  const int L = spec_.numLayers;
  for (int l = 0; l < L; ++l) {
    encOut_.emplace_back(&backend);
    decOut_.emplace_back(&backend);
    dEncOut_.emplace_back(&backend);
    dDecOut_.emplace_back(&backend);
    gi_.emplace_back(&backend);
    hs_.emplace_back(&backend);
    cs_.emplace_back(&backend);
    saved_.emplace_back(&backend);
    dGi_.emplace_back(&backend);
    dGh_.emplace_back(&backend);
  }
  declare();
  store_.allocate();
  initParams();
}

Seq2Seq::~Seq2Seq() = default;

void Seq2Seq::declare() {
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, G = gateCount(spec_.cell);
  const bool bahdanau = spec_.attention == AttentionKind::Bahdanau;
  auto stack = [&](Stack& st, const char* name, int firstInput) {
    for (int l = 0; l < L; ++l) {
      Layer layer;
      layer.input = l == 0 ? firstInput : H;
      layer.wih = store_.layout().add(rnnName(name, "weight_ih", l), {G * H, layer.input});
      layer.whh = store_.layout().add(rnnName(name, "weight_hh", l), {G * H, H});
      layer.bih = store_.layout().add(rnnName(name, "bias_ih", l), {G * H});
      layer.bhh = store_.layout().add(rnnName(name, "bias_hh", l), {G * H});
      st.layers.push_back(layer);
      st.runners.push_back(
          std::make_unique<RecurrentLayer>(be_, spec_.cell, true, GateActivation::Sigmoid, layer.input, H, false));
    }
  };
  encEmb_ = store_.layout().add("encoder.embedding.weight", {spec_.srcVocab, E});
  stack(enc_, "encoder", E);
  decEmb_ = store_.layout().add("decoder.embedding.weight", {spec_.tgtVocab, E});
  stack(dec_, "decoder", bahdanau ? E + H : E);
  if (bahdanau) {
    wa_ = store_.layout().add("decoder.attention.Wa.weight", {H, H});
    ba_ = store_.layout().add("decoder.attention.Wa.bias", {H});
    ua_ = store_.layout().add("decoder.attention.Ua.weight", {H, H});
    bua_ = store_.layout().add("decoder.attention.Ua.bias", {H});
    va_ = store_.layout().add("decoder.attention.Va.weight", {1, H});
    bva_ = store_.layout().add("decoder.attention.Va.bias", {1});
  } else if (spec_.attention == AttentionKind::Luong) {
    wc_ = store_.layout().add("decoder.attention.Wc.weight", {H, 2 * H});
    bc_ = store_.layout().add("decoder.attention.Wc.bias", {H});
  }
  outW_ = store_.layout().add("decoder.out.weight", {spec_.tgtVocab, H});
  outB_ = store_.layout().add("decoder.out.bias", {spec_.tgtVocab});
}

void Seq2Seq::initParams() {
  // PyTorch's defaults: nn.Embedding N(0, 1); nn.GRU/LSTM U(-1/sqrt(H), 1/sqrt(H)); nn.Linear U(-1/sqrt(fan_in), ..).
  const uint64_t seed =
      spec_.hasSeed ? spec_.seed : ((uint64_t)std::random_device{}() << 32) ^ std::random_device{}();
  Random rng(seed);
  std::vector<float> host(store_.layout().total(), 0.f);
  const float rnnBound = 1.f / std::sqrt((float)spec_.hiddenSize);
  for (const ParamEntry& e : store_.layout().entries()) {
    float* p = host.data() + e.offset;
    if (e.name.find(".embedding.") != std::string::npos) {
      for (std::size_t i = 0; i < e.size; ++i) {
        const float u1 = std::max(rng.uniform(), 1e-7f), u2 = rng.uniform();
        p[i] = std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
      }
    } else if (e.name.find(".rnn.") != std::string::npos) {
      for (std::size_t i = 0; i < e.size; ++i) p[i] = rng.uniform(-rnnBound, rnnBound);
    } else {
      // A linear layer's weight [out, in] and its bias share the bound of the weight's fan-in.
      const std::string weightName = e.name.substr(0, e.name.rfind('.')) + ".weight";
      const ParamEntry& w = store_.layout().at(weightName);
      const float bound = 1.f / std::sqrt((float)w.shape[1]);
      for (std::size_t i = 0; i < e.size; ++i) p[i] = rng.uniform(-bound, bound);
    }
  }
  store_.initialize(host);
}

LayerWeights Seq2Seq::weights(const Layer& l) const {
  float* p = store_.params();
  float* g = store_.grads();
  return LayerWeights{p + l.wih, p + l.whh, p + l.bih, p + l.bhh, g + l.wih, g + l.whh, g + l.bih, g + l.bhh};
}

void Seq2Seq::checkSource(const std::vector<int32_t>& src, int B, int S, const std::vector<int32_t>& lengths) const {
  if (B < 1 || S < 1)
    fail(ErrorCode::Shape, "seq2seq: the source must have shape [batch, steps] with both at least 1, got [" +
                               std::to_string(B) + ", " + std::to_string(S) + "]");
  if ((long long)B * S > (1LL << 28)) fail(ErrorCode::Shape, "seq2seq: the source batch is too large");
  checkIds("source", src, (std::size_t)B * S, spec_.srcVocab, "[batch, srcSteps]");
  if (!lengths.empty()) {
    if (lengths.size() != (std::size_t)B)
      fail(ErrorCode::Shape, "seq2seq: sourceLengths has " + std::to_string(lengths.size()) +
                                 " entries, expected one per batch row (" + std::to_string(B) + ")");
    for (std::size_t b = 0; b < lengths.size(); ++b)
      if (lengths[b] < 1 || lengths[b] > S)
        fail(ErrorCode::Value, "seq2seq: sourceLengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                                   " is outside [1, " + std::to_string(S) + "]");
  }
}

void Seq2Seq::checkBatch(const Seq2SeqBatch& b, bool needTargets) const {
  checkSource(b.src, b.batch, b.srcLen, b.srcLengths);
  if (b.tgtLen < 1)
    fail(ErrorCode::Shape, "seq2seq: the decoder input must have at least one step, got " + std::to_string(b.tgtLen));
  if ((long long)b.batch * b.tgtLen > (1LL << 28)) fail(ErrorCode::Shape, "seq2seq: the target batch is too large");
  checkIds("decoder input", b.tgtIn, (std::size_t)b.batch * b.tgtLen, spec_.tgtVocab, "[batch, tgtSteps]");
  if (needTargets || !b.targets.empty()) {
    const std::size_t n = (std::size_t)b.batch * b.tgtLen;
    if (b.targets.size() != n)
      fail(ErrorCode::Shape, "seq2seq: targets has " + std::to_string(b.targets.size()) + " values, expected " +
                                 std::to_string(n) + " ([batch, tgtSteps], the shape of the decoder input)");
    // The cross-entropy rule of the core (class_targets.h): -1 marks a position left out, any other id is a class.
    std::vector<int32_t> kernelTargets(n);
    classTargetsForKernel(b.targets.data(), n, spec_.tgtVocab, kDefaultIgnoreIndex, [](std::size_t) { return false; },
                          kernelTargets.data(), "seq2seq: target");
  }
}

void Seq2Seq::encode(int B, int S, bool train, const int32_t* lengths) {
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers;
  const std::size_t N = (std::size_t)S * B, BH = (std::size_t)B * H;
  float* x = encX_.reserveFloats(N * E);
  be_.gatherRows(store_.params() + encEmb_, E, srcTok_.ints(), (int)N, x);
  float* hn = encH_.reserveFloats((std::size_t)L * BH);
  float* cn = hasCellState(spec_.cell) ? encC_.reserveFloats((std::size_t)L * BH) : nullptr;
  for (int l = 0; l < L; ++l) {
    LayerInput in;
    in.x = l == 0 ? x : encOut_[l - 1].floats();
    in.ldx = l == 0 ? E : H;
    float* y = encOut_[l].reserveFloats(N * H);
    enc_.runners[l]->forward(weights(enc_.layers[l]), in, S, B, lengths, nullptr, nullptr, y, H, hn + l * BH,
                             cn ? cn + l * BH : nullptr, train);
  }
}

Seq2SeqForward Seq2Seq::forward(const Seq2SeqBatch& batch, bool train) {
  checkBatch(batch, train);
  const int B = batch.batch, S = batch.srcLen, T = batch.tgtLen;
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, V = spec_.tgtVocab;
  haveTrainForward_ = false;
  const std::vector<int32_t> src = timeMajor(batch.src, B, S);
  const std::vector<int32_t> tgt = timeMajor(batch.tgtIn, B, T);
  be_.upload(srcTok_.reserveInts(src.size()), src.data(), src.size() * sizeof(int32_t));
  be_.upload(tgtTok_.reserveInts(tgt.size()), tgt.data(), tgt.size() * sizeof(int32_t));
  lastHadLengths_ = !batch.srcLengths.empty();
  const int32_t* lengths = nullptr;
  if (lastHadLengths_) {
    be_.upload(lengths_.reserveInts(B), batch.srcLengths.data(), B * sizeof(int32_t));
    lengths = lengths_.ints();
  }
  lastTargets_ = batch.targets.empty() ? std::vector<int32_t>() : timeMajor(batch.targets, B, T);
  if (!lastTargets_.empty())
    be_.upload(targets_.reserveInts(lastTargets_.size()), lastTargets_.data(), lastTargets_.size() * sizeof(int32_t));

  encode(B, S, train, lengths);
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H;
  if (spec_.attention == AttentionKind::Bahdanau) {
    decodeTrainBahdanau(B, S, T, lengths, train);
  } else {
    float* x = decX_.reserveFloats(N * E);
    be_.gatherRows(store_.params() + decEmb_, E, tgtTok_.ints(), (int)N, x);
    const float* cn = hasCellState(spec_.cell) ? encC_.floats() : nullptr;
    for (int l = 0; l < L; ++l) {
      LayerInput in;
      in.x = l == 0 ? x : decOut_[l - 1].floats();
      in.ldx = l == 0 ? E : H;
      float* y = decOut_[l].reserveFloats(N * H);
      dec_.runners[l]->forward(weights(dec_.layers[l]), in, T, B, nullptr, encH_.floats() + l * BH,
                               cn ? cn + l * BH : nullptr, y, H, nullptr, nullptr, train);
    }
  }
  headForward(B, S, T, lengths);
  lastB_ = B;
  lastS_ = S;
  lastT_ = T;
  haveTrainForward_ = train;

  Seq2SeqForward out;
  std::vector<float> tm(N * V);
  be_.download(tm.data(), logits_.floats(), tm.size() * sizeof(float));
  out.logits.resize(tm.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      std::copy_n(tm.data() + ((std::size_t)t * B + b) * V, V, out.logits.data() + ((std::size_t)b * T + t) * V);
  if (spec_.attention != AttentionKind::None) {
    std::vector<float> a(N * S);
    be_.download(a.data(), attn_.floats(), a.size() * sizeof(float));
    out.attention.resize(a.size());
    for (int t = 0; t < T; ++t)
      for (int b = 0; b < B; ++b)
        std::copy_n(a.data() + ((std::size_t)t * B + b) * S, S, out.attention.data() + ((std::size_t)b * T + t) * S);
  }
  return out;
}

// Bahdanau: the attention reads h_top(t-1) and feeds the recurrence, so the stack runs step by step (every layer at
// step t before step t+1). The embedding part of the first layer's input projection is hoisted over all steps.
void Seq2Seq::decodeTrainBahdanau(int B, int S, int T, const int32_t* lengths, bool train) {
  (void)train;  // the step loop always keeps its activations: the same buffers serve evaluate
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, G = gateCount(spec_.cell);
  const int GH = G * H, XI = E + H, SW = savedWidth(spec_.cell);
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H;
  const bool lstm = hasCellState(spec_.cell);
  float* p = store_.params();
  const float* K = encOut_[L - 1].floats();

  // The keys' projection, once per source batch.
  float* kp = keysProj_.reserveFloats((std::size_t)S * B * H);
  be_.broadcastRows(kp, S * B, H, H, p + bua_);
  be_.gemm(false, true, S * B, H, H, 1.f, K, H, p + ua_, H, 1.f, kp, H);

  // [e_t, c_t] rows; the embeddings now, the contexts as the loop makes them.
  float* x = decX_.reserveFloats(N * XI);
  float* emb = dEmb_.reserveFloats(N * E);  // scratch until backward
  be_.gatherRows(p + decEmb_, E, tgtTok_.ints(), (int)N, emb);
  be_.copy2d((int)N, E, emb, E, x, XI);
  const Layer& l0 = dec_.layers[0];
  float* gi0 = gi_[0].reserveFloats(N * GH);
  be_.broadcastRows(gi0, (int)N, GH, GH, p + l0.bih);
  be_.gemm(false, true, (int)N, GH, E, 1.f, emb, E, p + l0.wih, XI, 1.f, gi0, GH);

  for (int l = 0; l < L; ++l) {
    if (l > 0) gi_[l].reserveFloats(N * GH);
    float* hs = hs_[l].reserveFloats((std::size_t)(T + 1) * BH);
    be_.copy(hs, encH_.floats() + l * BH, BH * sizeof(float));
    if (lstm) be_.copy(cs_[l].reserveFloats((std::size_t)(T + 1) * BH), encC_.floats() + l * BH, BH * sizeof(float));
    if (SW) saved_[l].reserveFloats(N * SW * H);
  }
  float* gh = gh_.reserveFloats((std::size_t)B * GH);
  float* q = query_.reserveFloats(N * H);
  float* attn = attn_.reserveFloats(N * S);
  // Every step multiplies by Wa, the context columns of layer 0's W_ih, and each layer's W_hh (and W_ih above 0).
  loopForward_.set(0, p + wa_, true, H, H, H, B, T);
  loopForward_.set(1, p + l0.wih + E, true, GH, H, XI, B, T);
  for (int l = 0; l < L; ++l) {
    loopForward_.set(2 + 2 * l, p + dec_.layers[l].whh, true, GH, H, H, B, T);
    if (l > 0) loopForward_.set(3 + 2 * l, p + dec_.layers[l].wih, true, GH, H, H, B, T);
  }

  CellForwardStep step;
  step.cell = spec_.cell;
  step.batch = B;
  step.hidden = H;
  step.ldgi = GH;
  step.ldgh = GH;
  for (int t = 0; t < T; ++t) {
    const float* hTopPrev = hs_[L - 1].floats() + (std::size_t)t * BH;
    float* qt = q + (std::size_t)t * BH;
    float* at = attn + (std::size_t)t * B * S;
    float* ct = x + (std::size_t)t * B * XI + E;
    be_.broadcastRows(qt, B, H, H, p + ba_);
    loopForward_.multiply(0, B, hTopPrev, H, 1.f, qt, H);
    be_.additiveAttention(qt, kp, K, H, p + va_, p + bva_, B, 1, S, H, lengths, at, 0.f, ct, XI);
    loopForward_.multiply(1, B, ct, XI, 1.f, gi0 + (std::size_t)t * B * GH, GH);
    for (int l = 0; l < L; ++l) {
      const Layer& layer = dec_.layers[l];
      float* gi = gi_[l].floats() + (std::size_t)t * B * GH;
      if (l > 0) {
        be_.broadcastRows(gi, B, GH, GH, p + layer.bih);
        loopForward_.multiply(3 + 2 * l, B, hs_[l - 1].floats() + (std::size_t)(t + 1) * BH, H, 1.f, gi, GH);
      }
      float* hs = hs_[l].floats();
      be_.broadcastRows(gh, B, GH, GH, p + layer.bhh);
      loopForward_.multiply(2 + 2 * l, B, hs + (std::size_t)t * BH, H, 1.f, gh, GH);
      step.gi = gi;
      step.gh = gh;
      step.hPrev = hs + (std::size_t)t * BH;
      step.hNext = hs + (std::size_t)(t + 1) * BH;
      step.cPrev = lstm ? cs_[l].floats() + (std::size_t)t * BH : nullptr;
      step.cNext = lstm ? cs_[l].floats() + (std::size_t)(t + 1) * BH : nullptr;
      step.saved = SW ? saved_[l].floats() + (std::size_t)t * B * SW * H : nullptr;
      step.t = t;
      be_.cellForward(step);
    }
  }
}

void Seq2Seq::headForward(int B, int S, int T, const int32_t* lengths) {
  const int H = spec_.hiddenSize, L = spec_.numLayers, V = spec_.tgtVocab;
  const std::size_t N = (std::size_t)T * B;
  float* p = store_.params();
  const float* top = spec_.attention == AttentionKind::Bahdanau ? hs_[L - 1].floats() + (std::size_t)B * H
                                                                 : decOut_[L - 1].floats();
  const float* headIn = top;
  if (spec_.attention == AttentionKind::Luong) {
    // Every step's scores, weights and contexts at once: per batch row, [T, H] x [S, H]^T and [T, S] x [S, H].
    const float* K = encOut_[L - 1].floats();
    float* attn = attn_.reserveFloats(N * S);
    float* cat = concat_.reserveFloats(N * 2 * H);
    be_.gemmBatched(false, true, T, S, H, 1.f, top, B * H, H, K, B * H, H, 0.f, attn, B * S, S, B);
    be_.maskedSoftmax(attn, (int)N, S, lengths, B);
    be_.gemmBatched(false, false, T, H, S, 1.f, attn, B * S, S, K, B * H, H, 0.f, cat, B * 2 * H, 2 * H, B);
    be_.copy2d((int)N, H, top, H, cat + H, 2 * H);
    float* o = o_.reserveFloats(N * H);
    be_.broadcastRows(o, (int)N, H, H, p + bc_);
    be_.gemm(false, true, (int)N, H, 2 * H, 1.f, cat, 2 * H, p + wc_, 2 * H, 1.f, o, H);
    be_.activate(kTanh, o, (int)N, H);
    headIn = o;
  }
  float* logits = logits_.reserveFloats(N * V);
  be_.broadcastRows(logits, (int)N, V, V, p + outB_);
  be_.gemm(false, true, (int)N, V, H, 1.f, headIn, H, p + outW_, H, 1.f, logits, V);
}

double Seq2Seq::lossBackward() {
  if (!haveTrainForward_)
    fail(ErrorCode::State, "seq2seq: the loss needs a training forward first (forward with train: true)");
  if (lastTargets_.empty()) fail(ErrorCode::Argument, "seq2seq: the last forward was given no targets");
  const int B = lastB_, S = lastS_, T = lastT_, V = spec_.tgtVocab, H = spec_.hiddenSize, L = spec_.numLayers;
  const int E = spec_.embedSize;
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H;
  const int32_t* lengths = lastHadLengths_ ? lengths_.ints() : nullptr;
  float* dLogits = dLogits_.reserveFloats(N * V);
  int counted = 0;
  const double total = be_.softmaxCrossEntropy(logits_.floats(), (int)N, V, targets_.ints(), dLogits, &counted);
  const double loss = counted > 0 ? total / counted : 0.0;

  float* dKeys = dKeys_.reserveFloats((std::size_t)S * B * H);
  be_.fill(dKeys, (std::size_t)S * B * H, 0.f);
  float* dEncH = dEncH_.reserveFloats((std::size_t)L * BH);
  float* dEncC = hasCellState(spec_.cell) ? dEncC_.reserveFloats((std::size_t)L * BH) : nullptr;
  headBackward(B, S, T, lengths);
  if (spec_.attention == AttentionKind::Bahdanau) {
    backwardBahdanau(B, S, T, lengths);
  } else {
    float* dEmb = dEmb_.reserveFloats(N * E);
    for (int l = L - 1; l >= 0; --l) {
      float* dx = l > 0 ? dDecOut_[l - 1].reserveFloats(N * H) : dEmb;
      be_.fill(dx, N * (l > 0 ? H : E), 0.f);
      LayerInput in;
      in.x = l == 0 ? decX_.floats() : decOut_[l - 1].floats();
      in.ldx = l == 0 ? E : H;
      const float* dy = l == L - 1 ? dTop_.floats() : dDecOut_[l].floats();
      dec_.runners[l]->backward(weights(dec_.layers[l]), in, T, B, nullptr, dy, H, nullptr, nullptr, dx,
                                l > 0 ? H : E, dEncH + l * BH, dEncC ? dEncC + l * BH : nullptr);
    }
    be_.scatterAddRows(dEmb, (int)N, E, tgtTok_.ints(), store_.grads() + decEmb_);
  }
  encodeBackward(B, S, lengths);
  return loss;
}

void Seq2Seq::headBackward(int B, int S, int T, const int32_t* lengths) {
  (void)lengths;  // the masked weights are 0, and so are their gradients
  const int H = spec_.hiddenSize, L = spec_.numLayers, V = spec_.tgtVocab;
  const std::size_t N = (std::size_t)T * B;
  float* p = store_.params();
  float* g = store_.grads();
  const float* top = spec_.attention == AttentionKind::Bahdanau ? hs_[L - 1].floats() + (std::size_t)B * H
                                                                 : decOut_[L - 1].floats();
  const float* headIn = spec_.attention == AttentionKind::Luong ? o_.floats() : top;
  const float* dLogits = dLogits_.floats();
  be_.gemm(true, false, V, H, (int)N, 1.f, dLogits, V, headIn, H, 1.f, g + outW_, H);
  be_.columnSumAdd(dLogits, (int)N, V, V, g + outB_);
  float* dTop = dTop_.reserveFloats(N * H);
  if (spec_.attention != AttentionKind::Luong) {
    be_.gemm(false, false, (int)N, H, V, 1.f, dLogits, V, p + outW_, H, 0.f, dTop, H);
    return;
  }
  const float* K = encOut_[L - 1].floats();
  float* dKeys = dKeys_.floats();
  float* dO = dPre_.reserveFloats(N * H);
  be_.gemm(false, false, (int)N, H, V, 1.f, dLogits, V, p + outW_, H, 0.f, dO, H);
  be_.activationBackward(kTanh, o_.floats(), dO, dO, (int)N, H);
  const float* cat = concat_.floats();
  be_.gemm(true, false, H, 2 * H, (int)N, 1.f, dO, H, cat, 2 * H, 1.f, g + wc_, 2 * H);
  be_.columnSumAdd(dO, (int)N, H, H, g + bc_);
  float* dCat = dConcat_.reserveFloats(N * 2 * H);
  be_.gemm(false, false, (int)N, 2 * H, H, 1.f, dO, H, p + wc_, 2 * H, 0.f, dCat, 2 * H);
  const float* attn = attn_.floats();
  float* dA = dAttn_.reserveFloats(N * S);
  // context = a K: da = dc K^T, dK += a^T dc (per batch row).
  be_.gemmBatched(false, true, T, S, H, 1.f, dCat, B * 2 * H, 2 * H, K, B * H, H, 0.f, dA, B * S, S, B);
  be_.gemmBatched(true, false, S, H, T, 1.f, attn, B * S, S, dCat, B * 2 * H, 2 * H, 1.f, dKeys, B * H, H, B);
  be_.activationBackward(kSoftmax, attn, dA, dA, (int)N, S);
  // scores = h K^T: dh += ds K, dK += ds^T h.
  be_.copy2d((int)N, H, dCat + H, 2 * H, dTop, H);
  be_.gemmBatched(false, false, T, H, S, 1.f, dA, B * S, S, K, B * H, H, 1.f, dTop, B * H, H, B);
  be_.gemmBatched(true, false, S, H, T, 1.f, dA, B * S, S, top, B * H, H, 1.f, dKeys, B * H, H, B);
}

void Seq2Seq::backwardBahdanau(int B, int S, int T, const int32_t* lengths) {
  (void)lengths;
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, G = gateCount(spec_.cell);
  const int GH = G * H, XI = E + H, SW = savedWidth(spec_.cell);
  const std::size_t N = (std::size_t)T * B, BH = (std::size_t)B * H, LBH = (std::size_t)L * BH;
  const bool lstm = hasCellState(spec_.cell);
  const bool separateGh = spec_.cell == CellKind::Gru;  // reset-after GRU: the recurrent gate gradients differ
  float* p = store_.params();
  float* g = store_.grads();
  const float* K = encOut_[L - 1].floats();
  const float* kp = keysProj_.floats();
  const float* x = decX_.floats();
  const float* attn = attn_.floats();
  const float* q = query_.floats();
  float* dKeys = dKeys_.floats();
  float* dKp = dKeysProj_.reserveFloats((std::size_t)S * B * H);
  be_.fill(dKp, (std::size_t)S * B * H, 0.f);
  float* dQ = dQuery_.reserveFloats(N * H);
  float* dX = dX_.reserveFloats(N * XI);
  float* carryH = carryH_.reserveFloats(2 * LBH);
  be_.fill(carryH, 2 * LBH, 0.f);
  float* carryC = lstm ? carryC_.reserveFloats(2 * LBH) : nullptr;
  if (lstm) be_.fill(carryC, 2 * LBH, 0.f);
  float* dyBuf = dy_.reserveFloats(2 * BH);
  std::vector<float*> dGi(L), dGh(L);
  for (int l = 0; l < L; ++l) {
    dGi[l] = dGi_[l].reserveFloats(N * GH);
    dGh[l] = separateGh ? dGh_[l].reserveFloats(N * GH) : dGi[l];
  }
  const float* dTop = dTop_.floats();
  // Every step multiplies by each layer's W_hh and W_ih (untransposed: gradients flow back) and by Wa.
  loopBackward_.set(0, p + wa_, false, H, H, H, B, T);
  for (int l = 0; l < L; ++l) {
    const Layer& layer = dec_.layers[l];
    loopBackward_.set(1 + 2 * l, p + layer.whh, false, H, GH, H, B, T);
    loopBackward_.set(2 + 2 * l, p + layer.wih, false, layer.input, GH, layer.input, B, T);
  }

  CellBackwardStep step;
  step.cell = spec_.cell;
  step.batch = B;
  step.hidden = H;
  step.ldy = H;
  step.ldgi = GH;
  step.ldgh = GH;
  int cur = 0;
  for (int t = T - 1; t >= 0; --t) {
    for (int l = L - 1; l >= 0; --l) {
      const float* hs = hs_[l].floats();
      step.t = t;
      step.saved = SW ? saved_[l].floats() + (std::size_t)t * B * SW * H : nullptr;
      step.hPrev = hs + (std::size_t)t * BH;
      step.hNext = hs + (std::size_t)(t + 1) * BH;
      step.cPrev = lstm ? cs_[l].floats() + (std::size_t)t * BH : nullptr;
      step.cNext = lstm ? cs_[l].floats() + (std::size_t)(t + 1) * BH : nullptr;
      step.dy = l == L - 1 ? dTop + (std::size_t)t * BH : dyBuf + (std::size_t)(l & 1) * BH;
      step.dh = carryH + cur * LBH + l * BH;
      step.dc = lstm ? carryC + cur * LBH + l * BH : nullptr;
      step.dGi = dGi[l] + (std::size_t)t * B * GH;
      step.dGh = dGh[l] + (std::size_t)t * B * GH;
      step.dhPrev = carryH + (cur ^ 1) * LBH + l * BH;
      step.dcPrev = lstm ? carryC + (cur ^ 1) * LBH + l * BH : nullptr;
      be_.cellBackward(step);
      loopBackward_.multiply(1 + 2 * l, B, step.dGh, GH, 1.f, step.dhPrev, H);
      if (l > 0)
        loopBackward_.multiply(2 + 2 * l, B, step.dGi, GH, 0.f, dyBuf + (std::size_t)((l - 1) & 1) * BH, H);
      else
        loopBackward_.multiply(2, B, step.dGi, GH, 0.f, dX + (std::size_t)t * B * XI, XI);
    }
    // The attention of step t: its context fed layer 0, its query was h_top(t-1).
    const float* dc = dX + (std::size_t)t * B * XI + E;
    const float* at = attn + (std::size_t)t * B * S;
    float* dQt = dQ + (std::size_t)t * BH;
    be_.additiveAttentionBackward(dc, XI, at, q + (std::size_t)t * BH, kp, K, p + va_, B, S, H, dKeys, dKp, dQt,
                                  g + va_);
    loopBackward_.multiply(0, B, dQt, H, 1.f, carryH + (cur ^ 1) * LBH + (L - 1) * BH, H);
    cur ^= 1;
  }
  be_.copy(dEncH_.floats(), carryH + cur * LBH, LBH * sizeof(float));
  if (lstm) be_.copy(dEncC_.floats(), carryC + cur * LBH, LBH * sizeof(float));

  // Weight gradients over all steps at once.
  for (int l = 0; l < L; ++l) {
    const Layer& layer = dec_.layers[l];
    const float* in = l == 0 ? x : hs_[l - 1].floats() + BH;
    const int ldIn = l == 0 ? XI : H;
    be_.gemm(true, false, GH, layer.input, (int)N, 1.f, dGi[l], GH, in, ldIn, 1.f, g + layer.wih, layer.input);
    be_.columnSumAdd(dGi[l], (int)N, GH, GH, g + layer.bih);
    be_.gemm(true, false, GH, H, (int)N, 1.f, dGh[l], GH, hs_[l].floats(), H, 1.f, g + layer.whh, H);
    be_.columnSumAdd(dGh[l], (int)N, GH, GH, g + layer.bhh);
  }
  be_.gemm(true, false, H, H, (int)N, 1.f, dQ, H, hs_[L - 1].floats(), H, 1.f, g + wa_, H);
  be_.columnSumAdd(dQ, (int)N, H, H, g + ba_);
  be_.gemm(true, false, H, H, S * B, 1.f, dKp, H, K, H, 1.f, g + ua_, H);
  be_.columnSumAdd(dKp, S * B, H, H, g + bua_);
  be_.gemm(false, false, S * B, H, H, 1.f, dKp, H, p + ua_, H, 1.f, dKeys, H);
  float* dEmb = dEmb_.reserveFloats(N * E);
  be_.copy2d((int)N, E, dX, XI, dEmb, E);
  be_.scatterAddRows(dEmb, (int)N, E, tgtTok_.ints(), g + decEmb_);
}

void Seq2Seq::encodeBackward(int B, int S, const int32_t* lengths) {
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers;
  const std::size_t N = (std::size_t)S * B, BH = (std::size_t)B * H;
  float* dEncC = hasCellState(spec_.cell) ? dEncC_.floats() : nullptr;
  float* dEmb = dEncX_.reserveFloats(N * E);
  for (int l = L - 1; l >= 0; --l) {
    float* dx = l > 0 ? dEncOut_[l - 1].reserveFloats(N * H) : dEmb;
    be_.fill(dx, N * (l > 0 ? H : E), 0.f);
    LayerInput in;
    in.x = l == 0 ? encX_.floats() : encOut_[l - 1].floats();
    in.ldx = l == 0 ? E : H;
    const float* dy = l == L - 1 ? dKeys_.floats() : dEncOut_[l].floats();
    enc_.runners[l]->backward(weights(enc_.layers[l]), in, S, B, lengths, dy, H, dEncH_.floats() + l * BH,
                              dEncC ? dEncC + l * BH : nullptr, dx, l > 0 ? H : E, nullptr, nullptr);
  }
  be_.scatterAddRows(dEmb, (int)N, E, srcTok_.ints(), store_.grads() + encEmb_);
}

double Seq2Seq::evaluate(const Seq2SeqBatch& batch, int* counted) {
  checkBatch(batch, true);
  forward(batch, false);
  const std::size_t N = (std::size_t)lastT_ * lastB_;
  float* dLogits = dLogits_.reserveFloats(N * spec_.tgtVocab);
  int n = 0;
  const double total = be_.softmaxCrossEntropy(logits_.floats(), (int)N, spec_.tgtVocab, targets_.ints(), dLogits, &n);
  if (counted) *counted = n;
  return n > 0 ? total / n : 0.0;
}

double Seq2Seq::trainStep(const Seq2SeqBatch& batch, double clipNorm) {
  store_.requireOptimizer();
  zeroGrad();
  forward(batch, true);
  const double loss = lossBackward();
  const double norm = store_.gradNorm();
  const bool applied = store_.applyStep(loss, norm, clipNorm);
  haveTrainForward_ = false;  // the kept activations belong to the old weights, or to a step that was refused
  if (!applied) ParameterStore::refuseStep(loss, norm);
  return loss;
}

void Seq2Seq::optimizerStep() {
  store_.optimizerStep();
  haveTrainForward_ = false;
}

void Seq2Seq::setParam(const std::string& name, const float* data, std::size_t n) {
  store_.set(name, data, n);
  haveTrainForward_ = false;
}

// ---- decoding ----

std::unique_ptr<DecoderState> Seq2Seq::beginDecode(const std::vector<int32_t>& src, int B, int S,
                                                   const std::vector<int32_t>& srcLengths) {
  checkSource(src, B, S, srcLengths);
  const int H = spec_.hiddenSize, L = spec_.numLayers;
  haveTrainForward_ = false;
  const std::vector<int32_t> tm = timeMajor(src, B, S);
  be_.upload(srcTok_.reserveInts(tm.size()), tm.data(), tm.size() * sizeof(int32_t));
  const int32_t* lengths = nullptr;
  auto st = std::make_unique<DecoderState>(&be_);
  st->R = B;
  st->S = S;
  st->hasLengths = !srcLengths.empty();
  if (st->hasLengths) {
    st->hostLengths = srcLengths;
    lengths = st->lengths.reserveInts(B);
    be_.upload(st->lengths.ints(), srcLengths.data(), B * sizeof(int32_t));
  }
  encode(B, S, false, lengths);
  prepareStepWeights(*st, 1, st->weights);  // a stepping decoder reads the weights in place: they may change between its steps
  const std::size_t LBH = (std::size_t)L * B * H;
  be_.copy(st->keys.reserveFloats((std::size_t)S * B * H), encOut_[L - 1].floats(), (std::size_t)S * B * H * sizeof(float));
  be_.copy(st->h[0].reserveFloats(LBH), encH_.floats(), LBH * sizeof(float));
  if (hasCellState(spec_.cell)) be_.copy(st->c[0].reserveFloats(LBH), encC_.floats(), LBH * sizeof(float));
  if (spec_.attention == AttentionKind::Bahdanau) {
    float* kp = st->keysProj.reserveFloats((std::size_t)S * B * H);
    be_.broadcastRows(kp, S * B, H, H, store_.params() + bua_);
    be_.gemm(false, true, S * B, H, H, 1.f, st->keys.floats(), H, store_.params() + ua_, H, 1.f, kp, H);
  }
  return st;
}

// Slots: 0 Wa, 1 Wc, 2 out, then per layer 3 + 2l W_ih (layer 0: its embedding columns) and 4 + 2l W_hh, then
// (Bahdanau) layer 0's context columns of W_ih.
void Seq2Seq::prepareStepWeights(DecoderState& st, int steps, StepWeightSet& w) {
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, V = spec_.tgtVocab;
  const int GH = gateCount(spec_.cell) * H;
  const float* p = store_.params();
  if (spec_.attention == AttentionKind::Bahdanau) w.set(0, p + wa_, true, H, H, H, st.R, steps);
  if (spec_.attention == AttentionKind::Luong) w.set(1, p + wc_, true, H, 2 * H, 2 * H, st.R, steps);
  w.set(2, p + outW_, true, V, H, H, st.R, steps);
  for (int l = 0; l < L; ++l) {
    const Layer& layer = dec_.layers[l];
    // With a per-token table layer 0's embedding columns are never multiplied during the decode.
    if (l > 0 || !st.embTableReady)
      w.set(3 + 2 * l, p + layer.wih, true, GH, l == 0 ? E : layer.input, layer.input, st.R, steps);
    w.set(4 + 2 * l, p + layer.whh, true, GH, H, H, st.R, steps);
  }
  if (spec_.attention == AttentionKind::Bahdanau && !st.keyGatesReady)
    w.set(contextSlot(), p + dec_.layers[0].wih + E, true, GH, H, dec_.layers[0].input, st.R, steps);
}

// Bahdanau, a whole decode: every source row's keys through layer 0's context columns of W_ih, [S, B, G*H], when
// that costs fewer rows than the contexts it replaces (S x source rows < decoder rows x steps: a beam's hypotheses
// share their source row).
void Seq2Seq::prepareKeyGates(DecoderState& st, int sourceRows, int steps) {
  const int E = spec_.embedSize, H = spec_.hiddenSize, GH = gateCount(spec_.cell) * H, S = st.S;
  st.keyGatesReady = false;
  if (spec_.attention != AttentionKind::Bahdanau || (long long)S * sourceRows >= (long long)st.R * steps) return;
  const Layer& l0 = dec_.layers[0];
  float* kg = st.keyGates.reserveFloats((std::size_t)S * sourceRows * GH);
  be_.gemm(false, true, S * sourceRows, GH, H, 1.f, st.keys.floats(), H, store_.params() + l0.wih + E, l0.input, 0.f,
           kg, GH);
  st.keyGatesReady = true;
}

// A whole decode reads layer 0's input projection of every token from one table, [V, G*H] = b_ih + emb W_ih[:, :E]^T,
// when making it costs no more than the rows it saves (V <= rows x steps). The model keeps it until a weight changes.
void Seq2Seq::prepareEmbeddingTable(DecoderState& st, int steps) {
  const int E = spec_.embedSize, V = spec_.tgtVocab, GH = gateCount(spec_.cell) * spec_.hiddenSize;
  st.embTableReady = false;
  if ((long long)V > (long long)st.R * steps) return;
  st.embTableReady = true;
  if (embTableVersion_ == store_.version()) return;
  const float* p = store_.params();
  const Layer& l0 = dec_.layers[0];
  float* table = embTable_.reserveFloats((std::size_t)V * GH);
  be_.broadcastRows(table, V, GH, GH, p + l0.bih);
  be_.gemm(false, true, V, GH, E, 1.f, p + decEmb_, E, p + l0.wih, l0.input, 1.f, table, GH);
  embTableVersion_ = store_.version();
}

// A whole decode's step weights: packed once and kept by the model for the next decode of the same shape (a server
// decoding request after request), until a weight changes.
void Seq2Seq::useDecodeWeights(DecoderState& st, int steps) {
  const DecodeWeightsKey key{store_.version(), st.R, steps, st.embTableReady, st.keyGatesReady};
  if (!(haveDecodeWeights_ && key == decodeWeightsKey_)) {
    haveDecodeWeights_ = false;
    DecoderState shape(&be_);
    shape.R = st.R;
    shape.embTableReady = st.embTableReady;
    shape.keyGatesReady = st.keyGatesReady;
    prepareStepWeights(shape, steps, decodeWeights_);
    decodeWeightsKey_ = key;
    haveDecodeWeights_ = true;
  }
  st.shared = &decodeWeights_;
}

void Seq2Seq::stepRows(DecoderState& st) {
  const int E = spec_.embedSize, H = spec_.hiddenSize, L = spec_.numLayers, V = spec_.tgtVocab;
  const int GH = gateCount(spec_.cell) * H, R = st.R, S = st.S;
  const std::size_t RH = (std::size_t)R * H;
  const bool lstm = hasCellState(spec_.cell);
  float* p = store_.params();
  const int32_t* lengths = st.hasLengths ? st.lengths.ints() : nullptr;
  float* scores = spec_.attention != AttentionKind::None ? st.scores.reserveFloats((std::size_t)R * S) : nullptr;
  float* gi = st.gi.reserveFloats((std::size_t)R * GH);
  // Layer 0's input projection: b_ih + W_ih [e; c], its embedding part looked up in the per-token table when the
  // decode made one (prepareEmbeddingTable), else multiplied here.
  if (st.embTableReady) {
    be_.gatherRows(embTable_.floats(), GH, st.tokens.ints(), R, gi);
  } else {
    float* emb = st.emb.reserveFloats((std::size_t)R * E);
    be_.gatherRows(p + decEmb_, E, st.tokens.ints(), R, emb);
    be_.broadcastRows(gi, R, GH, GH, p + dec_.layers[0].bih);
    st.stepWeights().multiply(3, R, emb, E, 1.f, gi, GH);
  }
  if (spec_.attention == AttentionKind::Bahdanau) {
    float* q = st.q.reserveFloats(RH);
    be_.broadcastRows(q, R, H, H, p + ba_);
    st.stepWeights().multiply(0, R, st.h[st.cur].floats() + (L - 1) * RH, H, 1.f, q, H);
    if (st.keyGatesReady) {
      // W_ih c = sum_s a_s (W_ih k_s): the weights sum the keys' projections straight into the gates.
      be_.additiveAttention(q, st.keysProj.floats(), st.keyGates.floats(), GH, p + va_, p + bva_, R, st.group, S, H,
                            lengths, scores, 1.f, gi, GH);
    } else {
      float* ctx = st.x.reserveFloats(RH);
      be_.additiveAttention(q, st.keysProj.floats(), st.keys.floats(), H, p + va_, p + bva_, R, st.group, S, H,
                            lengths, scores, 0.f, ctx, H);
      st.stepWeights().multiply(contextSlot(), R, ctx, H, 1.f, gi, GH);
    }
  }
  float* gh = st.gh.reserveFloats((std::size_t)R * GH);
  const std::size_t LRH = (std::size_t)L * RH;
  st.h[st.cur ^ 1].reserveFloats(LRH);
  if (lstm) st.c[st.cur ^ 1].reserveFloats(LRH);
  CellForwardStep step;
  step.cell = spec_.cell;
  step.batch = R;
  step.hidden = H;
  step.ldgi = GH;
  step.ldgh = GH;
  const float* input = nullptr;
  for (int l = 0; l < L; ++l) {
    const Layer& layer = dec_.layers[l];
    if (l > 0) {
      be_.broadcastRows(gi, R, GH, GH, p + layer.bih);
      st.stepWeights().multiply(3 + 2 * l, R, input, H, 1.f, gi, GH);
    }
    const float* hPrev = st.h[st.cur].floats() + l * RH;
    be_.broadcastRows(gh, R, GH, GH, p + layer.bhh);
    st.stepWeights().multiply(4 + 2 * l, R, hPrev, H, 1.f, gh, GH);
    step.gi = gi;
    step.gh = gh;
    step.hPrev = hPrev;
    step.hNext = st.h[st.cur ^ 1].floats() + l * RH;
    step.cPrev = lstm ? st.c[st.cur].floats() + l * RH : nullptr;
    step.cNext = lstm ? st.c[st.cur ^ 1].floats() + l * RH : nullptr;
    be_.cellForward(step);
    input = step.hNext;
  }
  st.cur ^= 1;
  const float* top = st.h[st.cur].floats() + (L - 1) * RH;
  const float* headIn = top;
  if (spec_.attention == AttentionKind::Luong) {
    float* cat = st.concat.reserveFloats(2 * RH);
    be_.gemmBatched(false, true, 1, S, H, 1.f, top, H, H, st.keys.floats(), R * H, H, 0.f, scores, S, S, R);
    be_.maskedSoftmax(scores, R, S, lengths, R);
    be_.gemmBatched(false, false, 1, H, S, 1.f, scores, S, S, st.keys.floats(), R * H, H, 0.f, cat, 2 * H, 2 * H, R);
    be_.copy2d(R, H, top, H, cat + H, 2 * H);
    float* o = st.o.reserveFloats(RH);
    be_.broadcastRows(o, R, H, H, p + bc_);
    st.stepWeights().multiply(1, R, cat, 2 * H, 1.f, o, H);
    be_.activate(kTanh, o, R, H);
    headIn = o;
  }
  float* logits = st.logits.reserveFloats((std::size_t)R * V);
  be_.broadcastRows(logits, R, V, V, p + outB_);
  st.stepWeights().multiply(2, R, headIn, H, 1.f, logits, V);
}

void Seq2Seq::decodeStep(DecoderState& st, const std::vector<int32_t>& tokens, std::vector<float>* logits,
                         std::vector<float>* attention) {
  checkIds("tokens", tokens, (std::size_t)st.R, spec_.tgtVocab, "one per row of the decoder");
  be_.upload(st.tokens.reserveInts(st.R), tokens.data(), st.R * sizeof(int32_t));
  stepRows(st);
  if (logits) {
    logits->resize((std::size_t)st.R * spec_.tgtVocab);
    be_.download(logits->data(), st.logits.floats(), logits->size() * sizeof(float));
  }
  if (attention) {
    if (spec_.attention == AttentionKind::None) {
      attention->clear();
    } else {
      attention->resize((std::size_t)st.R * st.S);
      be_.download(attention->data(), st.scores.floats(), attention->size() * sizeof(float));
    }
  }
}

namespace {
// log softmax of one row, in double (so that ranking candidates keeps the float logits' order exactly).
void logSoftmax(const float* z, int V, std::vector<double>& out) {
  out.resize(V);
  double m = z[0];
  for (int v = 1; v < V; ++v) m = std::max(m, (double)z[v]);
  double sum = 0;
  for (int v = 0; v < V; ++v) sum += std::exp((double)z[v] - m);
  const double lse = m + std::log(sum);
  for (int v = 0; v < V; ++v) out[v] = (double)z[v] - lse;
}
}  // namespace

DecodeResult Seq2Seq::decode(const std::vector<int32_t>& src, int B, int S, const std::vector<int32_t>& srcLengths,
                             const DecodeOptions& o) {
  const int V = spec_.tgtVocab, H = spec_.hiddenSize, L = spec_.numLayers;
  if (o.beamWidth < 1 || o.beamWidth > 4096)
    fail(ErrorCode::Value, "decoder: beamWidth must be an integer in [1, 4096], got " + std::to_string(o.beamWidth));
  if (o.maxLen < 1 || o.maxLen > 1000000)
    fail(ErrorCode::Value, "decoder: maxLength must be an integer in [1, 1000000], got " + std::to_string(o.maxLen));
  if (o.sos < 0 || o.sos >= V)
    fail(ErrorCode::Value, "decoder: startToken " + std::to_string(o.sos) + " is outside the target vocabulary [0, " +
                               std::to_string(V) + ")");
  if (o.eos >= V || o.eos < -1)
    fail(ErrorCode::Value, "decoder: endToken " + std::to_string(o.eos) + " is outside the target vocabulary [0, " +
                               std::to_string(V) + ")");
  if (!(o.lengthPenalty >= 0 && o.lengthPenalty <= 10))
    fail(ErrorCode::Value, "decoder: lengthPenalty must be a number in [0, 10]");
  std::unique_ptr<DecoderState> st = beginDecode(src, B, S, srcLengths);
  const bool withAttention = o.wantAttention && spec_.attention != AttentionKind::None;
  const int M = o.maxLen;
  DecodeResult r;
  r.batch = B;
  r.steps = M;
  r.srcLen = S;
  r.tokens.assign((std::size_t)B * M, -1);
  r.scores.assign(B, 0.f);
  r.lengths.assign(B, 0);
  if (withAttention) r.attention.assign((std::size_t)B * M * S, 0.f);
  std::vector<float> logits, attn;
  std::vector<double> lp;

  prepareEmbeddingTable(*st, M);
  if (o.beamWidth == 1) {
    useDecodeWeights(*st, M);
    std::vector<int32_t> tokens(B, o.sos);
    std::vector<char> done(B, 0);
    std::vector<double> score(B, 0.0);
    int alive = B;
    for (int step = 0; step < M && alive > 0; ++step) {
      decodeStep(*st, tokens, &logits, withAttention ? &attn : nullptr);
      for (int b = 0; b < B; ++b) {
        if (done[b]) continue;
        const float* z = logits.data() + (std::size_t)b * V;
        int best = 0;
        for (int v = 1; v < V; ++v)
          if (z[v] > z[best]) best = v;
        logSoftmax(z, V, lp);
        score[b] += lp[best];
        r.tokens[(std::size_t)b * M + step] = best;
        r.lengths[b] = step + 1;
        if (withAttention)
          std::copy_n(attn.data() + (std::size_t)b * S, S, r.attention.data() + ((std::size_t)b * M + step) * S);
        tokens[b] = best;
        if (best == o.eos) {
          done[b] = 1;
          --alive;
        }
      }
    }
    for (int b = 0; b < B; ++b) r.scores[b] = (float)score[b];
    return r;
  }

  // Beam search: each source row keeps K hypotheses as rows b*K + k of the decoder state.
  const int K = o.beamWidth, R = B * K;
  {
    // Replicate the source rows: keys (time-major rows s*R + r), their projection, lengths, the initial state.
    std::vector<int32_t> keyIdx((std::size_t)S * R), stateIdx((std::size_t)L * R);
    for (int s = 0; s < S; ++s)
      for (int rr = 0; rr < R; ++rr) keyIdx[(std::size_t)s * R + rr] = s * B + rr / K;
    for (int l = 0; l < L; ++l)
      for (int rr = 0; rr < R; ++rr) stateIdx[(std::size_t)l * R + rr] = l * B + rr / K;
    DeviceBuffer idx(&be_), tmp(&be_);
    be_.upload(idx.reserveInts(keyIdx.size()), keyIdx.data(), keyIdx.size() * sizeof(int32_t));
    auto expand = [&](DeviceBuffer& buf, int n) {
      float* out = tmp.reserveFloats((std::size_t)n * H);
      be_.gatherRows(buf.floats(), H, idx.ints(), n, out);
      std::swap(buf, tmp);
    };
    if (spec_.attention == AttentionKind::Bahdanau) {
      st->group = K;  // the K hypotheses of a source row read its keys in place
    } else {
      expand(st->keys, S * R);
    }
    be_.upload(idx.reserveInts(stateIdx.size()), stateIdx.data(), stateIdx.size() * sizeof(int32_t));
    expand(st->h[0], L * R);
    if (hasCellState(spec_.cell)) expand(st->c[0], L * R);
    if (st->hasLengths) {
      std::vector<int32_t> lens(R);
      for (int rr = 0; rr < R; ++rr) lens[rr] = st->hostLengths[rr / K];
      st->hostLengths = lens;
      be_.upload(st->lengths.reserveInts(R), lens.data(), R * sizeof(int32_t));
    }
    st->R = R;
    st->cur = 0;
    prepareKeyGates(*st, B, M);
    useDecodeWeights(*st, M);
  }
  struct Hyp {
    std::vector<int32_t> tokens;
    std::vector<float> attention;  // [len, S]
    double score = 0;
  };
  struct Finished {
    Hyp hyp;
    double normalized;
  };
  const double negInf = -std::numeric_limits<double>::infinity();
  auto normalize = [&](double score, int len) {
    return o.lengthPenalty == 0 ? score : score / std::pow((double)len, o.lengthPenalty);
  };
  std::vector<std::vector<Hyp>> beams(B, std::vector<Hyp>(K));
  for (int b = 0; b < B; ++b)
    for (int k = 1; k < K; ++k) beams[b][k].score = negInf;  // the first step expands one hypothesis only
  std::vector<std::vector<Finished>> finished(B);
  std::vector<char> rowDone(B, 0);
  std::vector<int32_t> tokens(R, o.sos), parents(R);
  DeviceBuffer parentBuf(&be_);
  struct Cand {
    double score;
    int k, v;
  };
  std::vector<Cand> cands;
  int alive = B;
  for (int step = 0; step < M && alive > 0; ++step) {
    decodeStep(*st, tokens, &logits, withAttention ? &attn : nullptr);
    for (int rr = 0; rr < R; ++rr) parents[rr] = rr;
    for (int b = 0; b < B; ++b) {
      if (rowDone[b]) continue;
      cands.clear();
      for (int k = 0; k < K; ++k) {
        const Hyp& h = beams[b][k];
        if (h.score == negInf) continue;
        logSoftmax(logits.data() + (std::size_t)(b * K + k) * V, V, lp);
        for (int v = 0; v < V; ++v) cands.push_back({h.score + lp[v], k, v});
      }
      // Best first; ties keep the lower hypothesis, then the lower token (greedy's argmax at width 1).
      const std::size_t keep = std::min<std::size_t>(cands.size(), 2 * (std::size_t)K);
      std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), [](const Cand& a, const Cand& c) {
        if (a.score != c.score) return a.score > c.score;
        if (a.k != c.k) return a.k < c.k;
        return a.v < c.v;
      });
      std::vector<Hyp> next;
      for (std::size_t i = 0; i < keep && (int)next.size() < K; ++i) {
        const Cand& c = cands[i];
        Hyp h = beams[b][c.k];
        h.tokens.push_back(c.v);
        if (withAttention) {
          const float* a = attn.data() + (std::size_t)(b * K + c.k) * S;
          h.attention.insert(h.attention.end(), a, a + S);
        }
        h.score = c.score;
        if (c.v == o.eos) {
          if ((int)finished[b].size() < K) finished[b].push_back({h, normalize(h.score, (int)h.tokens.size())});
          continue;
        }
        parents[b * K + (int)next.size()] = b * K + c.k;
        next.push_back(std::move(h));
      }
      while ((int)next.size() < K) {
        Hyp empty;
        empty.score = negInf;
        parents[b * K + (int)next.size()] = b * K;
        next.push_back(std::move(empty));
      }
      beams[b] = std::move(next);
      if ((int)finished[b].size() >= K || beams[b][0].score == negInf) {
        rowDone[b] = 1;
        --alive;
      }
      for (int k = 0; k < K; ++k) tokens[b * K + k] = beams[b][k].tokens.empty() ? o.sos : beams[b][k].tokens.back();
    }
    // Every row takes its parent's state.
    bool identity = true;
    for (int rr = 0; rr < R; ++rr) identity = identity && parents[rr] == rr;
    if (!identity && alive > 0) {
      std::vector<int32_t> idx((std::size_t)L * R);
      for (int l = 0; l < L; ++l)
        for (int rr = 0; rr < R; ++rr) idx[(std::size_t)l * R + rr] = l * R + parents[rr];
      be_.upload(parentBuf.reserveInts(idx.size()), idx.data(), idx.size() * sizeof(int32_t));
      const std::size_t LRH = (std::size_t)L * R * H;
      be_.gatherRows(st->h[st->cur].floats(), H, parentBuf.ints(), L * R, st->h[st->cur ^ 1].reserveFloats(LRH));
      if (hasCellState(spec_.cell))
        be_.gatherRows(st->c[st->cur].floats(), H, parentBuf.ints(), L * R, st->c[st->cur ^ 1].reserveFloats(LRH));
      st->cur ^= 1;
    }
  }
  for (int b = 0; b < B; ++b) {
    // Hypotheses still open at maxLength compete with the finished ones.
    for (Hyp& h : beams[b])
      if (h.score != negInf && !h.tokens.empty())
        finished[b].push_back({h, normalize(h.score, (int)h.tokens.size())});
    const Finished* best = nullptr;
    for (const Finished& f : finished[b])
      if (!best || f.normalized > best->normalized) best = &f;
    if (!best) continue;
    const int len = (int)best->hyp.tokens.size();
    std::copy_n(best->hyp.tokens.data(), len, r.tokens.data() + (std::size_t)b * M);
    r.lengths[b] = len;
    r.scores[b] = (float)best->normalized;
    if (withAttention)
      std::copy_n(best->hyp.attention.data(), (std::size_t)len * S, r.attention.data() + (std::size_t)b * M * S);
  }
  return r;
}

}  // namespace rnnkit
