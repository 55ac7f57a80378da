#include "graph_handle.h"

#include <cmath>

#include "../core/error.h"
#include "../cpu/thread_priority.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kGraphTag = {0x6c1d2e9f4a7b3850ULL, 0xb48e07d3c2a9f615ULL};

Napi::Array requireArray(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) fail(ErrorCode::Type, what + " must be an Array, got " + typeName(v));
  return v.As<Napi::Array>();
}

std::vector<int> readIds(const Napi::Value& v, const std::string& what) {
  if (v.IsUndefined()) return {};
  std::vector<int32_t> ids = readInt32(requireArray(v, what), what);
  return std::vector<int>(ids.begin(), ids.end());
}

GraphOp parseOp(const std::string& op, const std::string& at) {
  if (op == "embedding") return GraphOp::Embedding;
  if (op == "recurrent") return GraphOp::Recurrent;
  if (op == "dense") return GraphOp::Dense;
  if (op == "dropout") return GraphOp::Dropout;
  if (op == "repeatVector") return GraphOp::RepeatVector;
  if (op == "concatenate") return GraphOp::Concatenate;
  if (op == "attention") return GraphOp::DotAttention;
  fail(ErrorCode::Argument, at + ".op: unknown layer kind '" + op + "'");
}

// { inputs: [{ name, dtype, size, sequence }], nodes: [{ op, name, inputs, initialState, returnState, n, layer }],
//   outputs: [ids], seed, device }
GraphSpec parseGraphSpec(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "graph spec");
  checkOptionNames(o, "the graph spec", {"inputs", "nodes", "outputs", "seed", "device"});
  GraphSpec g;
  Napi::Array inputs = requireArray(o.Get("inputs"), "spec.inputs");
  for (uint32_t i = 0; i < inputs.Length(); ++i) {
    const std::string at = "spec.inputs[" + std::to_string(i) + "]";
    Napi::Object in = requireObject(inputs.Get(i), at);
    checkOptionNames(in, at, {"name", "dtype", "size", "sequence"});
    GraphInputSpec s;
    s.name = optionalString(in, "name", "input" + std::to_string(i));
    const std::string dtype = optionalString(in, "dtype", "float32");
    if (dtype != "int32" && dtype != "float32") fail(ErrorCode::Argument, at + ".dtype must be int32 or float32");
    s.tokens = dtype == "int32";
    s.sequence = optionalBool(in, "sequence", true);
    s.size = optionalInt(in, "size", 0);
    g.inputs.push_back(s);
  }
  Napi::Array nodes = requireArray(o.Get("nodes"), "spec.nodes");
  for (uint32_t i = 0; i < nodes.Length(); ++i) {
    const std::string at = "spec.nodes[" + std::to_string(i) + "]";
    Napi::Object n = requireObject(nodes.Get(i), at);
    checkOptionNames(n, at, {"op", "name", "inputs", "initialState", "returnState", "n", "layer"});
    GraphNodeSpec s;
    s.op = parseOp(optionalString(n, "op", ""), at);
    s.name = optionalString(n, "name", "");
    if (s.name.empty()) fail(ErrorCode::Argument, at + ".name is required");
    s.inputs = readIds(n.Get("inputs"), at + ".inputs");
    s.initialState = readIds(n.Get("initialState"), at + ".initialState");
    s.returnState = optionalBool(n, "returnState", false);
    s.repeat = optionalInt(n, "n", 0);
    if (s.op == GraphOp::Embedding || s.op == GraphOp::Recurrent || s.op == GraphOp::Dense || s.op == GraphOp::Dropout) {
      s.stage = parseStageSpec(requireObject(n.Get("layer"), at + ".layer"), "layer '" + s.name + "'", s.name + ".");
      const StageKind want = s.op == GraphOp::Embedding ? StageKind::Embedding : s.op == GraphOp::Recurrent ? StageKind::Recurrent
                             : s.op == GraphOp::Dense ? StageKind::Dense : StageKind::Dropout;
      if (s.stage.kind != want) fail(ErrorCode::Argument, at + ".layer.type does not match its op");
    }
    g.nodes.push_back(s);
  }
  g.outputs = readIds(o.Get("outputs"), "spec.outputs");
  if (has(o, "seed")) {
    const double seed = optionalNumber(o, "seed", 0);
    if (!(seed >= 0) || seed > 9007199254740991.0 || std::floor(seed) != seed)
      fail(ErrorCode::Value, "spec.seed must be a non-negative integer");
    g.hasSeed = true;
    g.seed = (uint64_t)seed;
  }
  return g;
}

