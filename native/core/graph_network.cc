#include "graph_network.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

#include "dense_stage.h"
#include "error.h"
#include "graph_stages.h"

namespace rnnkit {

using Kind = GraphTensorInfo::Kind;

// A tensor's value in the last forward, time-major in backend memory.
struct GraphNetwork::Value {
  const float* data = nullptr;
  const int32_t* tokens = nullptr;
  int T = 1;              // steps of a sequence (or of the queries, for attention weights); 1 otherwise
  std::size_t rows = 0;   // T * B, B, or L*D*B for a state
  int features = 0;
  const int32_t* lengths = nullptr;  // backend [B], the valid steps of each row, or null
  int lengthsOf = -1;                // the input whose lengths those are
};

struct GraphNetwork::Node {
  GraphNodeSpec spec;
  std::unique_ptr<Stage> stage;
  std::vector<int> outputs;
  std::vector<Activations> stageInput;
  DeviceBuffer hn, cn, dh0, dc0, out, weights, scratch;
  const float* dLogits = nullptr;  // a cross-entropy loss on this dense softmax node's output, from its logits
  bool reaches = false;            // some output of it leads to a loss
  explicit Node(Backend* be) : hn(be), cn(be), dh0(be), dc0(be), out(be), weights(be), scratch(be) {}
};

namespace {

const char* opName(GraphOp op) {
  switch (op) {
    case GraphOp::Embedding: return "embedding";
    case GraphOp::Recurrent: return "recurrent";
    case GraphOp::Dense: return "dense";
    case GraphOp::Dropout: return "dropout";
    case GraphOp::RepeatVector: return "repeatVector";
    case GraphOp::Concatenate: return "concatenate";
    case GraphOp::DotAttention: return "attention";
  }
  return "?";
}

std::string shapeText(const std::vector<long long>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool vectorLike(const GraphTensorInfo& t) {
  return t.kind == Kind::Vector || (t.kind == Kind::State && t.stateSlots == 1);
}

uint64_t seedOf(const GraphSpec& s) {
  return s.hasSeed ? s.seed : ((uint64_t)std::random_device{}() << 32) ^ std::random_device{}();
}

}  // namespace

GraphNetwork::GraphNetwork(Backend& backend, const GraphSpec& spec)
    : be_(backend), spec_(spec), store_(backend, "graph: no optimizer is set: compile the model first"), rng_(seedOf(spec) ^ 0x5bd1e995ULL),
      targets_(&backend), staging_(&backend) {
  checkSpec();
  store_.allocate();
  Random rng(seedOf(spec_));
  std::vector<float> host(store_.size(), 0.f);
  for (const auto& n : nodes_)
    if (n->stage) n->stage->initParams(rng, host.data());
  store_.initialize(host);
  values_.resize(tensors_.size());
  for (std::size_t i = 0; i < tensors_.size(); ++i) grads_.emplace_back(&be_);
  hasGrad_.assign(tensors_.size(), 0);
  for (std::size_t i = 0; i < spec_.inputs.size(); ++i) {
    inputData_.emplace_back(&be_);
    inputLengths_.emplace_back(&be_);
  }
  hostLengths_.resize(spec_.inputs.size());
}

GraphNetwork::~GraphNetwork() = default;

// Every tensor's kind and width, every node's stage and parameters; each rule once, with the layer's name.
void GraphNetwork::checkSpec() {
  constexpr int kMax = 1 << 20;
  if (spec_.inputs.empty()) fail(ErrorCode::Argument, "graph: a model needs at least one input");
  if (spec_.outputs.empty()) fail(ErrorCode::Argument, "graph: a model needs at least one output");
  if (spec_.nodes.size() > 4096) fail(ErrorCode::Argument, "graph: at most 4096 layers");
  for (const GraphInputSpec& in : spec_.inputs) {
    if (in.size < 1 || in.size > kMax)
      fail(ErrorCode::Argument, "graph: input '" + in.name + "' must have a size in [1, " + std::to_string(kMax) + "]");
    GraphTensorInfo t;
    t.kind = in.tokens ? Kind::Tokens : in.sequence ? Kind::Sequence : Kind::Vector;
    t.features = in.size;
    t.name = in.name;
    tensors_.push_back(t);
  }
  for (std::size_t i = 0; i < spec_.nodes.size(); ++i) {
    GraphNodeSpec& s = spec_.nodes[i];
    const std::string at = "graph: layer '" + s.name + "' (" + opName(s.op) + ")";
    auto node = std::make_unique<Node>(&be_);
    node->spec = s;
    // Copies: adding this node's outputs below may move tensors_.
    std::vector<GraphTensorInfo> inInfo;
    for (int id : s.inputs) {
      if (id < 0 || (std::size_t)id >= tensors_.size())
        fail(ErrorCode::Argument, at + " reads tensor " + std::to_string(id) +
                                      ", which is not defined before it (the graph must be acyclic, in order)");
      if (tensors_[id].kind == Kind::Weights)
        fail(ErrorCode::Argument, at + " reads the attention weights '" + tensors_[id].name + "', which are an output only");
      inInfo.push_back(tensors_[id]);
    }
    std::vector<const GraphTensorInfo*> in;
    for (const GraphTensorInfo& info : inInfo) in.push_back(&info);
    auto count = [&](std::size_t lo, std::size_t hi) {
      if (in.size() < lo || in.size() > hi)
        fail(ErrorCode::Argument, at + " takes " + (lo == hi ? std::to_string(lo) : "at least " + std::to_string(lo)) +
                                      " input(s), got " + std::to_string(in.size()));
    };
    auto add = [&](Kind kind, int features, const std::string& suffix, int slots = 1) {
      GraphTensorInfo t;
      t.kind = kind;
      t.features = features;
      t.stateSlots = slots;
      t.producer = (int)i;
      t.name = s.name + suffix;
      node->outputs.push_back((int)tensors_.size());
      tensors_.push_back(t);
    };
    // The stage's own checks (sizes, options), as a one-layer pipeline over this input.
    auto checkStage = [&](int features, int vocab) {
      ModelSpec one;
      one.inputSize = vocab > 0 ? 0 : features;
      one.vocabSize = vocab;
      one.stages = {s.stage};
      if (s.stage.kind == StageKind::Dense && vocab > 0) return;  // refused below with a better message
      try {
        one.validate();
      } catch (const Error& e) {
        std::string m = e.what();
        if (m.rfind("layer 0: ", 0) == 0) m = m.substr(9);
        if (m.rfind("layer 0 ", 0) == 0) m = m.substr(8);
        fail(e.code(), at + ": " + m);
      }
    };
    if (s.op != GraphOp::Recurrent && !s.initialState.empty())
      fail(ErrorCode::Argument, at + ": only a recurrent layer takes an initial state");
    s.stage.prefix = s.name + ".";
    node->spec.stage.prefix = s.stage.prefix;
    switch (s.op) {
      case GraphOp::Embedding: {
        count(1, 1);
        if (in[0]->kind != Kind::Tokens) fail(ErrorCode::Argument, at + " reads token ids (an int32 input)");
        s.stage.kind = StageKind::Embedding;
        checkStage(0, in[0]->features);
        add(Kind::Sequence, s.stage.embeddingDim, "");
        break;
      }
      case GraphOp::Recurrent: {
        count(1, 1);
        if (in[0]->kind != Kind::Tokens && in[0]->kind != Kind::Sequence)
          fail(ErrorCode::Argument, at + " reads a sequence; '" + in[0]->name + "' is not one (repeatVector turns a vector into one)");
        s.stage.kind = StageKind::Recurrent;
        const bool tokens = in[0]->kind == Kind::Tokens;
        checkStage(tokens ? 0 : in[0]->features, tokens ? in[0]->features : 0);
        const int slots = s.stage.numLayers * s.stage.directions(), H = s.stage.hiddenSize;
        const std::size_t want = hasCellState(s.stage.cell) ? 2 : 1;
        if (!s.initialState.empty() && s.initialState.size() != want)
          fail(ErrorCode::Shape, at + " (" + cellName(s.stage.cell) + ") takes " + std::to_string(want) +
                                     " initial state tensor(s), got " + std::to_string(s.initialState.size()));
        for (int id : s.initialState) {
          if (id < 0 || (std::size_t)id >= tensors_.size())
            fail(ErrorCode::Argument, at + ": initial state tensor " + std::to_string(id) + " is not defined before it");
          const GraphTensorInfo& t = tensors_[id];
          const bool ok = (t.kind == Kind::State && t.stateSlots == slots && t.features == H) ||
                          (t.kind == Kind::Vector && slots == 1 && t.features == H);
          if (!ok)
            fail(ErrorCode::Shape,
                 at + ": its initial state must be " + std::to_string(slots) + " x " + std::to_string(H) +
                     " per row (layers x directions x units), '" + t.name + "' is " +
                     (t.kind == Kind::State ? std::to_string(t.stateSlots) + " x " + std::to_string(t.features)
                      : t.kind == Kind::Vector ? "a vector of " + std::to_string(t.features)
                                               : std::string("not a state or a vector")));
        }
        if (s.stage.returnSequences) add(Kind::Sequence, s.stage.recurrentOutputSize(), "");
        else add(Kind::Vector, s.stage.recurrentOutputSize(), "");
        if (s.returnState) {
          add(Kind::State, H, "/h", slots);
          if (hasCellState(s.stage.cell)) add(Kind::State, H, "/c", slots);
        }
        break;
      }
      case GraphOp::Dense:
      case GraphOp::Dropout: {
        count(1, 1);
        if (in[0]->kind == Kind::Tokens)
          fail(ErrorCode::Argument, at + " cannot read token ids; add an embedding first");
        if (in[0]->kind == Kind::State && in[0]->stateSlots != 1)
          fail(ErrorCode::Shape, at + ": '" + in[0]->name + "' is the state of a stack (" +
                                     std::to_string(in[0]->stateSlots) + " layers x directions); only a single layer's state is a vector");
        s.stage.kind = s.op == GraphOp::Dense ? StageKind::Dense : StageKind::Dropout;
        checkStage(in[0]->features, 0);
        add(in[0]->kind == Kind::Sequence ? Kind::Sequence : Kind::Vector,
            s.op == GraphOp::Dense ? s.stage.units : in[0]->features, "");
        break;
      }
      case GraphOp::RepeatVector: {
        count(1, 1);
        if (!vectorLike(*in[0])) fail(ErrorCode::Argument, at + " repeats a vector; '" + in[0]->name + "' is not one");
        if (s.repeat < 1 || s.repeat > kMax)
          fail(ErrorCode::Argument, at + ": n must be an integer in [1, " + std::to_string(kMax) + "]");
        add(Kind::Sequence, in[0]->features, "");
        break;
      }
      case GraphOp::Concatenate: {
        count(2, 1024);
        const bool seq = in[0]->kind == Kind::Sequence;
        long long total = 0;
        for (const GraphTensorInfo* t : in) {
          if (seq ? t->kind != Kind::Sequence : !vectorLike(*t))
            fail(ErrorCode::Shape, at + " joins tensors of one kind (all sequences or all vectors); '" + t->name +
                                       "' differs from '" + in[0]->name + "'");
          total += t->features;
        }
        if (total > kMax) fail(ErrorCode::Argument, at + ": too many features");
        add(seq ? Kind::Sequence : Kind::Vector, (int)total, "");
        break;
      }
      case GraphOp::DotAttention: {
        count(2, 2);
        if (in[0]->kind != Kind::Sequence || in[1]->kind != Kind::Sequence)
          fail(ErrorCode::Argument, at + " takes [query, keys], both sequences");
        if (in[0]->features != in[1]->features)
          fail(ErrorCode::Shape, at + ": the query '" + in[0]->name + "' has " + std::to_string(in[0]->features) +
                                     " features, the keys '" + in[1]->name + "' " + std::to_string(in[1]->features));
        add(Kind::Sequence, in[0]->features, "/context");
        add(Kind::Weights, 0, "/weights");
        break;
      }
    }
    node->spec = s;
    if (s.op == GraphOp::Embedding || s.op == GraphOp::Recurrent || s.op == GraphOp::Dense || s.op == GraphOp::Dropout) {
      const GraphTensorInfo& x = *in[0];
      const bool tokens = x.kind == Kind::Tokens;
      node->stage = makeStage(be_, s.stage, tokens ? 0 : x.features, tokens ? x.features : 0);
      node->stage->declareParams(store_.layout());
    }
    node->stageInput.resize(1);
    nodes_.push_back(std::move(node));
  }
  for (int id : spec_.outputs)
    if (id < 0 || (std::size_t)id >= tensors_.size()) fail(ErrorCode::Argument, "graph: output tensor " + std::to_string(id) + " is not defined");
}

void GraphNetwork::checkInputs(const std::vector<GraphInputValue>& in) {
  if (in.size() != spec_.inputs.size())
    fail(ErrorCode::Argument, "graph: the model has " + std::to_string(spec_.inputs.size()) + " input(s), got " +
                                  std::to_string(in.size()));
  B_ = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const GraphInputSpec& s = spec_.inputs[i];
    const GraphInputValue& v = in[i];
    const std::string what = "graph: input '" + s.name + "'";
    const std::size_t rank = s.tokens ? 2 : s.sequence ? 3 : 2;
    const char* layout = s.tokens ? "[batch, steps]" : s.sequence ? "[batch, steps, features]" : "[batch, features]";
    if (v.shape.size() != rank) fail(ErrorCode::Shape, what + " must have shape " + layout + ", got " + shapeText(v.shape));
    for (long long d : v.shape)
      if (d < 1 || d > INT_MAX / 4) fail(ErrorCode::Shape, what + ": every dimension must be at least 1, got " + shapeText(v.shape));
    const long long B = v.shape[0];
    const long long T = s.tokens || s.sequence ? v.shape[1] : 1;
    if (B_ && B != B_)
      fail(ErrorCode::Shape, what + " has " + std::to_string(B) + " rows, '" + spec_.inputs[0].name + "' has " + std::to_string(B_));
    B_ = (int)B;
    if (T * B > (1LL << 28)) fail(ErrorCode::Shape, what + " is too large: " + shapeText(v.shape));
    const std::size_t N = (std::size_t)T * B;
    if (s.tokens) {
      if (v.tokens.size() != N) fail(ErrorCode::Shape, what + " has " + std::to_string(v.tokens.size()) + " ids, its shape " + shapeText(v.shape) + " holds " + std::to_string(N));
      for (std::size_t j = 0; j < N; ++j)
        if (v.tokens[j] < 0 || v.tokens[j] >= s.size)
          fail(ErrorCode::Value, what + ": token " + std::to_string(v.tokens[j]) + " at index " + std::to_string(j) +
                                     " is outside the vocabulary [0, " + std::to_string(s.size) + ")");
    } else {
      if (v.shape.back() != s.size)
        fail(ErrorCode::Shape, what + " has " + std::to_string(v.shape.back()) + " features, the model expects " + std::to_string(s.size));
      if (v.x.size() != N * s.size) fail(ErrorCode::Shape, what + " has " + std::to_string(v.x.size()) + " values, its shape " + shapeText(v.shape) + " holds " + std::to_string(N * s.size));
    }
    if (!v.lengths.empty()) {
      if (!s.tokens && !s.sequence) fail(ErrorCode::Argument, what + " is a vector: it has no lengths");
      if (v.lengths.size() != (std::size_t)B)
        fail(ErrorCode::Shape, what + ": lengths has " + std::to_string(v.lengths.size()) + " entries, expected one per row (" + std::to_string(B) + ")");
      for (std::size_t b = 0; b < v.lengths.size(); ++b)
        if (v.lengths[b] < 1 || v.lengths[b] > T)
          fail(ErrorCode::Value, what + ": lengths[" + std::to_string(b) + "] = " + std::to_string(v.lengths[b]) +
                                     " is outside [1, " + std::to_string(T) + "]");
    }
  }
}

PassContext GraphNetwork::context(const Value& v, bool train) {
  PassContext ctx;
  ctx.be = &be_;
  ctx.T = v.T;
  ctx.B = B_;
  ctx.lengths = v.lengths;
  ctx.train = train;
  ctx.params = store_.params();
  ctx.grads = store_.grads();
  ctx.rng = &rng_;
  ctx.paramsVersion = store_.version();
  return ctx;
}

std::vector<GraphOutputValue> GraphNetwork::forward(const std::vector<GraphInputValue>& in, bool train) {
  checkInputs(in);
  haveTrainForward_ = false;
  const int B = B_;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const GraphInputSpec& s = spec_.inputs[i];
    const GraphInputValue& v = in[i];
    Value& val = values_[i];
    val = Value();
    val.T = s.tokens || s.sequence ? (int)v.shape[1] : 1;
    const int T = val.T, F = s.tokens ? 1 : s.size;
    val.rows = (std::size_t)T * B;
    val.features = s.size;
    // Batch-first on the host, time-major in the backend: one transposed copy, one upload.
    if (s.tokens) {
      std::vector<int32_t> tm(val.rows);
      for (int t = 0; t < T; ++t)
        for (int b = 0; b < B; ++b) tm[(std::size_t)t * B + b] = v.tokens[(std::size_t)b * T + t];
      val.tokens = inputData_[i].reserveInts(val.rows);
      be_.upload(inputData_[i].ints(), tm.data(), tm.size() * sizeof(int32_t));
    } else {
      host_.resize(val.rows * F);
      for (int t = 0; t < T; ++t)
        for (int b = 0; b < B; ++b)
          std::copy_n(v.x.data() + ((std::size_t)b * T + t) * F, F, host_.data() + ((std::size_t)t * B + b) * F);
      val.data = inputData_[i].reserveFloats(host_.size());
      be_.upload(inputData_[i].floats(), host_.data(), host_.size() * sizeof(float));
    }
    hostLengths_[i] = v.lengths;
    if (!v.lengths.empty()) {
      val.lengths = inputLengths_[i].reserveInts(B);
      be_.upload(inputLengths_[i].ints(), v.lengths.data(), B * sizeof(int32_t));
      val.lengthsOf = (int)i;
    }
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) runNode(i, train);

