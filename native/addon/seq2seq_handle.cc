#include "seq2seq_handle.h"

#include <cmath>

#include "../core/error.h"
#include "../cpu/thread_priority.h"
#include "addon_data.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kSeq2SeqTag = {0x3f9a61c2d84e7b15ULL, 0xa2c7e4f1963b5d08ULL};
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

struct S2sForwardJob {
  Seq2SeqBatch batch;
  bool train = false;
  Seq2SeqForward out;
  void run(Seq2Seq& m) { out = m.forward(batch, train); }
  Napi::Value toJs(Napi::Env env, const Seq2Seq& m) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("logits", toTensor(env, out.logits, {batch.batch, batch.tgtLen, m.spec().tgtVocab}));
    if (out.attention.empty()) o.Set("attention", env.Null());
    else o.Set("attention", toTensor(env, out.attention, {batch.batch, batch.tgtLen, batch.srcLen}));
    return o;
  }
};

struct S2sEvaluateJob {
  Seq2SeqBatch batch;
  double loss = 0;
  int counted = 0;
  void run(Seq2Seq& m) { loss = m.evaluate(batch, &counted); }
  Napi::Value toJs(Napi::Env env, const Seq2Seq&) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    o.Set("counted", counted);
    return o;
  }
};

struct S2sTrainStepJob {
  Seq2SeqBatch batch;
  double clipNorm = 0;
  double loss = 0;
  void run(Seq2Seq& m) { loss = m.trainStep(batch, clipNorm); }
  Napi::Value toJs(Napi::Env env, const Seq2Seq&) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", loss);
    return o;
  }
};

struct S2sDecodeJob {
  std::vector<int32_t> src, lengths;
  int batch = 0, srcLen = 0;
  DecodeOptions options;
  DecodeResult out;
  void run(Seq2Seq& m) { out = m.decode(src, batch, srcLen, lengths, options); }
  Napi::Value toJs(Napi::Env env, const Seq2Seq&) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", toInt32Array(env, out.tokens));
    o.Set("shape", toShape(env, {out.batch, out.steps}));
    o.Set("lengths", toInt32Array(env, out.lengths));
    o.Set("scores", toFloat32Array(env, out.scores));
    if (out.attention.empty()) o.Set("attention", env.Null());
    else o.Set("attention", toTensor(env, out.attention, {out.batch, out.steps, out.srcLen}));
    return o;
  }
};

template <typename Job>
class Seq2SeqWorker final : public Napi::AsyncWorker, public QueuedCall {
 public:
  Seq2SeqWorker(Napi::Env env, Seq2SeqHandle* handle, Napi::Object self, Job job)
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
  // Never started: reject and free (the AsyncWorker deletes itself only after it ran).
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
    // Converted before endCall: a dispose() that came while the call ran frees the model there.
    convertError.capture([&] { result = job_.toJs(env, handle_->model()); });
    // Settled before endCall (which starts the next queued call, or rejects them after dispose()): callers see their
    // calls settle in call order.
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
  Seq2SeqHandle* handle_;
  Napi::ObjectReference self_;
  Job job_;
  CapturedError error_;
};

template <typename Job>
Job makeJob(const Napi::CallbackInfo& info);

template <>
S2sForwardJob makeJob<S2sForwardJob>(const Napi::CallbackInfo& info) {
  S2sForwardJob j;
  j.batch = parseBatch(argAt(info, 0));
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = requireObject(info[1], "options");
    checkOptionNames(o, "forward options", {"train"});
    j.train = optionalBool(o, "train", false);
  }
  return j;
}

template <>
S2sEvaluateJob makeJob<S2sEvaluateJob>(const Napi::CallbackInfo& info) {
  S2sEvaluateJob j;
  j.batch = parseBatch(argAt(info, 0));
  if (j.batch.targets.empty()) fail(ErrorCode::Argument, "evaluate: batch.targets is required");
  return j;
}