// [{ data, shape, lengths? }] in the model's input order.
std::vector<GraphInputValue> parseInputs(const Napi::Value& value, const GraphSpec& spec) {
  Napi::Array arr = requireArray(value, "inputs");
  if (arr.Length() != spec.inputs.size())
    fail(ErrorCode::Argument, "graph: the model has " + std::to_string(spec.inputs.size()) + " input(s), got " +
                                  std::to_string(arr.Length()));
  std::vector<GraphInputValue> out(spec.inputs.size());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string what = "input '" + spec.inputs[i].name + "'";
    Napi::Object o = requireObject(arr.Get(i), what);
    checkOptionNames(o, what, {"data", "shape", "lengths"});
    if (spec.inputs[i].tokens) out[i].tokens = readIntTensorData(o, what, &out[i].shape);
    else out[i].x = readFloatTensorData(o, what, &out[i].shape);
    Napi::Value l = o.Get("lengths");
    if (!l.IsUndefined() && !l.IsNull()) out[i].lengths = readInt32(l, what + ".lengths");
  }
  return out;
}

std::vector<GraphLossSpec> parseLosses(const Napi::Value& value, std::size_t outputs) {
  Napi::Array arr = requireArray(value, "losses");
  if (arr.Length() != outputs) fail(ErrorCode::Argument, "graph: one loss per output (" + std::to_string(outputs) + ")");
  std::vector<GraphLossSpec> out(outputs);
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string at = "losses[" + std::to_string(i) + "]";
    Napi::Object o = requireObject(arr.Get(i), at);
    checkOptionNames(o, at, {"kind", "ignoreIndex", "weight", "accuracy"});
    const std::string kind = optionalString(o, "kind", "none");
    if (kind == "crossEntropy") out[i].kind = GraphLossKind::SoftmaxCrossEntropy;
    else if (kind == "mse") out[i].kind = GraphLossKind::MeanSquaredError;
    else if (kind != "none") fail(ErrorCode::Argument, at + ".kind must be crossEntropy, mse or none");
    out[i].ignoreIndex = optionalInt(o, "ignoreIndex", kDefaultIgnoreIndex);
    out[i].weight = optionalNumber(o, "weight", 1.0);
    out[i].accuracy = optionalBool(o, "accuracy", false);
    if (!std::isfinite(out[i].weight) || out[i].weight < 0) fail(ErrorCode::Value, at + ".weight must be a finite number >= 0");
  }
  return out;
}

std::vector<GraphTarget> parseTargets(const Napi::Value& value, const std::vector<GraphLossSpec>& losses) {
  Napi::Array arr = requireArray(value, "targets");
  if (arr.Length() != losses.size()) fail(ErrorCode::Argument, "graph: one target per output (" + std::to_string(losses.size()) + ")");
  std::vector<GraphTarget> out(losses.size());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string what = "targets[" + std::to_string(i) + "]";
    Napi::Value v = arr.Get(i);
    if (losses[i].kind == GraphLossKind::None) continue;
    if (v.IsUndefined() || v.IsNull()) fail(ErrorCode::Argument, what + " is required (the output has a loss)");
    if (losses[i].kind == GraphLossKind::SoftmaxCrossEntropy) out[i].classes = readIntTensorData(v, what);
    else out[i].values = readFloatTensorData(v, what);
  }
  return out;
}

Napi::Value statsToJs(Napi::Env env, const GraphLossStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", s.loss);
  o.Set("gradNorm", s.gradNorm);
  Napi::Array l = Napi::Array::New(env), c = Napi::Array::New(env), r = Napi::Array::New(env);
  for (uint32_t i = 0; i < s.outputLosses.size(); ++i) {
    l.Set(i, s.outputLosses[i]);
    c.Set(i, (double)s.counted[i]);
    r.Set(i, (double)s.correct[i]);
  }
  o.Set("outputLosses", l);
  o.Set("counted", c);
  o.Set("correct", r);
  return o;
}

