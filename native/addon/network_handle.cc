#include "network_handle.h"

#include "../core/error.h"
#include "addon_data.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"
#include "network_worker.h"

namespace rnnkit::addon {

namespace {

// Distinguishes our wrapped objects from any other object, including other addons' wrapped objects.
const napi_type_tag kNetworkTag = {0x7a1c3e5b9d2f4a60ULL, 0x8b4d6f1e3c5a7092ULL};

// A method that reads or changes the network: it runs as one synchronous call (see NetworkHandle::SyncCall). The
// methods themselves do not call checkUsable(): inside the call the handle is marked busy.
template <Napi::Value (NetworkHandle::*Method)(const Napi::CallbackInfo&)>
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    NetworkHandle* self = NetworkHandle::fromThis(info);
    self->checkUsable();
    NetworkHandle::SyncCall call(*self);
    return (self->*Method)(info);
  });
}

}  // namespace

Napi::Function NetworkHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Network", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry methods[] = {
      {"dispose", dispatchAlways<&NetworkHandle::Dispose>},
      {"isDisposed", dispatchAlways<&NetworkHandle::IsDisposed>},
      {"spec", dispatch<&NetworkHandle::Spec>},
      {"paramNames", dispatch<&NetworkHandle::ParamNames>},
      {"paramShape", dispatch<&NetworkHandle::ParamShape>},
      {"getParam", dispatch<&NetworkHandle::GetParam>},
      {"setParam", dispatch<&NetworkHandle::SetParam>},
      {"getGrad", dispatch<&NetworkHandle::GetGrad>},
      {"zeroGrad", dispatch<&NetworkHandle::ZeroGrad>},
      {"gradNorm", dispatch<&NetworkHandle::GradNorm>},
      {"clipGradNorm", dispatch<&NetworkHandle::ClipGradNorm>},
      {"setOptimizer", dispatch<&NetworkHandle::SetOptimizer>},
      {"optimizerInfo", dispatch<&NetworkHandle::OptimizerInfo>},
      {"step", dispatch<&NetworkHandle::Step>},
      {"getOptimizerState", dispatch<&NetworkHandle::GetOptimizerState>},
      {"setOptimizerState", dispatch<&NetworkHandle::SetOptimizerState>},
      {"memoryBytes", dispatch<&NetworkHandle::MemoryBytes>},
      {"forward", dispatchPromise<&NetworkHandle::Forward>},
      {"forwardSync", dispatchAlways<&NetworkHandle::ForwardSync>},
      {"backward", dispatchPromise<&NetworkHandle::Backward>},
      {"backwardSync", dispatchAlways<&NetworkHandle::BackwardSync>},
      {"loss", dispatchPromise<&NetworkHandle::Loss>},
      {"lossSync", dispatchAlways<&NetworkHandle::LossSync>},
      {"trainStep", dispatchPromise<&NetworkHandle::TrainStep>},
      {"trainStepSync", dispatchAlways<&NetworkHandle::TrainStepSync>},
      {"resetState", dispatch<&NetworkHandle::ResetState>},
      {"checkInput", dispatch<&NetworkHandle::CheckInput>},
      {"evaluate", dispatchPromise<&NetworkHandle::Evaluate>},
      {"evaluateSync", dispatchAlways<&NetworkHandle::EvaluateSync>},
      {"getRandomState", dispatch<&NetworkHandle::GetRandomState>},
      {"setRandomState", dispatch<&NetworkHandle::SetRandomState>},
      {"setInferencePrecision", dispatch<&NetworkHandle::SetInferencePrecision>},
      {"inferencePrecision", dispatch<&NetworkHandle::InferencePrecision>},
  };
  for (const Entry& m : methods) proto.Set(m.name, Napi::Function::New(env, m.fn, m.name));
  return ctor;
}

NetworkHandle::NetworkHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetworkHandle>(info) {
  guard(info.Env(), [&] {
    Napi::Value arg = info.Length() > 0 ? info[0] : info.Env().Undefined();
    // The spec is checked before the device is opened: a bad spec reports the same error on every device.
    if (arg.IsObject() && has(arg.As<Napi::Object>(), "layers")) {
      ModelSpec spec = parseModelSpec(arg);
      backend_ = backendForSpec(arg);
      network_ = std::make_unique<Network>(*backend_, spec);
    } else {
      NetworkSpec spec = parseNetworkSpec(arg);
      backend_ = backendForSpec(arg);
      network_ = std::make_unique<Network>(*backend_, spec);
    }
    info.This().As<Napi::Object>().TypeTag(&kNetworkTag);
    reportMemory();
    return info.Env().Undefined();
  });
}