template <>
S2sTrainStepJob makeJob<S2sTrainStepJob>(const Napi::CallbackInfo& info) {
  S2sTrainStepJob j;
  j.batch = parseBatch(argAt(info, 0));
  if (j.batch.targets.empty()) fail(ErrorCode::Argument, "trainStep: batch.targets is required");
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = requireObject(info[1], "options");
    checkOptionNames(o, "trainStep options", {"clipNorm"});
    j.clipNorm = optionalNumber(o, "clipNorm", 0);
    if (!(j.clipNorm >= 0) || !std::isfinite(j.clipNorm))
      fail(ErrorCode::Value, "trainStep: options.clipNorm must be a finite number >= 0 (0: no clipping)");
  }
  return j;
}

template <>
S2sDecodeJob makeJob<S2sDecodeJob>(const Napi::CallbackInfo& info) {
  S2sDecodeJob j;
  j.src = readIds(argAt(info, 0), "source", &j.batch, &j.srcLen);
  Napi::Object o = requireObject(argAt(info, 1), "decode options");
  checkOptionNames(o, "decode options",
                   {"startToken", "endToken", "maxLength", "beamWidth", "lengthPenalty", "sourceLengths", "attention"});
  j.lengths = optionalIds(o, "sourceLengths", "options.sourceLengths");
  if (!has(o, "startToken")) fail(ErrorCode::Argument, "decoder: options.startToken is required");
  const bool hasEnd = has(o, "endToken") && !o.Get("endToken").IsUndefined();
  const bool hasMax = has(o, "maxLength") && !o.Get("maxLength").IsUndefined();
  // Something must end the decoding: the end token, a length, or both.
  if (!hasEnd && !hasMax)
    fail(ErrorCode::Argument, "decoder: give options.endToken (the token that ends a row) or options.maxLength, or both");
  j.options.sos = intField(o, "startToken", "options");
  j.options.eos = hasEnd ? intField(o, "endToken", "options") : -1;
  if (hasEnd && j.options.eos < 0)
    fail(ErrorCode::Value, "decoder: options.endToken must be a token id >= 0 (leave it out for none)");
  // Without a length, a row may run to twice its source plus 10 tokens (then stops, as if it had ended).
  j.options.maxLen = hasMax ? intField(o, "maxLength", "options") : 2 * j.srcLen + 10;
  j.options.beamWidth = has(o, "beamWidth") ? intField(o, "beamWidth", "options") : 1;
  j.options.lengthPenalty = optionalNumber(o, "lengthPenalty", 0.0);
  j.options.wantAttention = optionalBool(o, "attention", true);
  return j;
}

}  // namespace

Napi::Function Seq2SeqHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Seq2Seq", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry methods[] = {
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
      {"forward", dispatchPromise<&Seq2SeqHandle::Forward>},
      {"forwardSync", dispatchReading<&Seq2SeqHandle::ForwardSync>},
      {"lossSync", dispatchReading<&Seq2SeqHandle::LossSync>},
      {"evaluate", dispatchPromise<&Seq2SeqHandle::Evaluate>},
      {"evaluateSync", dispatchReading<&Seq2SeqHandle::EvaluateSync>},
      {"trainStep", dispatchPromise<&Seq2SeqHandle::TrainStep>},
      {"trainStepSync", dispatchReading<&Seq2SeqHandle::TrainStepSync>},
      {"decode", dispatchPromise<&Seq2SeqHandle::Decode>},
      {"decodeSync", dispatchReading<&Seq2SeqHandle::DecodeSync>},
      {"beginDecode", dispatchReading<&Seq2SeqHandle::BeginDecode>},
  };
  for (const Entry& m : methods) proto.Set(m.name, Napi::Function::New(env, m.fn, m.name));
  return ctor;
}