  std::vector<GraphOutputValue> out;
  for (int id : spec_.outputs) {
    const Value& v = values_[id];
    const GraphTensorInfo& info = tensors_[id];
    GraphOutputValue o;
    const std::size_t n = v.rows * v.features;
    if (info.kind == Kind::Tokens) {
      std::vector<int32_t> ids(v.rows);
      be_.download(ids.data(), v.tokens, v.rows * sizeof(int32_t));
      o.data.resize(v.rows);
      for (int t = 0; t < v.T; ++t)
        for (int b = 0; b < B; ++b) o.data[(std::size_t)b * v.T + t] = (float)ids[(std::size_t)t * B + b];
      o.shape = {B, v.T};
    } else if (info.kind == Kind::Sequence || info.kind == Kind::Weights) {
      host_.resize(n);
      be_.download(host_.data(), v.data, n * sizeof(float));
      o.data.resize(n);
      const int F = v.features;
      for (int t = 0; t < v.T; ++t)
        for (int b = 0; b < B; ++b)
          std::copy_n(host_.data() + ((std::size_t)t * B + b) * F, F, o.data.data() + ((std::size_t)b * v.T + t) * F);
      o.shape = {B, v.T, F};
    } else {
      o.data.resize(n);
      be_.download(o.data.data(), v.data, n * sizeof(float));
      if (info.kind == Kind::State && info.stateSlots > 1) o.shape = {info.stateSlots, B, v.features};
      else o.shape = {B, v.features};
    }
    out.push_back(std::move(o));
  }
  if (train) haveTrainForward_ = true;
  return out;
}

