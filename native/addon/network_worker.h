// Runs a job (network_jobs.h) on the libuv thread pool and settles a Promise with its result. Execute never touches
// JavaScript; the handle stays referenced (so it cannot be collected) until the job settles. The worker is made when
// the call is made (its arguments already copied into the job) and started when the handle's queue reaches it.
#pragma once

#include <napi.h>

#include "../cpu/thread_priority.h"
#include "js_errors.h"
#include "network_handle.h"
#include "network_jobs.h"

namespace rnnkit::addon {

template <typename Job>
class NetworkWorker final : public Napi::AsyncWorker, public NetworkHandle::QueuedCall {
 public:
  NetworkWorker(Napi::Env env, NetworkHandle* handle, Napi::Object self, Job job)
      : Napi::AsyncWorker(env, "rnnkit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(handle),
        self_(Napi::Persistent(self)),
        job_(std::move(job)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  bool start() override {
    if (const char* reason = job_.cancelReason()) {
      cancel(ErrorCode::Disposed, reason);
      return false;
    }
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
    cpu::LowerThreadPriority background;  // the event loop's thread comes first on a busy machine
    error_.capture([&] { job_.run(handle_->network()); });
    if (error_.set) SetError(error_.message);
  }

  // The call settles before the handle moves on (endCall starts the next queued call, or after dispose() rejects
  // the queued ones): callers see their calls settle in call order.
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Value result;
    CapturedError convertError;
    convertError.capture([&] { result = job_.toJs(env); });
    if (convertError.set)
      deferred_.Reject(makeError(env, convertError.code, convertError.message).Value());
    else
      deferred_.Resolve(result);
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
  NetworkHandle* handle_;
  Napi::ObjectReference self_;
  Job job_;
  CapturedError error_;
};

}  // namespace rnnkit::addon