Seq2SeqHandle::Seq2SeqHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Seq2SeqHandle>(info) {
  guard(info.Env(), [&] {
    Napi::Value a = argAt(info, 0);
    Seq2SeqSpec spec = parseSpec(a);
    backend_ = backendForSpec(a);
    model_ = std::make_unique<Seq2Seq>(*backend_, spec);
    info.This().As<Napi::Object>().TypeTag(&kSeq2SeqTag);
    reportMemory();
    return info.Env().Undefined();
  });
}

Seq2SeqHandle::~Seq2SeqHandle() { releaseNative(); }

Seq2SeqHandle* Seq2SeqHandle::fromObject(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kSeq2SeqTag))
    fail(ErrorCode::Type, std::string(what) + " must be a Seq2Seq model");
  return Unwrap(value.As<Napi::Object>());
}

void Seq2SeqHandle::checkOpen() const {
  if (disposed_ || !model_) fail(ErrorCode::Disposed, "this seq2seq model has been disposed");
  if (reading_)
    fail(ErrorCode::Busy, "this seq2seq model is reading the arguments of another call (a getter or Proxy trap called it)");
}

void Seq2SeqHandle::checkUsable() const {
  if (disposed_ || !model_) fail(ErrorCode::Disposed, "this seq2seq model has been disposed");
  if (calls_.running()) fail(ErrorCode::Busy, "this seq2seq model is running another call; await it before starting the next one");
}

Seq2SeqHandle::Reading::Reading(Seq2SeqHandle& h) : h_(h) {
  if (h_.reading_)
    fail(ErrorCode::Busy, "this seq2seq model is reading the arguments of another call (a getter or Proxy trap called it)");
  h_.reading_ = true;
}

Seq2SeqHandle::Reading::~Reading() {
  h_.reading_ = false;
  if (h_.disposed_ && !h_.calls_.running()) h_.releaseNative();  // dispose() came from a getter during the call
}

void Seq2SeqHandle::endCall() {
  if (disposed_) {
    releaseNative();  // dispose() came while the call ran
    calls_.cancelWaiting(ErrorCode::Disposed, "this seq2seq model has been disposed (before this queued call ran)");
    return;
  }
  reportMemory();  // before the next call starts to use the model on another thread
  calls_.startNext();
}

void Seq2SeqHandle::releaseNative() {
  if (!model_) return;
  model_.reset();
  backend_.reset();
  if (reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -reportedBytes_);
    reportedBytes_ = 0;
  }
}

void Seq2SeqHandle::reportMemory() {
  if (!model_) return;
  const int64_t bytes = (int64_t)model_->memoryBytes();
  if (bytes != reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), bytes - reportedBytes_);
    reportedBytes_ = bytes;
  }
}

template <typename Job>
Napi::Value Seq2SeqHandle::run(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (!async) {
    checkUsable();
    Job job = makeJob<Job>(info);  // under dispatch's Reading scope
    if (disposed_) fail(ErrorCode::Disposed, "this seq2seq model has been disposed (while the call read its arguments)");
    job.run(*model_);
    reportMemory();
    return job.toJs(env, *model_);
  }
  return rejectOnThrow(env, [&]() -> Napi::Value {
    checkOpen();  // a call made while another runs waits in the queue
    Seq2SeqWorker<Job>* worker;
    {
      Reading reading(*this);
      Job job = makeJob<Job>(info);
      if (disposed_) fail(ErrorCode::Disposed, "this seq2seq model has been disposed (while the call read its arguments)");
      worker = new Seq2SeqWorker<Job>(env, this, info.This().As<Napi::Object>(), std::move(job));
    }
    Napi::Promise promise = worker->promise();
    calls_.submit(worker);  // the worker deletes itself once settled
    return promise;
  });
}

Napi::Value Seq2SeqHandle::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) {
    disposed_ = true;
    // Calls waiting in the queue are refused when the running call settles (endCall), after it.
    if (!calls_.running() && !reading_) releaseNative();
  }
  return info.Env().Undefined();
}