void GraphNetwork::runNode(std::size_t i, bool train) {
  Node& n = *nodes_[i];
  const GraphNodeSpec& s = n.spec;
  const int B = B_;
  const Value& x = values_[s.inputs[0]];
  Value& y = values_[n.outputs[0]];
  y = Value();
  y.T = x.T;
  y.lengths = x.lengths;
  y.lengthsOf = x.lengthsOf;
  switch (s.op) {
    case GraphOp::Embedding:
    case GraphOp::Dense:
    case GraphOp::Dropout:
    case GraphOp::Recurrent: {
      Activations a{x.data, x.tokens, (int)x.rows, x.features, tensors_[s.inputs[0]].kind != Kind::Vector &&
                                                                      tensors_[s.inputs[0]].kind != Kind::State};
      n.stageInput[0] = a;
      StateIo io;
      if (s.op == GraphOp::Recurrent) {
        const std::size_t sn = (std::size_t)n.stage->statePerRow() * B;
        if (!s.initialState.empty()) io.h0 = values_[s.initialState[0]].data;
        if (s.initialState.size() > 1) io.c0 = values_[s.initialState[1]].data;
        if (s.returnState) {
          io.hn = n.hn.reserveFloats(sn);
          if (n.stage->hasCellState()) io.cn = n.cn.reserveFloats(sn);
        }
      }
      n.stage->state = io;
      const Activations out = n.stage->forward(context(x, train), a);
      y.data = out.data;
      y.rows = out.rows;
      y.features = out.features;
      if (!out.sequence) {
        y.T = 1;
        y.lengths = nullptr;
        y.lengthsOf = -1;
      }
      if (s.op == GraphOp::Recurrent && s.returnState) {
        const int H = s.stage.hiddenSize, slots = s.stage.numLayers * s.stage.directions();
        for (std::size_t k = 1; k < n.outputs.size(); ++k) {
          Value& st = values_[n.outputs[k]];
          st = Value();
          st.data = k == 1 ? io.hn : io.cn;
          st.rows = (std::size_t)slots * B;
          st.features = H;
        }
      }
      break;
    }
    case GraphOp::RepeatVector: {
      const int F = x.features;
      float* out = n.out.reserveFloats((std::size_t)s.repeat * B * F);
      graph::repeatVectorForward(be_, x.data, B, F, s.repeat, out);
      y.data = out;
      y.T = s.repeat;
      y.rows = (std::size_t)s.repeat * B;
      y.features = F;
      y.lengths = nullptr;
      y.lengthsOf = -1;
      break;
    }
    case GraphOp::Concatenate: {
      int total = 0;
      for (int id : s.inputs) {
        const Value& v = values_[id];
        if (v.rows != x.rows)
          fail(ErrorCode::Shape, "graph: layer '" + s.name + "' (concatenate): '" + tensors_[id].name + "' has " +
                                     std::to_string(v.T) + " steps, '" + tensors_[s.inputs[0]].name + "' " + std::to_string(x.T));
        total += v.features;
      }
      float* out = n.out.reserveFloats(x.rows * total);
      int offset = 0;
      for (int id : s.inputs) {
        const Value& v = values_[id];
        graph::concatForward(be_, v.data, (int)v.rows, v.features, out, total, offset);
        offset += v.features;
        if (!y.lengths && v.lengths) {
          y.lengths = v.lengths;
          y.lengthsOf = v.lengthsOf;
        }
      }
      y.data = out;
      y.rows = x.rows;
      y.features = total;
      break;
    }
    case GraphOp::DotAttention: {
      const Value& k = values_[s.inputs[1]];
      const int T = x.T, S = k.T, H = x.features;
      float* w = n.weights.reserveFloats((std::size_t)T * B * S);
      float* c = n.out.reserveFloats((std::size_t)T * B * H);
      graph::dotAttentionForward(be_, x.data, k.data, T, S, B, H, k.lengths, w, c);
      y.data = c;
      y.rows = x.rows;
      y.features = H;
      Value& wv = values_[n.outputs[1]];
      wv = y;
      wv.data = w;
      wv.features = S;
      break;
    }
  }
}

