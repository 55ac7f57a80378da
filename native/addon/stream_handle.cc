#include "stream_handle.h"

#include "../core/error.h"
#include "js_convert.h"
#include "property_keys.h"
#include "js_errors.h"
#include "network_jobs.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kStreamTag = {0x3f9e1d7c5b2a4e80ULL, 0x9c7e5a3b1d0f2468ULL};

template <Napi::Value (StreamHandle::*Method)(const Napi::CallbackInfo&)>
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return (StreamHandle::fromThis(info)->*Method)(info); });
}

// A forward over the stream's state: it starts from the kept state and leaves the final state there.
struct StreamStepJob {
  StreamStepJob(const Napi::CallbackInfo& info, const Network& net, RecurrentState* s)
      : input(parseSequenceInput(info.Length() > 0 ? info[0] : info.Env().Undefined(), net.vocabSize())), state(s) {}
  void run(Network& net) { result = net.forward(input, false, state); }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    setField(out, Key::Output, toTensor(env, result.output, result.shape));
    return out;
  }
  SequenceInput input;
  RecurrentState* state;
  SequenceOutput result;
};

}  // namespace

Napi::Function StreamHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Stream", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  proto.Set("step", Napi::Function::New(env, dispatch<&StreamHandle::Step>, "step"));
  proto.Set("stepSync", Napi::Function::New(env, dispatch<&StreamHandle::StepSync>, "stepSync"));
  proto.Set("reset", Napi::Function::New(env, dispatch<&StreamHandle::Reset>, "reset"));
  proto.Set("dispose", Napi::Function::New(env, dispatch<&StreamHandle::Dispose>, "dispose"));
  return ctor;
}

StreamHandle::StreamHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamHandle>(info) {
  guard(info.Env(), [&] {
    if (info.Length() < 1 || !info[0].IsObject())
      fail(ErrorCode::Type, "a Stream is made from a Network: new Stream(network)");
    Napi::Object net = info[0].As<Napi::Object>();
    network_ = NetworkHandle::fromObject(net, "the argument of new Stream()");
    network_->checkUsable();
    networkRef_ = Napi::Persistent(net);
    backend_ = network_->backend();
    state_ = std::make_unique<RecurrentState>(backend_.get());
    info.This().As<Napi::Object>().TypeTag(&kStreamTag);
    return info.Env().Undefined();
  });
}

StreamHandle* StreamHandle::fromThis(const Napi::CallbackInfo& info) {
  Napi::Value self = info.This();
  if (!self.IsObject() || !self.As<Napi::Object>().CheckTypeTag(&kStreamTag))
    fail(ErrorCode::Type, "this method must be called on a Stream");
  return Unwrap(self.As<Napi::Object>());
}

Napi::Value StreamHandle::run(const Napi::CallbackInfo& info, bool async) {
  if (!state_) fail(ErrorCode::Disposed, "this stream has been disposed");
  RecurrentState* state = state_.get();
  NetworkHandle* net = network_;
  return net->run<StreamStepJob>(info.Env(), async, info.This().As<Napi::Object>(),
                                 [&] { return StreamStepJob(info, net->network(), state); });
}

Napi::Value StreamHandle::Step(const Napi::CallbackInfo& info) { return run(info, true); }
Napi::Value StreamHandle::StepSync(const Napi::CallbackInfo& info) { return run(info, false); }

Napi::Value StreamHandle::Reset(const Napi::CallbackInfo& info) {
  if (!state_) fail(ErrorCode::Disposed, "this stream has been disposed");
  network_->checkUsable();  // a step in flight still uses the state
  state_->batch = 0;
  return info.Env().Undefined();
}

Napi::Value StreamHandle::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    if (network_->busy())
      fail(ErrorCode::Busy, "the network is running a call that may use this stream; await it before disposing");
    state_.reset();
    backend_.reset();
    networkRef_.Reset();
  }
  return info.Env().Undefined();
}

}  // namespace rnnkit::addon
