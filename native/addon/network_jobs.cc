#include "network_jobs.h"

#include <cmath>

#include "../core/error.h"
#include "js_convert.h"
#include "method_dispatch.h"
#include "property_keys.h"

namespace rnnkit::addon {

namespace {

// The number of values a shape holds, for messages (a product past 2^53 cannot be a real array's length).
std::string countText(long double count) {
  return count <= 9007199254740991.0L ? std::to_string((long long)count) : std::string("more than 2^53");
}

// An optional array that is given must not be empty: the core reads an empty one as "not given".
template <typename T>
std::vector<T> nonEmpty(std::vector<T> data, const std::string& what) {
  if (data.empty()) fail(ErrorCode::Shape, what + " is empty: give all of its values, or leave it out");
  return data;
}

// The optional `shape` of a tensor object: it must hold exactly `size` values; required when `shape` is wanted.
void readShapeOf(const Napi::Object& obj, const std::string& what, std::size_t size, std::vector<long long>* shape) {
  const Napi::Value given = getField(obj, Key::Shape);
  if (given.IsUndefined()) {
    if (shape) fail(ErrorCode::Shape, what + " needs a shape");
    return;
  }
  std::vector<long long> s = readShape(given, what + ".shape");
  long double count = 1;
  for (long long d : s) count *= (long double)d;
  if (count != (long double)size)
    fail(ErrorCode::Shape, what + ".shape holds " + countText(count) + " values but " + what + ".data has " +
                               std::to_string(size));
  if (shape) *shape = std::move(s);
}

}  // namespace

std::vector<float> readFloatTensorData(const Napi::Value& value, const std::string& what,
                                       std::vector<long long>* shape) {
  if (value.IsTypedArray()) return readFloat32(value, what);
  if (!value.IsObject() || value.IsArray())
    fail(ErrorCode::Type, what + " must be a Float32Array or { data: Float32Array, shape }, got " + typeName(value));
  Napi::Object obj = value.As<Napi::Object>();
  const Napi::Value given = getField(obj, Key::Data);
  if (given.IsUndefined()) fail(ErrorCode::Type, what + " must be a Float32Array or { data: Float32Array, shape }");
  std::vector<float> data = readFloat32(given, what + ".data");
  readShapeOf(obj, what, data.size(), shape);
  return data;
}

std::vector<int32_t> readIntTensorData(const Napi::Value& value, const std::string& what,
                                       std::vector<long long>* shape) {
  if (value.IsTypedArray() || value.IsArray()) {
    if (shape) fail(ErrorCode::Shape, what + " needs a shape: pass { data, shape }");
    return readInt32(value, what);
  }
  Napi::Object obj = requireObject(value, what);
  const Napi::Value given = getField(obj, Key::Data);
  if (given.IsUndefined()) fail(ErrorCode::Type, what + " must be { data: Int32Array, shape }");
  std::vector<int32_t> data = readInt32(given, what + ".data");
  readShapeOf(obj, what, data.size(), shape);
  return data;
}

NetworkSpec parseNetworkSpec(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "spec");
  checkOptionNames(o, "the network spec", {"cell", "inputSize", "vocabSize", "hiddenSize", "numLayers", "bidirectional",
                                           "resetAfter", "gateActivation", "headSize", "seed", "device"});
  NetworkSpec spec;
  if (!has(o, "cell")) fail(ErrorCode::Argument, "spec.cell is required (rnn_tanh, rnn_relu, lstm or gru)");
  spec.cell = parseCell(optionalString(o, "cell", ""));
  spec.inputSize = optionalInt(o, "inputSize", 0);
  spec.vocabSize = optionalInt(o, "vocabSize", 0);
  // 0 means "not given"; a negative size would otherwise pass as absent (and be echoed back by spec()).
  if (spec.inputSize < 0)
    fail(ErrorCode::Argument, "spec.inputSize must be a positive integer, got " + std::to_string(spec.inputSize));
  if (spec.vocabSize < 0)
    fail(ErrorCode::Argument, "spec.vocabSize must be a positive integer, got " + std::to_string(spec.vocabSize));
  if (!has(o, "hiddenSize")) fail(ErrorCode::Argument, "spec.hiddenSize is required");
  spec.hiddenSize = optionalInt(o, "hiddenSize", 0);
  spec.numLayers = optionalInt(o, "numLayers", 1);
  spec.bidirectional = optionalBool(o, "bidirectional", false);
  spec.resetAfter = optionalBool(o, "resetAfter", true);
  spec.gateActivation = parseGateActivation(optionalString(o, "gateActivation", "sigmoid"));
  spec.headSize = optionalInt(o, "headSize", 0);
  if (has(o, "seed")) {
    double seed = optionalNumber(o, "seed", 0);
    if (!(seed >= 0) || seed > 9007199254740991.0 || std::floor(seed) != seed)
      fail(ErrorCode::Value, "spec.seed must be a non-negative integer");
    spec.hasSeed = true;
    spec.seed = (uint64_t)seed;
  }
  spec.validate();
  return spec;
}

