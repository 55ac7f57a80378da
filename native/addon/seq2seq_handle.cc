#include "seq2seq_handle.h"

#include <cmath>

#include "../core/error.h"
#include "addon_data.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kDecoderTag = {0x51e8b3a7c2d94f60ULL, 0x9d2f6a8c4e1b7035ULL};

int intField(const Napi::Object& o, const char* key, const char* owner) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail(ErrorCode::Type, std::string(owner) + "." + key + " must be an integer, got " + typeName(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 2147483647.0)
    fail(ErrorCode::Value, std::string(owner) + "." + key + " must be an integer, got " + std::to_string(d));
  return (int)d;
}

// { data: Int32Array | number[], shape: [rows, steps] } (token ids, batch-first).
std::vector<int32_t> readIds(const Napi::Value& v, const std::string& what, int* rows, int* steps) {
  Napi::Object o = requireObject(v, what);
  std::vector<long long> shape = readShape(o.Get("shape"), what + ".shape");
  if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1 || shape[0] > (1 << 28) || shape[1] > (1 << 28))
    fail(ErrorCode::Shape, what + " must have shape [batch, steps] with both at least 1");
  *rows = (int)shape[0];
  *steps = (int)shape[1];
  return readInt32(o.Get("data"), what + ".data");
}

std::vector<int32_t> optionalIds(const Napi::Object& o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  return readInt32(v, what);
}

Seq2SeqSpec parseSpec(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "seq2seq spec");
  checkOptionNames(o, "the seq2seq spec",
                   {"cell", "attention", "srcVocab", "tgtVocab", "embedSize", "hiddenSize", "numLayers", "seed", "device"});
  Seq2SeqSpec s;
  s.cell = parseCell(optionalString(o, "cell", "gru"));
  s.attention = parseAttention(optionalString(o, "attention", "bahdanau"));
  s.srcVocab = intField(o, "srcVocab", "spec");
  s.tgtVocab = intField(o, "tgtVocab", "spec");
  s.embedSize = intField(o, "embedSize", "spec");
  s.hiddenSize = intField(o, "hiddenSize", "spec");
  s.numLayers = has(o, "numLayers") ? intField(o, "numLayers", "spec") : 1;
  if (has(o, "seed")) {
    Napi::Value seed = o.Get("seed");
    if (!seed.IsNumber()) fail(ErrorCode::Type, "spec.seed must be a number");
    const double d = seed.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d)
      fail(ErrorCode::Value, "spec.seed must be a non-negative safe integer");
    s.hasSeed = true;
    s.seed = (uint64_t)d;
  }
  s.validate();
  return s;
}

// { source, sourceLengths?, decoderInput, targets? } with the decoder input's shape for the targets.
Seq2SeqBatch parseBatch(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "batch");
  Seq2SeqBatch b;
  b.src = readIds(o.Get("source"), "batch.source", &b.batch, &b.srcLen);
  b.srcLengths = optionalIds(o, "sourceLengths", "batch.sourceLengths");
  int rows = 0;
  b.tgtIn = readIds(o.Get("decoderInput"), "batch.decoderInput", &rows, &b.tgtLen);
  if (rows != b.batch)
    fail(ErrorCode::Shape, "batch.decoderInput has " + std::to_string(rows) + " rows, the source has " +
                               std::to_string(b.batch));
  b.targets = optionalIds(o, "targets", "batch.targets");
  return b;
}

Napi::Int32Array toInt32Array(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// The batch a job reads: (batch, ...); `what` names the call whose targets are required, nullptr when optional.
Seq2SeqBatch parseJobBatch(const Napi::CallbackInfo& info, const char* needsTargets) {
  Seq2SeqBatch b = parseBatch(argAt(info, 0));
  if (needsTargets && b.targets.empty()) fail(ErrorCode::Argument, std::string(needsTargets) + ": batch.targets is required");
  return b;
}

struct S2sForwardJob : JobBase {
  S2sForwardJob(const Napi::CallbackInfo& info, const Seq2Seq&)
      : batch(parseJobBatch(info, nullptr)), train(parseForwardOptions(argAt(info, 1))) {}
  void run(Seq2Seq& m) {
    out = m.forward(batch, train);
    vocab = m.spec().tgtVocab;
  }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("logits", toTensor(env, out.logits, {batch.batch, batch.tgtLen, vocab}));
    if (out.attention.empty()) o.Set("attention", env.Null());
    else o.Set("attention", toTensor(env, out.attention, {batch.batch, batch.tgtLen, batch.srcLen}));
    return o;
  }

  Seq2SeqBatch batch;
  bool train = false;
  Seq2SeqForward out;
  int vocab = 0;
};

struct S2sEvaluateJob : JobBase {
  S2sEvaluateJob(const Napi::CallbackInfo& info, const Seq2Seq&) : batch(parseJobBatch(info, "evaluate")) {}
  void run(Seq2Seq& m) { loss = m.evaluate(batch, &counted); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    o.Set("counted", counted);
    return o;
  }

  Seq2SeqBatch batch;
  double loss = 0;
  int counted = 0;
};

