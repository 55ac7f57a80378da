// What every JavaScript handle of a core model (Network, GraphNetwork, Seq2Seq) shares: a type-tagged wrapped object
// owning the model and its backend, the call protocol, dispose() and the native memory reported to V8.
//
// The call protocol: Promise calls wait in the handle's queue (call_queue.h) and settle in call order; a synchronous
// call made while one runs is ERR_RNNKIT_BUSY; use after dispose() is ERR_RNNKIT_DISPOSED. While a call reads its
// JavaScript arguments (getters and Proxy traps run then) the handle is marked (Reading): a second call from such
// code is refused with ERR_RNNKIT_BUSY and dispose() only marks the handle, freed when the call ends, so no native
// work ever runs on freed memory.
//
// Handle (CRTP) names itself: kTypeTag (its napi type tag), kTypeName ("a Network": errors about a wrong receiver)
// and kNoun ("network": errors about its state).
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/backend.h"
#include "../core/error.h"
#include "call_queue.h"
#include "js_convert.h"
#include "js_errors.h"
#include "method_dispatch.h"
#include "model_worker.h"
#include "network_jobs.h"

namespace rnnkit::addon {

template <typename Handle, typename Model>
class ModelHandle : public Napi::ObjectWrap<Handle> {
 public:
  // The handle behind any value, after checking its type tag; ERR_RNNKIT_TYPE for anything else.
  static Handle* fromObject(const Napi::Value& value, const char* what) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&Handle::kTypeTag))
      fail(ErrorCode::Type, std::string(what) + " must be " + Handle::kTypeName);
    return Napi::ObjectWrap<Handle>::Unwrap(value.As<Napi::Object>());
  }

  // The model: valid while a call runs (the workers' Execute).
  Model& model() { return *model_; }
  // The backend, for objects that keep backend memory of their own (a Stream's state, a decoder's).
  const std::shared_ptr<Backend>& backend() const { return backend_; }
  bool disposed() const { return disposed_; }

  // Only ERR_RNNKIT_DISPOSED, and ERR_RNNKIT_BUSY while a call reads its arguments (the state a Promise call needs:
  // one made while another runs waits in the queue).
  void checkOpen() const {
    checkNotDisposed();
    if (reading_)
      fail(ErrorCode::Busy, noun() + " is reading the arguments of another call (a getter or Proxy trap called it)");
  }
  // Inside a call's Reading scope: ERR_RNNKIT_DISPOSED, and ERR_RNNKIT_BUSY while a Promise call runs.
  void checkUsable() const {
    checkNotDisposed();
    if (calls_.running()) fail(ErrorCode::Busy, noun() + " is running another call; await it before starting the next one");
  }

  // The worker whose call ran has settled: start the next queued call, or free the model after dispose().
  void endCall() {
    if (disposed_) {
      releaseNative();  // dispose() came while the call ran
      calls_.cancelWaiting(ErrorCode::Disposed, noun() + " has been disposed (before this queued call ran)");
      return;
    }
    reportMemory();  // before the next call starts to use the model on another thread
    calls_.startNext();
  }

  // A call reading its JavaScript arguments (see the protocol above).
  class Reading {
   public:
    explicit Reading(ModelHandle& h) : h_(h) {
      if (h_.reading_)
        fail(ErrorCode::Busy, h_.noun() + " is reading the arguments of another call (a getter or Proxy trap called it)");
      h_.reading_ = true;
    }
    ~Reading() {
      h_.reading_ = false;
      if (h_.disposed_ && !h_.calls_.running()) h_.releaseNative();  // dispose() came from a getter during the call
    }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

   private:
    ModelHandle& h_;
  };

  // A job (Job(info, model) reads the arguments into owned data) run now, or behind a Promise on the thread pool
  // (dispatchJobSync, dispatchJob). Promise: argument errors, and exceptions of the caller's own code run while the
  // arguments are read, reject the Promise. (NetworkHandle::runJob hides this one: network_handle_run.h.)
  template <typename Job>
  Napi::Value runJob(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    if (!async) {
      Reading reading(*this);
      checkUsable();
      Job job(info, *model_);
      checkNotDisposedWhileReading();
      job.run(*model_);
      reportMemory();
      return job.toJs(env);
    }
    return rejectOnThrow(env, [&]() -> Napi::Value {
      checkOpen();
      ModelWorker<Handle, Job>* worker;
      {
        Reading reading(*this);
        Job job(info, *model_);
        checkNotDisposedWhileReading();
        worker = new ModelWorker<Handle, Job>(env, static_cast<Handle*>(this), info.This().As<Napi::Object>(),
                                              std::move(job));
      }
      Napi::Promise promise = worker->promise();
      calls_.submit(worker);  // the worker deletes itself once settled
      return promise;
    });
  }

 protected:
  explicit ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info) {}
  ~ModelHandle() override { releaseNative(); }

  // The constructor's end: the handle owns the model, its object carries the type tag, V8 knows its memory.
  void own(const Napi::CallbackInfo& info, std::shared_ptr<Backend> backend, std::unique_ptr<Model> model) {
    backend_ = std::move(backend);
    model_ = std::move(model);
    info.This().As<Napi::Object>().TypeTag(&Handle::kTypeTag);
    reportMemory();
  }

  // After a call read its arguments: a getter may have disposed the handle.
  void checkNotDisposedWhileReading() const {
    if (disposed_) fail(ErrorCode::Disposed, noun() + " has been disposed (while the call read its arguments)");
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (!disposed_) {
      disposed_ = true;
      // Calls waiting in the queue are refused when the running call settles (endCall), after it: refusing them
      // here would reject Promises their callers have not had a chance to handle yet.
      if (!calls_.running() && !reading_) releaseNative();
    }
    return info.Env().Undefined();
  }

  Napi::Value IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

  // Methods every model has, entered through the handle's synchronous dispatch (which checks the handle).
  Napi::Value ParamNames(const Napi::CallbackInfo& info) {
    const auto& entries = model_->layout().entries();
    Napi::Array a = Napi::Array::New(info.Env(), entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) a.Set((uint32_t)i, entries[i].name);
    return a;
  }

  Napi::Value ParamShape(const Napi::CallbackInfo& info) {
    return shapeOf(info.Env(), model_->layout().at(argString(info, 0, "name")));
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    model_->zeroGrad();
    return info.Env().Undefined();
  }

  Napi::Value GradNorm(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), model_->gradNorm()); }

  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    model_->setOptimizer(parseOptimizerConfig(argAt(info, 0)));
    reportMemory();
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    model_->optimizerStep();
    return info.Env().Undefined();
  }

  // A parameter, or its gradient, as a tensor { data, shape } (the GraphModel and Seq2Seq form; the Network's
  // methods of these names return the flat values).
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    const std::string name = argString(info, 0, "name");
    return toTensor(info.Env(), model_->getParam(name), shapeOf(model_->layout().at(name)));
  }

  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    const std::string name = argString(info, 0, "name");
    return toTensor(info.Env(), model_->getGrad(name), shapeOf(model_->layout().at(name)));
  }

  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    const std::string name = argString(info, 0, "name");
    model_->layout().at(name);  // unknown names first, before the value's type
    std::vector<float> data = readFloat32(argAt(info, 1), name);
    model_->setParam(name, data.data(), data.size());
    return info.Env().Undefined();
  }

  void releaseNative() {
    if (!model_) return;
    model_.reset();
    backend_.reset();  // after the model, whose buffers it frees (a Stream or a decoder may keep it a little longer)
    if (reportedBytes_) {
      Napi::MemoryManagement::AdjustExternalMemory(this->Env(), -reportedBytes_);
      reportedBytes_ = 0;
    }
  }

  void reportMemory() {
    if (!model_) return;
    const int64_t bytes = (int64_t)model_->memoryBytes();
    if (bytes != reportedBytes_) {
      Napi::MemoryManagement::AdjustExternalMemory(this->Env(), bytes - reportedBytes_);
      reportedBytes_ = bytes;
    }
  }

  std::shared_ptr<Backend> backend_;  // declared before model_: destroyed after it
  std::unique_ptr<Model> model_;
  CallQueue calls_;       // the running call and the Promise calls waiting for it
  bool reading_ = false;  // a call is reading its JavaScript arguments
  bool disposed_ = false;
  int64_t reportedBytes_ = 0;

 private:
  static std::string noun() { return std::string("this ") + Handle::kNoun; }
  static std::vector<long long> shapeOf(const ParamEntry& e) { return std::vector<long long>(e.shape.begin(), e.shape.end()); }
  static Napi::Array shapeOf(Napi::Env env, const ParamEntry& e) { return toShape(env, shapeOf(e)); }
  void checkNotDisposed() const {
    if (disposed_ || !model_) fail(ErrorCode::Disposed, noun() + " has been disposed");
  }
};

}  // namespace rnnkit::addon
