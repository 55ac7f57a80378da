#include "stream_handle.h"

#include "../core/error.h"
#include "js_convert.h"
#include "js_errors.h"
#include "network_jobs.h"
#include "network_worker.h"
#include "property_keys.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kStreamTag = {0x3f9e1d7c5b2a4e80ULL, 0x9c7e5a3b1d0f2468ULL};

template <Napi::Value (StreamHandle::*Method)(const Napi::CallbackInfo&)>
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return (StreamHandle::fromThis(info)->*Method)(info); });
}

// A forward over the stream's state: it starts from the kept state and leaves the final state there.
struct StreamStepJob : JobBase {
  StreamStepJob(StreamHandle::Use u, const Napi::CallbackInfo& info, int vocabSize)
      : use(std::move(u)), input(parseSequenceInput(info.Length() > 0 ? info[0] : info.Env().Undefined(), vocabSize)) {}
  void run(Network& net) { result = net.forward(input, false, use.state()); }
  // About one multiply-add per parameter and input row-step (NetworkHandle::run runs small steps inline).
  double multiplyAdds(const Network& net) const {
    // Rows and steps: every dimension of token ids, all but the features of dense input.
    const std::size_t dims = input.tokens.empty() && !input.shape.empty() ? input.shape.size() - 1 : input.shape.size();
    double rowSteps = 1;
    for (std::size_t i = 0; i < dims; ++i) rowSteps *= (double)input.shape[i];
    return rowSteps * (double)net.layout().total();
  }
  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    setField(out, Key::Output, toTensor(env, result.output, result.shape));
    return out;
  }
  // A step still queued when its stream is disposed does not run.
  const char* cancelReason() const { return use.disposed() ? "this stream has been disposed (before the step ran)" : nullptr; }

  StreamHandle::Use use;
  SequenceInput input;
  SequenceOutput result;
};

// A model whose outputs at a step depend on later steps (a bidirectional or backwards layer) cannot be fed one step
// at a time: its stream would silently give other outputs than a forward over the whole sequence.
void requireStreamable(const Network& net) {
  for (const StageSpec& st : net.modelSpec().stages) {
    if (st.kind != StageKind::Recurrent) continue;
    if (st.bidirectional || st.goBackwards)
      fail(ErrorCode::Unsupported, (st.prefix.size() > 1 ? "layer '" + st.prefix.substr(0, st.prefix.size() - 1) + "'"
                                                          : std::string("the recurrent layer")) +
                                       " reads the sequence " +
                                       (st.bidirectional ? "in both directions" : "backwards") +
                                       ": its output at a step needs the whole sequence, so the model cannot be run "
                                       "one step at a time (stream, generate); use predict on whole sequences");
  }
}

}  // namespace

StreamHandle::Use::Use(StreamHandle* s) : s_(s) {
  if (s_->disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  ++s_->uses_;
}

StreamHandle::Use::~Use() {
  if (!s_) return;
  if (--s_->uses_ == 0 && s_->disposed_) s_->releaseState();
}

RecurrentState* StreamHandle::Use::state() const { return s_->state_.get(); }
bool StreamHandle::Use::disposed() const { return s_->disposed_; }

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
    // A stream may be opened while the network runs a call: its steps wait in the network's queue.
    network_->checkOpen();
    requireStreamable(network_->network());
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
  // Checked before the network is touched: a disposed stream no longer keeps its network alive.
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  NetworkHandle* net = network_;
  return net->run<StreamStepJob>(info.Env(), async, info.This().As<Napi::Object>(), [&] {
    Use use(this);  // before the arguments are read: a getter may dispose the stream
    const int vocabSize = net->network().vocabSize();
    StreamStepJob job(std::move(use), info, vocabSize);
    if (job.use.disposed()) fail(ErrorCode::Disposed, "this stream has been disposed (while the step read its arguments)");
    return job;
  });
}

Napi::Value StreamHandle::Step(const Napi::CallbackInfo& info) {
  try {
    return run(info, true);
  } catch (const Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(makeError(info.Env(), e.code(), e.what()).Value());
    return d.Promise();
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(e.Value());
    return d.Promise();
  }
}

Napi::Value StreamHandle::StepSync(const Napi::CallbackInfo& info) { return run(info, false); }

Napi::Value StreamHandle::Reset(const Napi::CallbackInfo& info) {
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  if (uses_ > 0) fail(ErrorCode::Busy, "a step of this stream is in flight; await it before reset()");
  state_->batch = 0;
  return info.Env().Undefined();
}

Napi::Value StreamHandle::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) {
    disposed_ = true;
    if (uses_ == 0) releaseState();  // else when the last step settles
  }
  return info.Env().Undefined();
}

void StreamHandle::releaseState() {
  state_.reset();
  backend_.reset();
  networkRef_.Reset();
}

}  // namespace rnnkit::addon
