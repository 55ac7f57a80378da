// Runs a job (network_jobs.h) on the libuv thread pool and settles a Promise with its result. Execute never touches
// JavaScript; the handle stays referenced (so it cannot be collected) and marked busy until the job completes.
#pragma once

#include <napi.h>

#include "../cpu/thread_priority.h"
#include "js_errors.h"
#include "network_handle.h"

namespace rnnkit::addon {

template <typename Job>
class NetworkWorker final : public Napi::AsyncWorker {
 public:
  NetworkWorker(Napi::Env env, NetworkHandle* handle, Napi::Object self, Job job)
      : Napi::AsyncWorker(env, "rnnkit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(handle),
        self_(Napi::Persistent(self)),
        job_(std::move(job)) {
    handle_->beginCall();
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    cpu::LowerThreadPriority background;  // the event loop's thread comes first on a busy machine
    error_.capture([&] { job_.run(handle_->network()); });
    if (error_.set) SetError(error_.message);
  }

  void OnOK() override {
    handle_->endCall();
    Napi::Env env = Env();
    Napi::Value result;
    CapturedError convertError;
    convertError.capture([&] { result = job_.toJs(env); });
    if (convertError.set)
      deferred_.Reject(makeError(env, convertError.code, convertError.message).Value());
    else
      deferred_.Resolve(result);
    self_.Reset();
  }

  void OnError(const Napi::Error&) override {
    handle_->endCall();
    deferred_.Reject(makeError(Env(), error_.code, error_.message).Value());
    self_.Reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  NetworkHandle* handle_;
  Napi::ObjectReference self_;
  Job job_;
  CapturedError error_;
};

}  // namespace rnnkit::addon