void GraphNetwork::addGrad(int tensor, const float* d, std::size_t n) {
  if (!d || !hasGrad_[tensor]) return;
  be_.axpy(n, 1.f, d, grads_[tensor].floats());
}

void GraphNetwork::backNode(std::size_t i) {
  Node& n = *nodes_[i];
  if (!n.reaches) return;
  const GraphNodeSpec& s = n.spec;
  const int B = B_;
  const int xId = s.inputs[0];
  const Value& x = values_[xId];
  const Value& y = values_[n.outputs[0]];
  const float* dy = grads_[n.outputs[0]].floats();
  switch (s.op) {
    case GraphOp::Embedding:
    case GraphOp::Dense:
    case GraphOp::Dropout:
    case GraphOp::Recurrent: {
      const bool needIn = hasGrad_[xId] != 0;
      const std::size_t inSize = x.rows * x.features;
      const PassContext ctx = context(x, true);
      if (s.op == GraphOp::Recurrent) {
        StateIo& io = n.stage->state;
        io.dhn = s.returnState ? grads_[n.outputs[1]].floats() : nullptr;
        io.dcn = s.returnState && n.stage->hasCellState() ? grads_[n.outputs[2]].floats() : nullptr;
        const std::size_t sn = (std::size_t)n.stage->statePerRow() * B;
        io.dh0 = io.dc0 = nullptr;
        if (!s.initialState.empty() && hasGrad_[s.initialState[0]]) io.dh0 = n.dh0.reserveFloats(sn);
        if (s.initialState.size() > 1 && hasGrad_[s.initialState[1]]) io.dc0 = n.dc0.reserveFloats(sn);
        if (io.dh0) be_.fill(io.dh0, sn, 0.f);
        if (io.dc0) be_.fill(io.dc0, sn, 0.f);
        addGrad(xId, n.stage->backward(ctx, n.stageInput[0], dy, needIn), inSize);
        if (io.dh0) addGrad(s.initialState[0], io.dh0, sn);
        if (io.dc0) addGrad(s.initialState[1], io.dc0, sn);
        break;
      }
      if (n.dLogits) {
        auto* dense = static_cast<DenseStage*>(n.stage.get());
        // The output also feeds other layers: their gradient first (through the softmax), then the loss's.
        bool consumed = false;
        for (const auto& m : nodes_)
          for (int id : m->spec.inputs) consumed = consumed || id == n.outputs[0];
        if (consumed) addGrad(xId, n.stage->backward(ctx, n.stageInput[0], dy, needIn), inSize);
        addGrad(xId, dense->backwardFromLogits(ctx, n.stageInput[0], n.dLogits, needIn), inSize);
        break;
      }
      addGrad(xId, n.stage->backward(ctx, n.stageInput[0], dy, needIn), inSize);
      break;
    }
    case GraphOp::RepeatVector:
      if (hasGrad_[xId]) graph::repeatVectorBackward(be_, dy, B, x.features, s.repeat, grads_[xId].floats());
      break;
    case GraphOp::Concatenate: {
      int offset = 0;
      for (int id : s.inputs) {
        const Value& v = values_[id];
        if (hasGrad_[id]) graph::concatBackward(be_, dy, (int)v.rows, v.features, y.features, offset, grads_[id].floats());
        offset += v.features;
      }
      break;
    }
    case GraphOp::DotAttention: {
      const int kId = s.inputs[1];
      const Value& k = values_[kId];
      const int T = x.T, S = k.T, H = x.features;
      const std::size_t NS = (std::size_t)T * B * S;
      float* scratch = n.scratch.reserveFloats(2 * NS + (std::size_t)(T + S) * B * H);
      // Inputs without a gradient (graph inputs) still get a place to write to.
      float* dQ = hasGrad_[xId] ? grads_[xId].floats() : scratch + 2 * NS;
      float* dK = hasGrad_[kId] ? grads_[kId].floats() : scratch + 2 * NS + (std::size_t)T * B * H;
      graph::dotAttentionBackward(be_, x.data, k.data, n.weights.floats(), T, S, B, H, dy,
                                  grads_[n.outputs[1]].floats(), dQ, dK, scratch);
      break;
    }
  }
}