StageSpec parseStageSpec(const Napi::Object& l, const std::string& at, const std::string& defaultPrefix) {
  StageSpec s;
  std::string type = optionalString(l, "type", "");
  s.prefix = has(l, "name") ? optionalString(l, "name", "") + "." : defaultPrefix;
  if (type == "embedding") {
    checkOptionNames(l, at, {"type", "name", "outputDim"});
    s.kind = StageKind::Embedding;
    s.embeddingDim = optionalInt(l, "outputDim", 0);
  } else if (type == "recurrent") {
    checkOptionNames(l, at, {"type", "name", "cell", "hiddenSize", "numLayers", "bidirectional", "resetAfter",
                             "gateActivation", "merge", "returnSequences", "goBackwards", "dropout"});
    s.kind = StageKind::Recurrent;
    s.cell = parseCell(optionalString(l, "cell", ""));
    s.hiddenSize = optionalInt(l, "hiddenSize", 0);
    s.numLayers = optionalInt(l, "numLayers", 1);
    s.bidirectional = optionalBool(l, "bidirectional", false);
    s.resetAfter = optionalBool(l, "resetAfter", true);
    s.gateActivation = parseGateActivation(optionalString(l, "gateActivation", "sigmoid"));
    s.merge = parseMergeMode(optionalString(l, "merge", "concat"));
    s.returnSequences = optionalBool(l, "returnSequences", true);
    s.goBackwards = optionalBool(l, "goBackwards", false);
    s.interLayerDropout = (float)optionalNumber(l, "dropout", 0);
  } else if (type == "dense") {
    checkOptionNames(l, at, {"type", "name", "units", "activation"});
    s.kind = StageKind::Dense;
    s.units = optionalInt(l, "units", 0);
    s.activation = parseActivation(optionalString(l, "activation", "linear"));
  } else if (type == "dropout") {
    checkOptionNames(l, at, {"type", "name", "rate"});
    s.kind = StageKind::Dropout;
    s.rate = (float)optionalNumber(l, "rate", 0);
  } else {
    fail(ErrorCode::Argument, at + ".type must be embedding, recurrent, dense or dropout, got '" + type + "'");
  }
  return s;
}

ModelSpec parseModelSpec(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "spec");
  checkOptionNames(o, "the model spec", {"inputSize", "vocabSize", "layers", "seed", "device"});
  ModelSpec m;
  m.inputSize = optionalInt(o, "inputSize", 0);
  m.vocabSize = optionalInt(o, "vocabSize", 0);
  if (has(o, "seed")) {
    double seed = optionalNumber(o, "seed", 0);
    if (!(seed >= 0) || seed > 9007199254740991.0 || std::floor(seed) != seed)
      fail(ErrorCode::Value, "spec.seed must be a non-negative integer");
    m.hasSeed = true;
    m.seed = (uint64_t)seed;
  }
  Napi::Value layers = o.Get("layers");
  if (!layers.IsArray()) fail(ErrorCode::Type, "spec.layers must be an Array of layer specs");
  Napi::Array arr = layers.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string at = "spec.layers[" + std::to_string(i) + "]";
    m.stages.push_back(parseStageSpec(requireObject(arr.Get(i), at), at, "layers." + std::to_string(i) + "."));
  }
  m.validate();
  return m;
}