struct GForwardJob {
  std::vector<GraphInputValue> inputs;
  bool train = false;
  std::vector<GraphOutputValue> out;
  void run(GraphNetwork& m) { out = m.forward(inputs, train); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Array a = Napi::Array::New(env, out.size());
    for (uint32_t i = 0; i < out.size(); ++i) a.Set(i, toTensor(env, out[i].data, out[i].shape));
    return a;
  }
};

struct GEvaluateJob {
  std::vector<GraphInputValue> inputs;
  std::vector<GraphLossSpec> losses;
  std::vector<GraphTarget> targets;
  GraphLossStats stats;
  void run(GraphNetwork& m) { stats = m.evaluate(inputs, losses, targets); }
  Napi::Value toJs(Napi::Env env) const { return statsToJs(env, stats); }
};

struct GTrainStepJob {
  std::vector<GraphInputValue> inputs;
  std::vector<GraphLossSpec> losses;
  std::vector<GraphTarget> targets;
  double clipNorm = 0;
  GraphLossStats stats;
  void run(GraphNetwork& m) { stats = m.trainStep(inputs, losses, targets, clipNorm); }
  Napi::Value toJs(Napi::Env env) const { return statsToJs(env, stats); }
};

template <typename Job>
Job makeJob(const Napi::CallbackInfo& info, GraphNetwork& m);

template <>
GForwardJob makeJob<GForwardJob>(const Napi::CallbackInfo& info, GraphNetwork& m) {
  GForwardJob j;
  j.inputs = parseInputs(argAt(info, 0), m.spec());
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = requireObject(info[1], "options");
    checkOptionNames(o, "forward options", {"train"});
    j.train = optionalBool(o, "train", false);
  }
  return j;
}

template <>
GEvaluateJob makeJob<GEvaluateJob>(const Napi::CallbackInfo& info, GraphNetwork& m) {
  GEvaluateJob j;
  j.inputs = parseInputs(argAt(info, 0), m.spec());
  j.losses = parseLosses(argAt(info, 1), m.spec().outputs.size());
  j.targets = parseTargets(argAt(info, 2), j.losses);
  return j;
}

template <>
GTrainStepJob makeJob<GTrainStepJob>(const Napi::CallbackInfo& info, GraphNetwork& m) {
  GTrainStepJob j;
  j.inputs = parseInputs(argAt(info, 0), m.spec());
  j.losses = parseLosses(argAt(info, 1), m.spec().outputs.size());
  j.targets = parseTargets(argAt(info, 2), j.losses);
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    Napi::Object o = requireObject(info[3], "options");
    checkOptionNames(o, "trainStep options", {"clipNorm"});
    j.clipNorm = optionalNumber(o, "clipNorm", 0);
    if (!(j.clipNorm >= 0) || !std::isfinite(j.clipNorm))
      fail(ErrorCode::Value, "trainStep: options.clipNorm must be a finite number >= 0 (0: no clipping)");
  }
  return j;
}

