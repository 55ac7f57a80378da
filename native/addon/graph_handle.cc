#include "graph_handle.h"

#include <cmath>

#include "../core/error.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

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

struct GForwardJob : JobBase {
  GForwardJob(const Napi::CallbackInfo& info, const GraphNetwork& m)
      : inputs(parseInputs(argAt(info, 0), m.spec())), train(parseForwardOptions(argAt(info, 1))) {}
  void run(GraphNetwork& m) { out = m.forward(inputs, train); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Array a = Napi::Array::New(env, out.size());
    for (uint32_t i = 0; i < out.size(); ++i) a.Set(i, toTensor(env, out[i].data, out[i].shape));
    return a;
  }

  std::vector<GraphInputValue> inputs;
  bool train = false;
  std::vector<GraphOutputValue> out;
};

// The inputs, losses and targets of a batch with targets: (inputs, losses, targets).
struct GLossBatch {
  GLossBatch(const Napi::CallbackInfo& info, const GraphNetwork& m)
      : inputs(parseInputs(argAt(info, 0), m.spec())),
        losses(parseLosses(argAt(info, 1), m.spec().outputs.size())),
        targets(parseTargets(argAt(info, 2), losses)) {}

  std::vector<GraphInputValue> inputs;
  std::vector<GraphLossSpec> losses;
  std::vector<GraphTarget> targets;
};

struct GEvaluateJob : JobBase {
  GEvaluateJob(const Napi::CallbackInfo& info, const GraphNetwork& m) : batch(info, m) {}
  void run(GraphNetwork& m) { stats = m.evaluate(batch.inputs, batch.losses, batch.targets); }
  Napi::Value toJs(Napi::Env env) const { return statsToJs(env, stats); }

  GLossBatch batch;
  GraphLossStats stats;
};

struct GTrainStepJob : JobBase {
  GTrainStepJob(const Napi::CallbackInfo& info, const GraphNetwork& m)
      : batch(info, m), clipNorm(parseTrainStepOptions(argAt(info, 3))) {}
  void run(GraphNetwork& m) { stats = m.trainStep(batch.inputs, batch.losses, batch.targets, clipNorm); }
  Napi::Value toJs(Napi::Env env) const { return statsToJs(env, stats); }

  GLossBatch batch;
  double clipNorm = 0;
  GraphLossStats stats;
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

const napi_type_tag GraphHandle::kTypeTag = {0x6c1d2e9f4a7b3850ULL, 0xb48e07d3c2a9f615ULL};

Napi::Function GraphHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Graph", {});
  defineMethods(env, ctor, {
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
      {"forward", dispatchJob<GraphHandle, GForwardJob>},
      {"forwardSync", dispatchJobSync<GraphHandle, GForwardJob>},
      {"evaluate", dispatchJob<GraphHandle, GEvaluateJob>},
      {"evaluateSync", dispatchJobSync<GraphHandle, GEvaluateJob>},
      {"trainStep", dispatchJob<GraphHandle, GTrainStepJob>},
      {"trainStepSync", dispatchJobSync<GraphHandle, GTrainStepJob>},
      {"lossBackwardSync", dispatchReading<&GraphHandle::LossBackwardSync>},
  });
  return ctor;
}

GraphHandle::GraphHandle(const Napi::CallbackInfo& info) : ModelHandle(info) {
  guard(info.Env(), [&] {
    Napi::Value a = argAt(info, 0);
    GraphSpec spec = parseGraphSpec(a);
    std::shared_ptr<Backend> backend = backendForSpec(a);
    own(info, backend, std::make_unique<GraphNetwork>(*backend, spec));
    return info.Env().Undefined();
  });
}

// What each tensor id is: [{ name, kind, features, stateSlots }].
Napi::Value GraphHandle::Tensors(const Napi::CallbackInfo& info) {
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

// (losses, targets) after forwardSync(inputs, { train: true }): the gradients accumulate (for gradient checks).
Napi::Value GraphHandle::LossBackwardSync(const Napi::CallbackInfo& info) {
  std::vector<GraphLossSpec> losses = parseLosses(argAt(info, 0), model_->spec().outputs.size());
  std::vector<GraphTarget> targets = parseTargets(argAt(info, 1), losses);
  return statsToJs(info.Env(), model_->lossBackward(losses, targets));
}


}  // namespace rnnkit::addon