NetworkHandle::~NetworkHandle() { releaseNative(); }

Napi::Value ModelParameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    Napi::Env env = info.Env();
    const ParamLayout layout = Network::layoutOf(cpuBackend(), parseModelSpec(info.Length() > 0 ? info[0] : env.Undefined()));
    Napi::Array out = Napi::Array::New(env, layout.entries().size());
    for (std::size_t i = 0; i < layout.entries().size(); ++i) {
      const ParamEntry& e = layout.entries()[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, e.name));
      o.Set("shape", toShape(env, std::vector<long long>(e.shape.begin(), e.shape.end())));
      out.Set((uint32_t)i, o);
    }
    return out;
  });
}

NetworkHandle* NetworkHandle::fromThis(const Napi::CallbackInfo& info) {
  return fromObject(info.This(), "the receiver of this method");
}

NetworkHandle* NetworkHandle::fromObject(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kNetworkTag))
    fail(ErrorCode::Type, std::string(what) + " must be a Network");
  return Unwrap(value.As<Napi::Object>());
}

void NetworkHandle::checkOpen() const {
  if (disposed_ || !network_) fail(ErrorCode::Disposed, "this network has been disposed");
  if (reading_)
    fail(ErrorCode::Busy, "this network is reading the arguments of another call (a getter or Proxy trap called it)");
}

void NetworkHandle::checkUsable() const {
  checkOpen();
  if (calls_.running())
    fail(ErrorCode::Busy, "this network is running another call; await it before starting the next one");
}

NetworkHandle::SyncCall::SyncCall(NetworkHandle& h) : h_(h) {
  h_.calls_.markRunning(true);
  h_.reading_ = true;  // a synchronous method reads its arguments as it goes
}

NetworkHandle::SyncCall::~SyncCall() {
  h_.calls_.markRunning(false);
  h_.reading_ = false;
  if (h_.disposed_) h_.releaseNative();  // dispose() came from a getter during the call
  else h_.reportMemory();
}

void NetworkHandle::endCall() {
  if (disposed_) {
    releaseNative();  // dispose() came while the call ran
    calls_.cancelWaiting(ErrorCode::Disposed, "this network has been disposed (before this queued call ran)");
    return;
  }
  reportMemory();  // before the next call starts to use the network on another thread
  calls_.startNext();
}

void NetworkHandle::releaseNative() {
  if (!network_) return;
  network_.reset();
  backend_.reset();  // after the network, whose buffers it frees (a Stream may keep it a little longer)
  if (reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -reportedBytes_);
    reportedBytes_ = 0;
  }
}

void NetworkHandle::reportMemory() {
  if (!network_) return;
  int64_t bytes = (int64_t)network_->memoryBytes();
  if (bytes != reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), bytes - reportedBytes_);
    reportedBytes_ = bytes;
  }
}

Napi::Value NetworkHandle::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) {
    disposed_ = true;
    // Calls waiting in the queue are refused when the running call settles (endCall), after it: refusing them here
    // would reject Promises their callers have not had a chance to handle yet.
    if (!calls_.running() && !reading_) releaseNative();
  }
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