OptimizerConfig parseOptimizerConfig(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "optimizer");
  checkOptionNames(o, "the optimizer options", {"type", "lr", "momentum", "dampening", "nesterov", "weightDecay", "betas",
                                                "beta1", "beta2", "eps", "amsgrad", "alpha", "centered", "maximize"});
  if (!has(o, "type")) fail(ErrorCode::Argument, "optimizer.type is required (sgd, adam, adamw or rmsprop)");
  OptimizerConfig c = OptimizerConfig::defaults(parseOptimizerKind(optionalString(o, "type", "")));
  c.lr = optionalNumber(o, "lr", c.lr);
  c.momentum = optionalNumber(o, "momentum", c.momentum);
  c.dampening = optionalNumber(o, "dampening", c.dampening);
  c.nesterov = optionalBool(o, "nesterov", c.nesterov);
  c.weightDecay = optionalNumber(o, "weightDecay", c.weightDecay);
  if (has(o, "betas")) {
    Napi::Value b = o.Get("betas");
    if (!b.IsArray() || b.As<Napi::Array>().Length() != 2)
      fail(ErrorCode::Type, "optimizer.betas must be an Array of two numbers");
    Napi::Array arr = b.As<Napi::Array>();
    if (!arr.Get(0u).IsNumber() || !arr.Get(1u).IsNumber())
      fail(ErrorCode::Type, "optimizer.betas must be an Array of two numbers");
    c.beta1 = arr.Get(0u).As<Napi::Number>().DoubleValue();
    c.beta2 = arr.Get(1u).As<Napi::Number>().DoubleValue();
  }
  c.beta1 = optionalNumber(o, "beta1", c.beta1);
  c.beta2 = optionalNumber(o, "beta2", c.beta2);
  c.eps = optionalNumber(o, "eps", c.eps);
  c.amsgrad = optionalBool(o, "amsgrad", c.amsgrad);
  c.alpha = optionalNumber(o, "alpha", c.alpha);
  c.centered = optionalBool(o, "centered", c.centered);
  c.maximize = optionalBool(o, "maximize", c.maximize);
  c.validate();
  return c;
}

SequenceInput parseSequenceInput(const Napi::Value& value, int vocabSize) {
  Napi::Object o = requireObject(value, "input");
  checkOptionNames(o, "the input", {"x", "tokens", "lengths", "h0", "c0", "batchFirst"});
  SequenceInput in;
  in.batchFirst = optionalBool(getField(o, Key::BatchFirst), "batchFirst", false);
  if (vocabSize > 0) {
    const Napi::Value tokens = getField(o, Key::Tokens);
    if (tokens.IsUndefined())
      fail(ErrorCode::Argument, "input.tokens is required: this network reads token ids over " +
                                    std::to_string(vocabSize) + " symbols");
    in.tokens = readIntTensorData(tokens, "input.tokens", &in.shape);
  } else {
    const Napi::Value x = getField(o, Key::X);
    if (x.IsUndefined()) fail(ErrorCode::Argument, "input.x is required: { data: Float32Array, shape }");
    in.x = readFloatTensorData(x, "input.x", &in.shape);
  }
  const Napi::Value lengths = getField(o, Key::Lengths), h0 = getField(o, Key::H0), c0 = getField(o, Key::C0);
  if (!lengths.IsUndefined()) in.lengths = nonEmpty(readInt32(lengths, "input.lengths"), "input.lengths");
  if (!h0.IsUndefined()) in.h0 = nonEmpty(readFloatTensorData(h0, "input.h0"), "input.h0");
  if (!c0.IsUndefined()) in.c0 = nonEmpty(readFloatTensorData(c0, "input.c0"), "input.c0");
  return in;
}

LossTarget parseLossTarget(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "target");
  checkOptionNames(o, "the loss target", {"kind", "classes", "values", "ignoreIndex"});
  LossTarget t;
  std::string kind = optionalString(o, "kind", has(o, "values") ? "mse" : "softmaxCrossEntropy");
  if (kind == "softmaxCrossEntropy") {
    t.kind = LossKind::SoftmaxCrossEntropy;
    if (!has(o, "classes")) fail(ErrorCode::Argument, "target.classes is required for softmaxCrossEntropy");
    t.classes = readIntTensorData(o.Get("classes"), "target.classes");
    t.ignoreIndex = optionalInt(o, "ignoreIndex", kDefaultIgnoreIndex);
  } else if (kind == "mse") {
    t.kind = LossKind::MeanSquaredError;
    if (!has(o, "values")) fail(ErrorCode::Argument, "target.values is required for mse");
    t.values = readFloatTensorData(o.Get("values"), "target.values");
  } else {
    fail(ErrorCode::Argument, "unknown loss '" + kind + "': expected softmaxCrossEntropy or mse");
  }
  return t;
}

ForwardJob::ForwardJob(const Napi::CallbackInfo& info, const Network& net) {
  input = parseSequenceInput(argAt(info, 0), net.vocabSize());
  Napi::Value opts = argAt(info, 1);
  if (!opts.IsUndefined()) {
    Napi::Object o = requireObject(opts, "options");
    checkOptionNames(o, "forward options", {"train"});
    train = optionalBool(o, "train", false);
  }
}

Napi::Value ForwardJob::toJs(Napi::Env env) const {
  Napi::Object out = Napi::Object::New(env);
  setField(out, Key::Output, toTensor(env, result.output, result.shape));
  out.Set("hn", toFloat32Array(env, result.hn));
  if (!result.cn.empty()) out.Set("cn", toFloat32Array(env, result.cn));
  return out;
}