struct S2sTrainStepJob : JobBase {
  S2sTrainStepJob(const Napi::CallbackInfo& info, const Seq2Seq&)
      : batch(parseJobBatch(info, "trainStep")), clipNorm(parseTrainStepOptions(argAt(info, 1))) {}
  void run(Seq2Seq& m) { loss = m.trainStep(batch, clipNorm); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    return o;
  }

  Seq2SeqBatch batch;
  double clipNorm = 0;
  double loss = 0;
};

struct S2sDecodeJob : JobBase {
  S2sDecodeJob(const Napi::CallbackInfo& info, const Seq2Seq&) {
    src = readIds(argAt(info, 0), "source", &batch, &srcLen);
    Napi::Object o = requireObject(argAt(info, 1), "decode options");
    checkOptionNames(o, "decode options",
                     {"startToken", "endToken", "maxLength", "beamWidth", "lengthPenalty", "sourceLengths", "attention"});
    lengths = optionalIds(o, "sourceLengths", "options.sourceLengths");
    if (!has(o, "startToken")) fail(ErrorCode::Argument, "decoder: options.startToken is required");
    const bool hasEnd = has(o, "endToken") && !o.Get("endToken").IsUndefined();
    const bool hasMax = has(o, "maxLength") && !o.Get("maxLength").IsUndefined();
    // Something must end the decoding: the end token, a length, or both.
    if (!hasEnd && !hasMax)
      fail(ErrorCode::Argument, "decoder: give options.endToken (the token that ends a row) or options.maxLength, or both");
    options.sos = intField(o, "startToken", "options");
    options.eos = hasEnd ? intField(o, "endToken", "options") : -1;
    if (hasEnd && options.eos < 0)
      fail(ErrorCode::Value, "decoder: options.endToken must be a token id >= 0 (leave it out for none)");
    // Without a length, a row may run to twice its source plus 10 tokens (then stops, as if it had ended).
    options.maxLen = hasMax ? intField(o, "maxLength", "options") : 2 * srcLen + 10;
    options.beamWidth = has(o, "beamWidth") ? intField(o, "beamWidth", "options") : 1;
    options.lengthPenalty = optionalNumber(o, "lengthPenalty", 0.0);
    options.wantAttention = optionalBool(o, "attention", true);
  }
  void run(Seq2Seq& m) { out = m.decode(src, batch, srcLen, lengths, options); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", toInt32Array(env, out.tokens));
    o.Set("shape", toShape(env, {out.batch, out.steps}));
    o.Set("lengths", toInt32Array(env, out.lengths));
    o.Set("scores", toFloat32Array(env, out.scores));
    if (out.attention.empty()) o.Set("attention", env.Null());
    else o.Set("attention", toTensor(env, out.attention, {out.batch, out.steps, out.srcLen}));
    return o;
  }

  std::vector<int32_t> src, lengths;
  int batch = 0, srcLen = 0;
  DecodeOptions options;
  DecodeResult out;
};

}  // namespace

const napi_type_tag Seq2SeqHandle::kTypeTag = {0x3f9a61c2d84e7b15ULL, 0xa2c7e4f1963b5d08ULL};

Napi::Function Seq2SeqHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Seq2Seq", {});
  defineMethods(env, ctor, {
      {"dispose", dispatchAlways<&Seq2SeqHandle::Dispose>},
      {"isDisposed", dispatchAlways<&Seq2SeqHandle::IsDisposed>},
      {"spec", dispatchReading<&Seq2SeqHandle::Spec>},
      {"paramNames", dispatchReading<&Seq2SeqHandle::ParamNames>},
      {"paramShape", dispatchReading<&Seq2SeqHandle::ParamShape>},
      {"getParam", dispatchReading<&Seq2SeqHandle::GetParam>},
      {"setParam", dispatchReading<&Seq2SeqHandle::SetParam>},
      {"getGrad", dispatchReading<&Seq2SeqHandle::GetGrad>},
      {"zeroGrad", dispatchReading<&Seq2SeqHandle::ZeroGrad>},
      {"gradNorm", dispatchReading<&Seq2SeqHandle::GradNorm>},
      {"clipGradNorm", dispatchReading<&Seq2SeqHandle::ClipGradNorm>},
      {"setOptimizer", dispatchReading<&Seq2SeqHandle::SetOptimizer>},
      {"step", dispatchReading<&Seq2SeqHandle::Step>},
      {"forward", dispatchJob<Seq2SeqHandle, S2sForwardJob>},
      {"forwardSync", dispatchJobSync<Seq2SeqHandle, S2sForwardJob>},
      {"lossSync", dispatchReading<&Seq2SeqHandle::LossSync>},
      {"evaluate", dispatchJob<Seq2SeqHandle, S2sEvaluateJob>},
      {"evaluateSync", dispatchJobSync<Seq2SeqHandle, S2sEvaluateJob>},
      {"trainStep", dispatchJob<Seq2SeqHandle, S2sTrainStepJob>},
      {"trainStepSync", dispatchJobSync<Seq2SeqHandle, S2sTrainStepJob>},
      {"decode", dispatchJob<Seq2SeqHandle, S2sDecodeJob>},
      {"decodeSync", dispatchJobSync<Seq2SeqHandle, S2sDecodeJob>},
      {"beginDecode", dispatchReading<&Seq2SeqHandle::BeginDecode>},
  });
  return ctor;
}