Napi::Value NetworkHandle::Spec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!network_->networkSpec()) {
    const ModelSpec& m = network_->modelSpec();
    if (m.inputSize) o.Set("inputSize", m.inputSize);
    if (m.vocabSize) o.Set("vocabSize", m.vocabSize);
    Napi::Array layers = Napi::Array::New(env, m.stages.size());
    for (std::size_t i = 0; i < m.stages.size(); ++i) {
      const StageSpec& st = m.stages[i];
      Napi::Object l = Napi::Object::New(env);
      l.Set("name", st.prefix.substr(0, st.prefix.size() - 1));
      switch (st.kind) {
        case StageKind::Embedding:
          l.Set("type", "embedding");
          l.Set("outputDim", st.embeddingDim);
          break;
        case StageKind::Recurrent:
          l.Set("type", "recurrent");
          l.Set("cell", cellName(st.cell));
          l.Set("hiddenSize", st.hiddenSize);
          l.Set("numLayers", st.numLayers);
          l.Set("bidirectional", st.bidirectional);
          if (st.cell == CellKind::Gru) l.Set("resetAfter", st.resetAfter);
          if (hasGates(st.cell)) l.Set("gateActivation", gateActivationName(st.gateActivation));
          l.Set("merge", mergeModeName(st.merge));
          l.Set("returnSequences", st.returnSequences);
          l.Set("goBackwards", st.goBackwards);
          l.Set("dropout", st.interLayerDropout);
          break;
        case StageKind::Dense:
          l.Set("type", "dense");
          l.Set("units", st.units);
          l.Set("activation", activationName(st.activation));
          break;
        case StageKind::Dropout:
          l.Set("type", "dropout");
          l.Set("rate", st.rate);
          break;
      }
      layers.Set((uint32_t)i, l);
    }
    o.Set("layers", layers);
    return o;
  }
  const NetworkSpec& s = *network_->networkSpec();
  o.Set("cell", cellName(s.cell));
  if (s.inputSize) o.Set("inputSize", s.inputSize);
  if (s.vocabSize) o.Set("vocabSize", s.vocabSize);
  o.Set("hiddenSize", s.hiddenSize);
  o.Set("numLayers", s.numLayers);
  o.Set("bidirectional", s.bidirectional);
  if (s.cell == CellKind::Gru) o.Set("resetAfter", s.resetAfter);
  if (hasGates(s.cell)) o.Set("gateActivation", gateActivationName(s.gateActivation));
  o.Set("headSize", s.headSize);
  return o;
}

Napi::Value NetworkHandle::ParamNames(const Napi::CallbackInfo& info) {
  const auto& entries = network_->layout().entries();
  Napi::Array arr = Napi::Array::New(info.Env(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) arr.Set((uint32_t)i, entries[i].name);
  return arr;
}

Napi::Value NetworkHandle::ParamShape(const Napi::CallbackInfo& info) {
  const ParamEntry& e = network_->layout().at(argString(info, 0, "name"));
  return toShape(info.Env(), std::vector<long long>(e.shape.begin(), e.shape.end()));
}

Napi::Value NetworkHandle::GetParam(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), network_->getParam(argString(info, 0, "name")));
}

Napi::Value NetworkHandle::SetParam(const Napi::CallbackInfo& info) {
  std::string name = argString(info, 0, "name");
  network_->layout().at(name);  // unknown names first, before the value's type
  std::vector<float> data = readFloat32(info.Length() > 1 ? info[1] : info.Env().Undefined(), "value of " + name);
  network_->setParam(name, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::GetGrad(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), network_->getGrad(argString(info, 0, "name")));
}

// setInferencePrecision('float32' | 'int8'): the precision of the recurrent products of inference calls (forward
// without training, predict, streams). Training always runs in float32.
Napi::Value NetworkHandle::SetInferencePrecision(const Napi::CallbackInfo& info) {
  const std::string p = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (p != "float32" && p != "int8") fail(ErrorCode::Value, "the inference precision must be 'float32' or 'int8'");
  network_->setInt8Inference(p == "int8");
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::InferencePrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), network_->int8Inference() ? "int8" : "float32");
}

Napi::Value NetworkHandle::ZeroGrad(const Napi::CallbackInfo& info) {
  network_->zeroGrad();
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::GradNorm(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), network_->gradNorm());
}

Napi::Value NetworkHandle::ClipGradNorm(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) fail(ErrorCode::Type, "maxNorm must be a number");
  return Napi::Number::New(info.Env(), network_->clipGradNorm(info[0].As<Napi::Number>().DoubleValue()));
}

