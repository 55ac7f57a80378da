// The JavaScript handle of a core Network, under the call protocol of every model handle (model_handle.h).
//
// Its synchronous calls (NetworkHandle::run and the SyncCall scope): check that the handle is usable, mark it busy
// and reading arguments, read every JavaScript value into owned C++ data (getters and Proxy traps run here), then
// check again. Its Promise calls whose work is small run on the calling thread when nothing waits before them.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/error.h"
#include "../core/network.h"
#include "model_handle.h"

namespace rnnkit::addon {

// modelParameters(spec): [{ name, shape }] of the parameters a Network of this pipeline spec would have, computed
// without building it (nothing is allocated). Throws the spec's errors as the constructor would.
Napi::Value ModelParameters(const Napi::CallbackInfo& info);

class NetworkHandle : public ModelHandle<NetworkHandle, Network> {
 public:
  static const napi_type_tag kTypeTag;
  static constexpr const char* kTypeName = "a Network";
  static constexpr const char* kNoun = "network";

  // The constructor function, with its methods on the prototype.
  static Napi::Function define(Napi::Env env);

  explicit NetworkHandle(const Napi::CallbackInfo& info);

  // The handle behind `info.This()`, after checking its type tag; throws ERR_RNNKIT_TYPE for anything else.
  static NetworkHandle* fromThis(const Napi::CallbackInfo& info);
  Network& network() { return model(); }
  // Before a synchronous call: ERR_RNNKIT_DISPOSED after dispose(), ERR_RNNKIT_BUSY while a call runs or reads its
  // arguments.
  void checkUsable() const {
    checkOpen();
    ModelHandle::checkUsable();
  }

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
  // A job of network_jobs.h (Job(info, network)) through run (dispatchJobSync, dispatchJob).
  template <typename Job>
  Napi::Value runJob(const Napi::CallbackInfo& info, bool async);

 private:
  // Marks the handle as reading a call's arguments for the scope; throws DISPOSED if dispose() came meanwhile.
  class ArgumentRead;

  Napi::Value Spec(const Napi::CallbackInfo& info);
  // The flat values (the GraphModel and Seq2Seq handles return tensors).
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info);
  Napi::Value OptimizerInfo(const Napi::CallbackInfo& info);
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value MemoryBytes(const Napi::CallbackInfo& info);
  Napi::Value ResetState(const Napi::CallbackInfo& info);
  Napi::Value CheckInput(const Napi::CallbackInfo& info);
  Napi::Value GetRandomState(const Napi::CallbackInfo& info);
  Napi::Value SetRandomState(const Napi::CallbackInfo& info);
  Napi::Value SetInferencePrecision(const Napi::CallbackInfo& info);
  Napi::Value InferencePrecision(const Napi::CallbackInfo& info);
};

}  // namespace rnnkit::addon

#include "network_handle_run.h"
