// A Promise call of a model handle (ModelHandle): its job (arguments already copied in) runs on the libuv thread pool
// and settles a deferred Promise. Execute never touches JavaScript; the handle's object stays referenced (so it
// cannot be collected) until the call settles. Made when the call is made, started when the handle's queue reaches it.
//
// A job: run(Model&) on any thread, toJs(env) back on the JavaScript thread, cancelReason() (JobBase: never).
#pragma once

#include <napi.h>

#include <string>
#include <utility>

#include "../core/error.h"
#include "../cpu/thread_priority.h"
#include "call_queue.h"
#include "js_errors.h"

namespace rnnkit::addon {

template <typename Handle, typename Job>
class ModelWorker final : public Napi::AsyncWorker, public QueuedCall {
 public:
  ModelWorker(Napi::Env env, Handle* handle, Napi::Object self, Job job)
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
    error_.capture([&] { job_.run(handle_->model()); });
    if (error_.set) SetError(error_.message);
  }

  // The result is converted, and the call settled, before endCall: a dispose() that came while the call ran frees
  // the model there, and endCall starts the next queued call (or rejects them after dispose()), so callers see their
  // calls settle in call order.
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
  Handle* handle_;
  Napi::ObjectReference self_;
  Job job_;
  CapturedError error_;
};

}  // namespace rnnkit::addon