Napi::Value NetworkHandle::SetOptimizer(const Napi::CallbackInfo& info) {
  network_->setOptimizer(parseOptimizerConfig(info.Length() > 0 ? info[0] : info.Env().Undefined()));
  reportMemory();
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::OptimizerInfo(const Napi::CallbackInfo& info) {
  Optimizer* opt = network_->optimizer();
  if (!opt) return info.Env().Null();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const OptimizerConfig& c = opt->config();
  o.Set("type", optimizerKindName(c.kind));
  o.Set("lr", c.lr);
  o.Set("steps", (double)opt->steps());
  std::vector<std::string> names = opt->stateNames();
  Napi::Array slots = Napi::Array::New(env, names.size());
  for (std::size_t i = 0; i < names.size(); ++i) slots.Set((uint32_t)i, names[i]);
  o.Set("stateSlots", slots);
  return o;
}

Napi::Value NetworkHandle::Step(const Napi::CallbackInfo& info) {
  network_->optimizerStep();
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::GetOptimizerState(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), network_->getOptimizerState(argString(info, 0, "slot")));
}

Napi::Value NetworkHandle::SetOptimizerState(const Napi::CallbackInfo& info) {
  std::string slot = argString(info, 0, "slot");
  if (slot == "steps") {
    if (info.Length() < 2 || !info[1].IsNumber()) fail(ErrorCode::Type, "steps must be a number");
    double steps = info[1].As<Napi::Number>().DoubleValue();
    if (!(steps >= 0) || steps > 9007199254740991.0) fail(ErrorCode::Value, "steps must be a non-negative integer");
    if (!network_->optimizer()) fail(ErrorCode::State, "no optimizer is set");
    network_->optimizer()->setSteps((long long)steps);
    return info.Env().Undefined();
  }
  if (network_->optimizer()) network_->optimizer()->stateSlot(slot);  // unknown slots first, before the value's size
  std::vector<float> data = readFloat32(info.Length() > 1 ? info[1] : info.Env().Undefined(), slot);
  network_->setOptimizerState(slot, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::ResetState(const Napi::CallbackInfo& info) {
  network_->carriedState().batch = 0;
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::CheckInput(const Napi::CallbackInfo& info) {
  const int vocabSize = network_->vocabSize();
  network_->validateInput(parseSequenceInput(info.Length() > 0 ? info[0] : info.Env().Undefined(), vocabSize));
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::Evaluate(const Napi::CallbackInfo& info) { return runJob<EvaluateJob>(info, true); }
Napi::Value NetworkHandle::EvaluateSync(const Napi::CallbackInfo& info) { return runJob<EvaluateJob>(info, false); }

Napi::Value NetworkHandle::GetRandomState(const Napi::CallbackInfo& info) {
  std::vector<uint32_t> s = network_->randomState();
  Napi::Array arr = Napi::Array::New(info.Env(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) arr.Set((uint32_t)i, Napi::Number::New(info.Env(), s[i]));
  return arr;
}

Napi::Value NetworkHandle::SetRandomState(const Napi::CallbackInfo& info) {
  std::vector<int32_t> v = readInt32(info.Length() > 0 ? info[0] : info.Env().Undefined(), "random state");
  if (v.size() != 4) fail(ErrorCode::Value, "a random state has 4 integers");
  std::vector<uint32_t> s(v.begin(), v.end());
  network_->setRandomState(s);
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::MemoryBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)network_->memoryBytes());
}

template <typename Job>
Napi::Value NetworkHandle::runJob(const Napi::CallbackInfo& info, bool async) {
  return run<Job>(info.Env(), async, info.This().As<Napi::Object>(), [&] { return Job(info, *network_); });
}

Napi::Value NetworkHandle::Forward(const Napi::CallbackInfo& info) { return runJob<ForwardJob>(info, true); }
Napi::Value NetworkHandle::ForwardSync(const Napi::CallbackInfo& info) { return runJob<ForwardJob>(info, false); }
Napi::Value NetworkHandle::Backward(const Napi::CallbackInfo& info) { return runJob<BackwardJob>(info, true); }
Napi::Value NetworkHandle::BackwardSync(const Napi::CallbackInfo& info) { return runJob<BackwardJob>(info, false); }
Napi::Value NetworkHandle::Loss(const Napi::CallbackInfo& info) { return runJob<LossJob>(info, true); }
Napi::Value NetworkHandle::LossSync(const Napi::CallbackInfo& info) { return runJob<LossJob>(info, false); }
Napi::Value NetworkHandle::TrainStep(const Napi::CallbackInfo& info) { return runJob<TrainStepJob>(info, true); }
Napi::Value NetworkHandle::TrainStepSync(const Napi::CallbackInfo& info) { return runJob<TrainStepJob>(info, false); }

}  // namespace rnnkit::addon