BackwardJob::BackwardJob(const Napi::CallbackInfo& info, const Network&) {
  Napi::Object o = requireObject(argAt(info, 0), "gradient");
  checkOptionNames(o, "the gradient", {"dOutput", "dhn", "dcn"});
  if (has(o, "dOutput"))
    grad.dOutput = nonEmpty(readFloatTensorData(o.Get("dOutput"), "gradient.dOutput"), "gradient.dOutput");
  if (has(o, "dhn")) grad.dhn = nonEmpty(readFloatTensorData(o.Get("dhn"), "gradient.dhn"), "gradient.dhn");
  if (has(o, "dcn")) grad.dcn = nonEmpty(readFloatTensorData(o.Get("dcn"), "gradient.dcn"), "gradient.dcn");
}

namespace {
Napi::Object inputGradientToJs(Napi::Env env, const InputGradient& g) {
  Napi::Object out = Napi::Object::New(env);
  if (!g.dx.empty()) out.Set("dx", toFloat32Array(env, g.dx));
  out.Set("dh0", toFloat32Array(env, g.dh0));
  if (!g.dc0.empty()) out.Set("dc0", toFloat32Array(env, g.dc0));
  return out;
}
}  // namespace

Napi::Value BackwardJob::toJs(Napi::Env env) const { return inputGradientToJs(env, result); }

LossJob::LossJob(const Napi::CallbackInfo& info, const Network&) { target = parseLossTarget(argAt(info, 0)); }

Napi::Value LossJob::toJs(Napi::Env env) const {
  Napi::Object out = inputGradientToJs(env, result.grads);
  out.Set("loss", Napi::Number::New(env, result.loss));
  return out;
}

EvaluateJob::EvaluateJob(const Napi::CallbackInfo& info, const Network& net) {
  input = parseSequenceInput(argAt(info, 0), net.vocabSize());
  target = parseLossTarget(argAt(info, 1));
}

Napi::Value EvaluateJob::toJs(Napi::Env env) const {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", Napi::Number::New(env, result.loss));
  out.Set("counted", Napi::Number::New(env, (double)result.counted));
  if (target.kind == LossKind::SoftmaxCrossEntropy) out.Set("correct", Napi::Number::New(env, (double)result.correct));
  return out;
}

TrainStepJob::TrainStepJob(const Napi::CallbackInfo& info, const Network& net) {
  input = parseSequenceInput(argAt(info, 0), net.vocabSize());
  target = parseLossTarget(argAt(info, 1));
  Napi::Value opts = argAt(info, 2);
  if (!opts.IsUndefined()) {
    Napi::Object o = requireObject(opts, "options");
    checkOptionNames(o, "trainStep options", {"clipNorm", "carryState", "nonFinite"});
    clipNorm = optionalNumber(o, "clipNorm", 0);
    carryState = optionalBool(o, "carryState", false);
    const std::string policy = optionalString(o, "nonFinite", "error");
    if (policy == "skip") nonFinite = NonFinitePolicy::Skip;
    else if (policy != "error")
      fail(ErrorCode::Argument, "nonFinite must be 'error' or 'skip', got '" + policy + "'");
    if (clipNorm < 0 || !std::isfinite(clipNorm)) fail(ErrorCode::Value, "clipNorm must be a finite number >= 0");
  }
}

Napi::Value TrainStepJob::toJs(Napi::Env env) const {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", Napi::Number::New(env, result.loss));
  out.Set("gradNorm", Napi::Number::New(env, result.gradNorm));
  out.Set("counted", Napi::Number::New(env, (double)result.counted));
  if (target.kind == LossKind::SoftmaxCrossEntropy) out.Set("correct", Napi::Number::New(env, (double)result.correct));
  out.Set("skipped", Napi::Boolean::New(env, result.skipped));
  return out;
}

bool parseForwardOptions(const Napi::Value& options) {
  if (options.IsUndefined()) return false;
  Napi::Object o = requireObject(options, "options");
  checkOptionNames(o, "forward options", {"train"});
  return optionalBool(o, "train", false);
}

double parseTrainStepOptions(const Napi::Value& options) {
  if (options.IsUndefined()) return 0;
  Napi::Object o = requireObject(options, "options");
  checkOptionNames(o, "trainStep options", {"clipNorm"});
  const double clipNorm = optionalNumber(o, "clipNorm", 0);
  if (!(clipNorm >= 0) || !std::isfinite(clipNorm))
    fail(ErrorCode::Value, "trainStep: options.clipNorm must be a finite number >= 0 (0: no clipping)");
  return clipNorm;
}

}  // namespace rnnkit::addon