bool GraphNetwork::pastLength(const Value& v, std::size_t t, std::size_t b) const {
  if (v.lengthsOf < 0) return false;
  const std::vector<int32_t>& l = hostLengths_[v.lengthsOf];
  return !l.empty() && (long long)t >= l[b];
}

double GraphNetwork::outputLoss(std::size_t k, const GraphLossSpec& loss, const GraphTarget& target,
                                std::size_t* counted, std::size_t* correct, bool wantGradient) {
  const int id = spec_.outputs[k];
  const Value& v = values_[id];
  const GraphTensorInfo& info = tensors_[id];
  const int B = B_, T = v.T, F = v.features;
  const bool seq = info.kind == Kind::Sequence || info.kind == Kind::Weights;
  const std::size_t rows = v.rows;
  const std::string what = "graph: the target of output '" + info.name + "'";
  if (info.kind == Kind::Tokens) fail(ErrorCode::Argument, what + ": a token input has no loss");
  float* dOut = staging_.reserveFloats(rows * F);
  // Time-major index of batch-first position i.
  auto tm = [&](std::size_t i) { return seq ? (i % T) * B + i / T : i; };
  if (loss.kind == GraphLossKind::SoftmaxCrossEntropy) {
    if (info.kind == Kind::State && info.stateSlots > 1) fail(ErrorCode::Argument, what + ": cross-entropy needs logits, not a stack's state");
    if (target.classes.size() != rows)
      fail(ErrorCode::Shape, what + " has " + std::to_string(target.classes.size()) + " class ids, expected " +
                                 (seq ? "[batch, steps] = " + std::to_string(B) + " x " + std::to_string(T)
                                      : "one per row (" + std::to_string(B) + ")"));
    std::vector<int32_t> counted1(rows), kernel(rows);
    *counted = classTargetsForKernel(target.classes.data(), rows, F, loss.ignoreIndex,
                                     [&](std::size_t i) { return seq && pastLength(v, i % T, i / T); }, counted1.data(),
                                     what.c_str());
    for (std::size_t i = 0; i < rows; ++i) kernel[tm(i)] = counted1[i];
    const Node* producer = info.producer >= 0 ? nodes_[info.producer].get() : nullptr;
    const DenseStage* dense = producer && producer->spec.op == GraphOp::Dense && producer->outputs[0] == id
                                  ? static_cast<const DenseStage*>(producer->stage.get()) : nullptr;
    const bool softmaxHead = dense && dense->activation() == Activation::Softmax;
    if (dense && !softmaxHead && dense->activation() != Activation::Linear)
      fail(ErrorCode::Argument, "graph: cross-entropy on output '" + info.name + "' needs logits, but the layer applies " +
                                    activationName(dense->activation()) + "; use a linear or softmax dense layer");
    const float* logits = softmaxHead ? dense->logits() : v.data;
    int32_t* classes = targets_.reserveInts(rows);
    be_.upload(classes, kernel.data(), rows * sizeof(int32_t));
    int kc = 0;
    const double total = be_.softmaxCrossEntropy(logits, (int)rows, F, classes, dOut, &kc);
    // Accuracy: the first largest score at the target class, as argmax in PyTorch.
    *correct = 0;
    const double value = *counted > 0 ? total / (double)*counted : 0.0;
    if (loss.accuracy) {
      std::vector<float> z(rows * F);
      be_.download(z.data(), logits, z.size() * sizeof(float));
      std::size_t right = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        if (kernel[r] < 0) continue;
        const float* p = z.data() + r * F;
        int best = 0;
        for (int c = 1; c < F; ++c)
          if (p[c] > p[best]) best = c;
        right += best == kernel[r] ? 1 : 0;
      }
      *correct = right;
    }
    if (wantGradient) {
      if (loss.weight != 1.0) be_.scale(dOut, rows * F, (float)loss.weight);
      if (softmaxHead) {
        Node* p = nodes_[info.producer].get();
        DeviceBuffer& keep = p->scratch;
        be_.copy(keep.reserveFloats(rows * F), dOut, rows * F * sizeof(float));
        p->dLogits = keep.floats();
      } else {
        addGrad(id, dOut, rows * F);
      }
    }
    return value;
  }
  // Mean squared error over the output's values, positions past a row's length left out.
  if (target.values.size() != rows * F)
    fail(ErrorCode::Shape, what + " has " + std::to_string(target.values.size()) + " values, the output has " +
                               std::to_string(rows * F));
  host_.resize(rows * F);
  std::vector<int32_t> rowCounted(rows, 1);
  std::size_t c = 0;
  bool anyPast = false;
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t r = tm(i);
    std::copy_n(target.values.data() + i * F, F, host_.data() + r * F);
    const bool past = seq && pastLength(v, i % T, i / T);
    rowCounted[r] = past ? 0 : 1;
    anyPast = anyPast || past;
    c += past ? 0 : 1;
  }
  if (info.kind == Kind::State) std::copy(target.values.begin(), target.values.end(), host_.begin());
  float* values = staging_.reserveFloats(rows * F * 2) + rows * F;
  dOut = staging_.floats();
  be_.upload(values, host_.data(), rows * F * sizeof(float));
  const int32_t* mask = nullptr;
  if (anyPast) {
    int32_t* m = targets_.reserveInts(rows);
    be_.upload(m, rowCounted.data(), rows * sizeof(int32_t));
    mask = m;
  }
  *counted = c;
  *correct = 0;
  const double value = be_.meanSquaredError(v.data, values, rows, F, mask, c, dOut);
  if (wantGradient) {
    if (loss.weight != 1.0) be_.scale(dOut, rows * F, (float)loss.weight);
    addGrad(id, dOut, rows * F);
  }
  return value;
}

