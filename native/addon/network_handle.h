// The JavaScript handle of a core Network: a type-tagged wrapped object that owns the network, refuses use after
// dispose(), runs its Promise calls one after another in the order they were made, and reports its native memory
// to V8.
//
// Every call follows one protocol (NetworkHandle::run and the SyncCall scope): check that the handle is usable,
// mark it as reading arguments, read every JavaScript value into owned C++ data (getters and Proxy traps run here),
// then check again. While arguments are read, a second call on the same handle (from a getter) is refused with
// ERR_RNNKIT_BUSY and dispose() only marks the handle, so no native work ever runs on freed or shared memory.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/error.h"
#include "../core/network.h"
#include "call_queue.h"

namespace rnnkit::addon {

// modelParameters(spec): [{ name, shape }] of the parameters a Network of this pipeline spec would have, computed
// without building it (nothing is allocated). Throws the spec's errors as the constructor would.
Napi::Value ModelParameters(const Napi::CallbackInfo& info);

class NetworkHandle : public Napi::ObjectWrap<NetworkHandle> {
 public:
  // The constructor function, with its methods on the prototype.
  static Napi::Function define(Napi::Env env);

  explicit NetworkHandle(const Napi::CallbackInfo& info);
  ~NetworkHandle() override;

  // The handle behind `info.This()`, after checking its type tag; throws ERR_RNNKIT_TYPE for anything else.
  static NetworkHandle* fromThis(const Napi::CallbackInfo& info);
  // The handle behind any value, after checking its type tag.
  static NetworkHandle* fromObject(const Napi::Value& value, const char* what);
  bool disposed() const { return disposed_; }

  // For the async workers: the network, valid while the worker's call runs.
  Network& network() { return *network_; }
  // The backend the network runs on, for objects that keep backend memory of their own (a Stream's state).
  const std::shared_ptr<Backend>& backend() const { return backend_; }
  // The worker whose call ran has settled: start the next queued call, or free the network after dispose().
  void endCall();
  // Throws ERR_RNNKIT_DISPOSED after dispose(), ERR_RNNKIT_BUSY while a call runs or reads its arguments.
  void checkUsable() const;
  // Only ERR_RNNKIT_DISPOSED, and ERR_RNNKIT_BUSY while a call reads its arguments (the state of a Promise call).
  void checkOpen() const;

  // A synchronous call: from the check to the end of the scope, the handle is busy (nested calls from getters are
  // refused) and dispose() is deferred to the scope's end.
  class SyncCall {
   public:
    explicit SyncCall(NetworkHandle& h);
    ~SyncCall();
    SyncCall(const SyncCall&) = delete;
    SyncCall& operator=(const SyncCall&) = delete;

   private:
    NetworkHandle& h_;
  };

  // Run a job now, or on the thread pool behind a Promise (keepAlive stays referenced until it settles). A Promise
  // call made while another runs waits in this handle's queue; its arguments are read (copied) now. makeJob parses
  // the arguments; its errors are thrown (sync) or reject the Promise (async).
  template <typename Job, typename MakeJob>
  Napi::Value run(Napi::Env env, bool async, Napi::Object keepAlive, MakeJob makeJob);

  using QueuedCall = addon::QueuedCall;

 private:
  // Marks the handle as reading a call's arguments for the scope; throws DISPOSED if dispose() came meanwhile.
  class ArgumentRead;
  void releaseNative();
  void reportMemory();

  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Spec(const Napi::CallbackInfo& info);
  Napi::Value ParamNames(const Napi::CallbackInfo& info);
  Napi::Value ParamShape(const Napi::CallbackInfo& info);
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value GradNorm(const Napi::CallbackInfo& info);
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value OptimizerInfo(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value MemoryBytes(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ForwardSync(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value BackwardSync(const Napi::CallbackInfo& info);
  Napi::Value Loss(const Napi::CallbackInfo& info);
  Napi::Value LossSync(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value TrainStepSync(const Napi::CallbackInfo& info);
  Napi::Value ResetState(const Napi::CallbackInfo& info);
  Napi::Value CheckInput(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value EvaluateSync(const Napi::CallbackInfo& info);
  Napi::Value GetRandomState(const Napi::CallbackInfo& info);
  Napi::Value SetRandomState(const Napi::CallbackInfo& info);
  Napi::Value SetInferencePrecision(const Napi::CallbackInfo& info);
  Napi::Value InferencePrecision(const Napi::CallbackInfo& info);

  template <typename Job>
  Napi::Value runJob(const Napi::CallbackInfo& info, bool async);


  std::shared_ptr<Backend> backend_;  // declared before network_: destroyed after it
  std::unique_ptr<Network> network_;
  CallQueue calls_;       // the running call and the Promise calls waiting for it
  bool reading_ = false;  // a call is reading its JavaScript arguments
  bool disposed_ = false;
  int64_t reportedBytes_ = 0;
};

}  // namespace rnnkit::addon

#include "network_handle_run.h"