template <typename Job>
class GraphWorker final : public Napi::AsyncWorker, public QueuedCall {
 public:
  GraphWorker(Napi::Env env, GraphHandle* handle, Napi::Object self, Job job)
      : Napi::AsyncWorker(env, "rnnkit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(handle),
        self_(Napi::Persistent(self)),
        job_(std::move(job)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }
  bool start() override {
    Queue();
    return true;
  }
  void cancel(ErrorCode code, const std::string& message) override {
    deferred_.Reject(makeError(Env(), code, message).Value());
    self_.Reset();
    delete this;
  }
  void Execute() override {
    cpu::LowerThreadPriority background;
    error_.capture([&] { job_.run(handle_->model()); });
    if (error_.set) SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Value result;
    CapturedError convertError;
    convertError.capture([&] { result = job_.toJs(env); });
    if (convertError.set) deferred_.Reject(makeError(env, convertError.code, convertError.message).Value());
    else deferred_.Resolve(result);
    handle_->endCall();
    self_.Reset();
  }
  void OnError(const Napi::Error&) override {
    deferred_.Reject(makeError(Env(), error_.code, error_.message).Value());
    handle_->endCall();
    self_.Reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  GraphHandle* handle_;
  Napi::ObjectReference self_;
  Job job_;
  CapturedError error_;
};

const char* kindName(GraphTensorInfo::Kind k) {
  switch (k) {
    case GraphTensorInfo::Kind::Tokens: return "tokens";
    case GraphTensorInfo::Kind::Sequence: return "sequence";
    case GraphTensorInfo::Kind::Vector: return "vector";
    case GraphTensorInfo::Kind::State: return "state";
    case GraphTensorInfo::Kind::Weights: return "attention";
  }
  return "?";
}

}  // namespace

Napi::Function GraphHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Graph", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry methods[] = {
      {"dispose", dispatchAlways<&GraphHandle::Dispose>},
      {"isDisposed", dispatchAlways<&GraphHandle::IsDisposed>},
      {"tensors", dispatchReading<&GraphHandle::Tensors>},
      {"paramNames", dispatchReading<&GraphHandle::ParamNames>},
      {"paramShape", dispatchReading<&GraphHandle::ParamShape>},
      {"getParam", dispatchReading<&GraphHandle::GetParam>},
      {"setParam", dispatchReading<&GraphHandle::SetParam>},
      {"getGrad", dispatchReading<&GraphHandle::GetGrad>},
      {"zeroGrad", dispatchReading<&GraphHandle::ZeroGrad>},
      {"setOptimizer", dispatchReading<&GraphHandle::SetOptimizer>},
      {"forward", dispatchPromise<&GraphHandle::Forward>},
      {"forwardSync", dispatchReading<&GraphHandle::ForwardSync>},
      {"evaluate", dispatchPromise<&GraphHandle::Evaluate>},
      {"evaluateSync", dispatchReading<&GraphHandle::EvaluateSync>},
      {"trainStep", dispatchPromise<&GraphHandle::TrainStep>},
      {"trainStepSync", dispatchReading<&GraphHandle::TrainStepSync>},
      {"lossBackwardSync", dispatchReading<&GraphHandle::LossBackwardSync>},
  };
  for (const Entry& m : methods) proto.Set(m.name, Napi::Function::New(env, m.fn, m.name));
  return ctor;
}

GraphHandle::GraphHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GraphHandle>(info) {
  guard(info.Env(), [&] {
    Napi::Value a = argAt(info, 0);
    GraphSpec spec = parseGraphSpec(a);
    backend_ = backendForSpec(a);
    model_ = std::make_unique<GraphNetwork>(*backend_, spec);
    info.This().As<Napi::Object>().TypeTag(&kGraphTag);
    reportMemory();
    return info.Env().Undefined();
  });
}

GraphHandle::~GraphHandle() { releaseNative(); }

GraphHandle* GraphHandle::fromObject(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kGraphTag))
    fail(ErrorCode::Type, std::string(what) + " must be a Graph model");
  return Unwrap(value.As<Napi::Object>());
}

void GraphHandle::checkOpen() const {
  if (disposed_ || !model_) fail(ErrorCode::Disposed, "this graph model has been disposed");
  if (reading_) fail(ErrorCode::Busy, "this graph model is reading the arguments of another call (a getter or Proxy trap called it)");
}

void GraphHandle::checkUsable() const {
  if (disposed_ || !model_) fail(ErrorCode::Disposed, "this graph model has been disposed");
  if (calls_.running()) fail(ErrorCode::Busy, "this graph model is running another call; await it before starting the next one");
}

GraphHandle::Reading::Reading(GraphHandle& h) : h_(h) {
  if (h_.reading_) fail(ErrorCode::Busy, "this graph model is reading the arguments of another call (a getter or Proxy trap called it)");
  h_.reading_ = true;
}

GraphHandle::Reading::~Reading() {
  h_.reading_ = false;
  if (h_.disposed_ && !h_.calls_.running()) h_.releaseNative();
}

void GraphHandle::endCall() {
  if (disposed_) {
    releaseNative();
    calls_.cancelWaiting(ErrorCode::Disposed, "this graph model has been disposed (before this queued call ran)");
    return;
  }
  reportMemory();
  calls_.startNext();
}

void GraphHandle::releaseNative() {
  if (!model_) return;
  model_.reset();
  backend_.reset();
  if (reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -reportedBytes_);
    reportedBytes_ = 0;
  }
}

void GraphHandle::reportMemory() {
  if (!model_) return;
  const int64_t bytes = (int64_t)model_->memoryBytes();
  if (bytes != reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), bytes - reportedBytes_);
    reportedBytes_ = bytes;
  }
}