GraphLossStats GraphNetwork::lossBackward(const std::vector<GraphLossSpec>& losses,
                                          const std::vector<GraphTarget>& targets) {
  if (!haveTrainForward_) fail(ErrorCode::State, "graph: the loss needs a training forward first");
  if (losses.size() != spec_.outputs.size() || targets.size() != spec_.outputs.size())
    fail(ErrorCode::Argument, "graph: one loss and one target per output (" + std::to_string(spec_.outputs.size()) + ")");
  // Which tensors lead to a loss: a gradient buffer each, zeroed, summed into by every node that reads it.
  std::vector<char> reaches(tensors_.size(), 0);
  bool any = false;
  for (std::size_t k = 0; k < losses.size(); ++k)
    if (losses[k].kind != GraphLossKind::None) reaches[spec_.outputs[k]] = 1, any = true;
  if (!any) fail(ErrorCode::Argument, "graph: no output has a loss");
  for (std::size_t i = nodes_.size(); i-- > 0;) {
    Node& n = *nodes_[i];
    n.reaches = false;
    n.dLogits = nullptr;
    for (int id : n.outputs) n.reaches = n.reaches || reaches[id];
    if (!n.reaches) continue;
    for (int id : n.spec.inputs) reaches[id] = 1;
    for (int id : n.spec.initialState) reaches[id] = 1;
  }
  for (std::size_t id = 0; id < tensors_.size(); ++id) {
    // A graph input needs no gradient; token ids have none.
    hasGrad_[id] = reaches[id] && tensors_[id].producer >= 0;
    if (!hasGrad_[id] && tensors_[id].producer >= 0) {
      // A node that leads to a loss may still write an output nobody reads: give it a zero gradient to read.
      const Node& p = *nodes_[tensors_[id].producer];
      hasGrad_[id] = p.reaches;
    }
    if (hasGrad_[id]) {
      const std::size_t n = values_[id].rows * std::max(values_[id].features, 1);
      be_.fill(grads_[id].reserveFloats(n), n, 0.f);
    }
  }
  GraphLossStats stats;
  for (std::size_t k = 0; k < losses.size(); ++k) {
    std::size_t counted = 0, correct = 0;
    double l = 0;
    if (losses[k].kind != GraphLossKind::None) {
      if (!hasGrad_[spec_.outputs[k]]) fail(ErrorCode::Argument, "graph: output '" + tensors_[spec_.outputs[k]].name + "' is an input; it cannot have a loss");
      l = outputLoss(k, losses[k], targets[k], &counted, &correct, true);
      stats.loss += losses[k].weight * l;
    }
    stats.outputLosses.push_back(l);
    stats.counted.push_back(counted);
    stats.correct.push_back(correct);
  }
  for (std::size_t i = nodes_.size(); i-- > 0;) backNode(i);
  return stats;
}