Seq2SeqHandle::Seq2SeqHandle(const Napi::CallbackInfo& info) : ModelHandle(info) {
  guard(info.Env(), [&] {
    Napi::Value a = argAt(info, 0);
    Seq2SeqSpec spec = parseSpec(a);
    std::shared_ptr<Backend> backend = backendForSpec(a);
    own(info, backend, std::make_unique<Seq2Seq>(*backend, spec));
    return info.Env().Undefined();
  });
}

Napi::Value Seq2SeqHandle::Spec(const Napi::CallbackInfo& info) {
  const Seq2SeqSpec& s = model_->spec();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cell", cellName(s.cell));
  o.Set("attention", attentionName(s.attention));
  o.Set("srcVocab", s.srcVocab);
  o.Set("tgtVocab", s.tgtVocab);
  o.Set("embedSize", s.embedSize);
  o.Set("hiddenSize", s.hiddenSize);
  o.Set("numLayers", s.numLayers);
  return o;
}

Napi::Value Seq2SeqHandle::ClipGradNorm(const Napi::CallbackInfo& info) {
  Napi::Value v = argAt(info, 0);
  if (!v.IsNumber()) fail(ErrorCode::Type, "clipGradNorm needs a number");
  return Napi::Number::New(info.Env(), model_->clipGradNorm(v.As<Napi::Number>().DoubleValue()));
}


Napi::Value Seq2SeqHandle::LossSync(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), model_->lossBackward());
}

Napi::Value Seq2SeqHandle::BeginDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rows = 0, steps = 0;
  std::vector<int32_t> src = readIds(argAt(info, 0), "source", &rows, &steps);
  std::vector<int32_t> lengths;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = requireObject(info[1], "options");
    checkOptionNames(o, "beginDecode options", {"sourceLengths"});
    lengths = optionalIds(o, "sourceLengths", "options.sourceLengths");
  }
  std::unique_ptr<DecoderState> state = model_->beginDecode(src, rows, steps, lengths);
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!data || data->decoderConstructor.IsEmpty()) fail(ErrorCode::Internal, "the Decoder class is not registered");
  Napi::Object dec = data->decoderConstructor.Value().New({});
  DecoderHandle::Unwrap(dec)->attach(info.This().As<Napi::Object>(), backend_, std::move(state), rows, steps);
  return dec;
}

// ---- DecoderHandle ----

Napi::Function DecoderHandle::define(Napi::Env env) {
  return DefineClass(env, "Decoder",
                     {InstanceMethod<&DecoderHandle::Step>("step"), InstanceMethod<&DecoderHandle::Dispose>("dispose"),
                      InstanceMethod<&DecoderHandle::Rows>("rows")});
}

DecoderHandle::DecoderHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DecoderHandle>(info) {
  info.This().As<Napi::Object>().TypeTag(&kDecoderTag);
}

void DecoderHandle::attach(Napi::Object model, std::shared_ptr<Backend> backend, std::unique_ptr<DecoderState> state,
                           int rows, int srcLen) {
  model_ = Napi::Persistent(model);
  backend_ = std::move(backend);
  state_ = std::move(state);
  rows_ = rows;
  srcLen_ = srcLen;
}

Napi::Value DecoderHandle::Rows(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rows_); }

Napi::Value DecoderHandle::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();
  backend_.reset();
  model_.Reset();
  return info.Env().Undefined();
}

Napi::Value DecoderHandle::Step(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info.This().IsObject() || !info.This().As<Napi::Object>().CheckTypeTag(&kDecoderTag))
      fail(ErrorCode::Type, "the receiver of step must be a Decoder");
    if (!state_) fail(ErrorCode::Disposed, "this decoder has been disposed");
    Seq2SeqHandle* model = Seq2SeqHandle::fromObject(model_.Value(), "the decoder's model");
    // A synchronous call on the model (a stream's stepSync): refused with ERR_RNNKIT_BUSY while a Promise call runs
    // on it; the tokens are read under the model's call protocol, so a getter that disposes the model or this
    // decoder, or steps again, cannot free or change the state this step uses.
    model->checkUsable();
    Seq2SeqHandle::Reading reading(*model);
    std::vector<int32_t> tokens = readInt32(argAt(info, 0), "tokens");
    if (model->disposed()) fail(ErrorCode::Disposed, "this seq2seq model has been disposed (while the step read its tokens)");
    if (!state_) fail(ErrorCode::Disposed, "this decoder has been disposed (while the step read its tokens)");
    std::vector<float> logits, attention;
    model->model().decodeStep(*state_, tokens, &logits, &attention);
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("logits", toTensor(env, logits, {rows_, model->model().spec().tgtVocab}));
    if (attention.empty()) o.Set("attention", env.Null());
    else o.Set("attention", toTensor(env, attention, {rows_, srcLen_}));
    return o;
  });
}

}  // namespace rnnkit::addon