template <typename Job>
Napi::Value GraphHandle::run(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (!async) {
    checkUsable();
    Job job = makeJob<Job>(info, *model_);
    if (disposed_) fail(ErrorCode::Disposed, "this graph model has been disposed (while the call read its arguments)");
    job.run(*model_);
    reportMemory();
    return job.toJs(env);
  }
  return rejectOnThrow(env, [&]() -> Napi::Value {
    checkOpen();
    GraphWorker<Job>* worker;
    {
      Reading reading(*this);
      Job job = makeJob<Job>(info, *model_);
      if (disposed_) fail(ErrorCode::Disposed, "this graph model has been disposed (while the call read its arguments)");
      worker = new GraphWorker<Job>(env, this, info.This().As<Napi::Object>(), std::move(job));
    }
    Napi::Promise promise = worker->promise();
    calls_.submit(worker);
    return promise;
  });
}

Napi::Value GraphHandle::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) {
    disposed_ = true;
    if (!calls_.running() && !reading_) releaseNative();
  }
  return info.Env().Undefined();
}

Napi::Value GraphHandle::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

// What each tensor id is: [{ name, kind, features, stateSlots }].
Napi::Value GraphHandle::Tensors(const Napi::CallbackInfo& info) {
  checkUsable();
  const auto& ts = model_->tensors();
  Napi::Array a = Napi::Array::New(info.Env(), ts.size());
  for (uint32_t i = 0; i < ts.size(); ++i) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("name", ts[i].name);
    o.Set("kind", kindName(ts[i].kind));
    o.Set("features", ts[i].features);
    o.Set("stateSlots", ts[i].stateSlots);
    a.Set(i, o);
  }
  return a;
}

Napi::Value GraphHandle::ParamNames(const Napi::CallbackInfo& info) {
  checkUsable();
  const auto& entries = model_->layout().entries();
  Napi::Array a = Napi::Array::New(info.Env(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) a.Set((uint32_t)i, entries[i].name);
  return a;
}

Napi::Value GraphHandle::ParamShape(const Napi::CallbackInfo& info) {
  checkUsable();
  const ParamEntry& e = model_->layout().at(argString(info, 0, "name"));
  return toShape(info.Env(), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value GraphHandle::GetParam(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  const ParamEntry& e = model_->layout().at(name);
  return toTensor(info.Env(), model_->getParam(name), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value GraphHandle::GetGrad(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  const ParamEntry& e = model_->layout().at(name);
  return toTensor(info.Env(), model_->getGrad(name), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value GraphHandle::SetParam(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  model_->layout().at(name);
  std::vector<float> data = readFloat32(argAt(info, 1), name);
  model_->setParam(name, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value GraphHandle::ZeroGrad(const Napi::CallbackInfo& info) {
  checkUsable();
  model_->zeroGrad();
  return info.Env().Undefined();
}

Napi::Value GraphHandle::SetOptimizer(const Napi::CallbackInfo& info) {
  checkUsable();
  model_->setOptimizer(parseOptimizerConfig(argAt(info, 0)));
  reportMemory();
  return info.Env().Undefined();
}

// (losses, targets) after forwardSync(inputs, { train: true }): the gradients accumulate (for gradient checks).
Napi::Value GraphHandle::LossBackwardSync(const Napi::CallbackInfo& info) {
  checkUsable();
  std::vector<GraphLossSpec> losses = parseLosses(argAt(info, 0), model_->spec().outputs.size());
  std::vector<GraphTarget> targets = parseTargets(argAt(info, 1), losses);
  return statsToJs(info.Env(), model_->lossBackward(losses, targets));
}

Napi::Value GraphHandle::Forward(const Napi::CallbackInfo& info) { return run<GForwardJob>(info, true); }
Napi::Value GraphHandle::ForwardSync(const Napi::CallbackInfo& info) { return run<GForwardJob>(info, false); }
Napi::Value GraphHandle::Evaluate(const Napi::CallbackInfo& info) { return run<GEvaluateJob>(info, true); }
Napi::Value GraphHandle::EvaluateSync(const Napi::CallbackInfo& info) { return run<GEvaluateJob>(info, false); }
Napi::Value GraphHandle::TrainStep(const Napi::CallbackInfo& info) { return run<GTrainStepJob>(info, true); }
Napi::Value GraphHandle::TrainStepSync(const Napi::CallbackInfo& info) { return run<GTrainStepJob>(info, false); }

}  // namespace rnnkit::addon