GraphLossStats GraphNetwork::evaluate(const std::vector<GraphInputValue>& in, const std::vector<GraphLossSpec>& losses,
                                      const std::vector<GraphTarget>& targets) {
  if (losses.size() != spec_.outputs.size() || targets.size() != spec_.outputs.size())
    fail(ErrorCode::Argument, "graph: one loss and one target per output (" + std::to_string(spec_.outputs.size()) + ")");
  forward(in, false);
  GraphLossStats stats;
  for (std::size_t k = 0; k < losses.size(); ++k) {
    std::size_t counted = 0, correct = 0;
    double l = 0;
    if (losses[k].kind != GraphLossKind::None) {
      l = outputLoss(k, losses[k], targets[k], &counted, &correct, false);
      stats.loss += losses[k].weight * l;
    }
    stats.outputLosses.push_back(l);
    stats.counted.push_back(counted);
    stats.correct.push_back(correct);
  }
  return stats;
}

GraphLossStats GraphNetwork::trainStep(const std::vector<GraphInputValue>& in, const std::vector<GraphLossSpec>& losses,
                                       const std::vector<GraphTarget>& targets, double clipNorm) {
  store_.requireOptimizer();
  if (clipNorm < 0 || !std::isfinite(clipNorm)) fail(ErrorCode::Argument, "clipNorm must be a finite number >= 0");
  zeroGrad();
  forward(in, true);
  GraphLossStats stats = lossBackward(losses, targets);
  stats.gradNorm = gradNorm();
  const bool applied = store_.applyStep(stats.loss, stats.gradNorm, clipNorm);
  haveTrainForward_ = false;  // the kept activations belong to the old weights, or to a step that was refused
  if (!applied) ParameterStore::refuseStep(stats.loss, stats.gradNorm);
  return stats;
}

void GraphNetwork::optimizerStep() {
  store_.optimizerStep();
  haveTrainForward_ = false;
}

void GraphNetwork::setParam(const std::string& name, const float* data, std::size_t n) {
  store_.set(name, data, n);
  haveTrainForward_ = false;
}

}  // namespace rnnkit
