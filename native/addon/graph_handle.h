// The JavaScript handle of a core GraphNetwork (a model graph): a type-tagged wrapped object owning the network, with
// synchronous methods and Promise twins that run on the thread pool, under the call protocol of the other handles
// (call_queue.h: Promise calls settle in call order; a synchronous call while one runs is ERR_RNNKIT_BUSY; use after
// dispose() is ERR_RNNKIT_DISPOSED).
#pragma once

#include <napi.h>

#include <memory>

#include "../core/graph_network.h"
#include "call_queue.h"

namespace rnnkit::addon {

class GraphHandle : public Napi::ObjectWrap<GraphHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit GraphHandle(const Napi::CallbackInfo& info);
  ~GraphHandle() override;

  static GraphHandle* fromObject(const Napi::Value& value, const char* what);
  GraphNetwork& model() { return *model_; }
  void checkUsable() const;
  void checkOpen() const;
  void endCall();

  class Reading {
   public:
    explicit Reading(GraphHandle& h);
    ~Reading();
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

   private:
    GraphHandle& h_;
  };

 private:
  void releaseNative();
  void reportMemory();
  template <typename Job>
  Napi::Value run(const Napi::CallbackInfo& info, bool async);

  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Tensors(const Napi::CallbackInfo& info);
  Napi::Value ParamNames(const Napi::CallbackInfo& info);
  Napi::Value ParamShape(const Napi::CallbackInfo& info);
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ForwardSync(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value EvaluateSync(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value TrainStepSync(const Napi::CallbackInfo& info);
  Napi::Value LossBackwardSync(const Napi::CallbackInfo& info);

  std::shared_ptr<Backend> backend_;  // destroyed after model_
  std::unique_ptr<GraphNetwork> model_;
  CallQueue calls_;
  bool reading_ = false;
  bool disposed_ = false;
  int64_t reportedBytes_ = 0;
};

}  // namespace rnnkit::addon
