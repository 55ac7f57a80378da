#include "network_handle.h"

#include "../core/error.h"
#include "addon_data.h"
#include "device.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

// A method that reads or changes the network: it runs as one synchronous call (see NetworkHandle::SyncCall). The
// methods themselves do not call checkUsable(): inside the call the handle is marked busy.
template <auto Method>
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    NetworkHandle* self = NetworkHandle::fromThis(info);
    self->checkUsable();
    NetworkHandle::SyncCall call(*self);
    return (self->*Method)(info);
  });
}

}  // namespace

// Distinguishes our wrapped objects from any other object, including other addons' wrapped objects.
const napi_type_tag NetworkHandle::kTypeTag = {0x7a1c3e5b9d2f4a60ULL, 0x8b4d6f1e3c5a7092ULL};

Napi::Function NetworkHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Network", {});
  defineMethods(env, ctor, {
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
      {"forward", dispatchJob<NetworkHandle, ForwardJob>},
      {"forwardSync", dispatchJobSync<NetworkHandle, ForwardJob>},
      {"backward", dispatchJob<NetworkHandle, BackwardJob>},
      {"backwardSync", dispatchJobSync<NetworkHandle, BackwardJob>},
      {"loss", dispatchJob<NetworkHandle, LossJob>},
      {"lossSync", dispatchJobSync<NetworkHandle, LossJob>},
      {"trainStep", dispatchJob<NetworkHandle, TrainStepJob>},
      {"trainStepSync", dispatchJobSync<NetworkHandle, TrainStepJob>},
      {"resetState", dispatch<&NetworkHandle::ResetState>},
      {"checkInput", dispatch<&NetworkHandle::CheckInput>},
      {"evaluate", dispatchJob<NetworkHandle, EvaluateJob>},
      {"evaluateSync", dispatchJobSync<NetworkHandle, EvaluateJob>},
      {"getRandomState", dispatch<&NetworkHandle::GetRandomState>},
      {"setRandomState", dispatch<&NetworkHandle::SetRandomState>},
      {"setInferencePrecision", dispatch<&NetworkHandle::SetInferencePrecision>},
      {"inferencePrecision", dispatch<&NetworkHandle::InferencePrecision>},
  });
  return ctor;
}

NetworkHandle::NetworkHandle(const Napi::CallbackInfo& info) : ModelHandle(info) {
  guard(info.Env(), [&] {
    Napi::Value arg = argAt(info, 0);
    // The spec is checked before the device is opened: a bad spec reports the same error on every device.
    if (arg.IsObject() && has(arg.As<Napi::Object>(), "layers")) {
      ModelSpec spec = parseModelSpec(arg);
      std::shared_ptr<Backend> backend = backendForSpec(arg);
      own(info, backend, std::make_unique<Network>(*backend, spec));
    } else {
      NetworkSpec spec = parseNetworkSpec(arg);
      std::shared_ptr<Backend> backend = backendForSpec(arg);
      own(info, backend, std::make_unique<Network>(*backend, spec));
    }
    return info.Env().Undefined();
  });
}

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

Napi::Value NetworkHandle::Spec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!model_->networkSpec()) {
    const ModelSpec& m = model_->modelSpec();
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
  const NetworkSpec& s = *model_->networkSpec();
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

Napi::Value NetworkHandle::GetParam(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), model_->getParam(argString(info, 0, "name")));
}

Napi::Value NetworkHandle::SetParam(const Napi::CallbackInfo& info) {
  std::string name = argString(info, 0, "name");
  model_->layout().at(name);  // unknown names first, before the value's type
  std::vector<float> data = readFloat32(info.Length() > 1 ? info[1] : info.Env().Undefined(), "value of " + name);
  model_->setParam(name, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::GetGrad(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), model_->getGrad(argString(info, 0, "name")));
}

// setInferencePrecision('float32' | 'int8'): the precision of the recurrent products of inference calls (forward
// without training, predict, streams). Training always runs in float32.
Napi::Value NetworkHandle::SetInferencePrecision(const Napi::CallbackInfo& info) {
  const std::string p = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (p != "float32" && p != "int8") fail(ErrorCode::Value, "the inference precision must be 'float32' or 'int8'");
  model_->setInt8Inference(p == "int8");
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::InferencePrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model_->int8Inference() ? "int8" : "float32");
}

Napi::Value NetworkHandle::ClipGradNorm(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) fail(ErrorCode::Type, "maxNorm must be a number");
  return Napi::Number::New(info.Env(), model_->clipGradNorm(info[0].As<Napi::Number>().DoubleValue()));
}

Napi::Value NetworkHandle::OptimizerInfo(const Napi::CallbackInfo& info) {
  Optimizer* opt = model_->optimizer();
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

Napi::Value NetworkHandle::GetOptimizerState(const Napi::CallbackInfo& info) {
  return toFloat32Array(info.Env(), model_->getOptimizerState(argString(info, 0, "slot")));
}

Napi::Value NetworkHandle::SetOptimizerState(const Napi::CallbackInfo& info) {
  std::string slot = argString(info, 0, "slot");
  if (slot == "steps") {
    if (info.Length() < 2 || !info[1].IsNumber()) fail(ErrorCode::Type, "steps must be a number");
    double steps = info[1].As<Napi::Number>().DoubleValue();
    if (!(steps >= 0) || steps > 9007199254740991.0) fail(ErrorCode::Value, "steps must be a non-negative integer");
    if (!model_->optimizer()) fail(ErrorCode::State, "no optimizer is set");
    model_->optimizer()->setSteps((long long)steps);
    return info.Env().Undefined();
  }
  if (model_->optimizer()) model_->optimizer()->stateSlot(slot);  // unknown slots first, before the value's size
  std::vector<float> data = readFloat32(info.Length() > 1 ? info[1] : info.Env().Undefined(), slot);
  model_->setOptimizerState(slot, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::ResetState(const Napi::CallbackInfo& info) {
  model_->carriedState().batch = 0;
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::CheckInput(const Napi::CallbackInfo& info) {
  const int vocabSize = model_->vocabSize();
  model_->validateInput(parseSequenceInput(info.Length() > 0 ? info[0] : info.Env().Undefined(), vocabSize));
  return info.Env().Undefined();
}


Napi::Value NetworkHandle::GetRandomState(const Napi::CallbackInfo& info) {
  std::vector<uint32_t> s = model_->randomState();
  Napi::Array arr = Napi::Array::New(info.Env(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) arr.Set((uint32_t)i, Napi::Number::New(info.Env(), s[i]));
  return arr;
}

Napi::Value NetworkHandle::SetRandomState(const Napi::CallbackInfo& info) {
  std::vector<int32_t> v = readInt32(info.Length() > 0 ? info[0] : info.Env().Undefined(), "random state");
  if (v.size() != 4) fail(ErrorCode::Value, "a random state has 4 integers");
  std::vector<uint32_t> s(v.begin(), v.end());
  model_->setRandomState(s);
  return info.Env().Undefined();
}

Napi::Value NetworkHandle::MemoryBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)model_->memoryBytes());
}

template <typename Job>
Napi::Value NetworkHandle::runJob(const Napi::CallbackInfo& info, bool async) {
  return run<Job>(info.Env(), async, info.This().As<Napi::Object>(), [&] { return Job(info, *model_); });
}


}  // namespace rnnkit::addon