Napi::Value Seq2SeqHandle::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value Seq2SeqHandle::Spec(const Napi::CallbackInfo& info) {
  checkUsable();
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

Napi::Value Seq2SeqHandle::ParamNames(const Napi::CallbackInfo& info) {
  checkUsable();
  const auto& entries = model_->layout().entries();
  Napi::Array a = Napi::Array::New(info.Env(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) a.Set((uint32_t)i, entries[i].name);
  return a;
}

Napi::Value Seq2SeqHandle::ParamShape(const Napi::CallbackInfo& info) {
  checkUsable();
  const ParamEntry& e = model_->layout().at(argString(info, 0, "name"));
  std::vector<long long> shape(e.shape.begin(), e.shape.end());
  return toShape(info.Env(), shape);
}

Napi::Value Seq2SeqHandle::GetParam(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  const ParamEntry& e = model_->layout().at(name);
  return toTensor(info.Env(), model_->getParam(name), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value Seq2SeqHandle::GetGrad(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  const ParamEntry& e = model_->layout().at(name);
  return toTensor(info.Env(), model_->getGrad(name), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value Seq2SeqHandle::SetParam(const Napi::CallbackInfo& info) {
  checkUsable();
  const std::string name = argString(info, 0, "name");
  model_->layout().at(name);
  std::vector<float> data = readFloat32(argAt(info, 1), name);
  model_->setParam(name, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value Seq2SeqHandle::ZeroGrad(const Napi::CallbackInfo& info) {
  checkUsable();
  model_->zeroGrad();
  return info.Env().Undefined();
}

Napi::Value Seq2SeqHandle::GradNorm(const Napi::CallbackInfo& info) {
  checkUsable();
  return Napi::Number::New(info.Env(), model_->gradNorm());
}

Napi::Value Seq2SeqHandle::ClipGradNorm(const Napi::CallbackInfo& info) {
  checkUsable();
  Napi::Value v = argAt(info, 0);
  if (!v.IsNumber()) fail(ErrorCode::Type, "clipGradNorm needs a number");
  return Napi::Number::New(info.Env(), model_->clipGradNorm(v.As<Napi::Number>().DoubleValue()));
}

Napi::Value Seq2SeqHandle::SetOptimizer(const Napi::CallbackInfo& info) {
  checkUsable();
  model_->setOptimizer(parseOptimizerConfig(argAt(info, 0)));
  reportMemory();
  return info.Env().Undefined();
}

Napi::Value Seq2SeqHandle::Step(const Napi::CallbackInfo& info) {
  checkUsable();
  model_->optimizerStep();
  return info.Env().Undefined();
}

Napi::Value Seq2SeqHandle::Forward(const Napi::CallbackInfo& info) { return run<S2sForwardJob>(info, true); }
Napi::Value Seq2SeqHandle::ForwardSync(const Napi::CallbackInfo& info) { return run<S2sForwardJob>(info, false); }
Napi::Value Seq2SeqHandle::Evaluate(const Napi::CallbackInfo& info) { return run<S2sEvaluateJob>(info, true); }
Napi::Value Seq2SeqHandle::EvaluateSync(const Napi::CallbackInfo& info) { return run<S2sEvaluateJob>(info, false); }
Napi::Value Seq2SeqHandle::TrainStep(const Napi::CallbackInfo& info) { return run<S2sTrainStepJob>(info, true); }
Napi::Value Seq2SeqHandle::TrainStepSync(const Napi::CallbackInfo& info) { return run<S2sTrainStepJob>(info, false); }
Napi::Value Seq2SeqHandle::Decode(const Napi::CallbackInfo& info) { return run<S2sDecodeJob>(info, true); }
Napi::Value Seq2SeqHandle::DecodeSync(const Napi::CallbackInfo& info) { return run<S2sDecodeJob>(info, false); }

Napi::Value Seq2SeqHandle::LossSync(const Napi::CallbackInfo& info) {
  checkUsable();
  return Napi::Number::New(info.Env(), model_->lossBackward());
}

Napi::Value Seq2SeqHandle::BeginDecode(const Napi::CallbackInfo& info) {
  checkUsable();
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
