// The JavaScript handle of a core Seq2Seq (an encoder-decoder): a type-tagged wrapped object owning the model, with
// synchronous methods and Promise twins that run on the thread pool; refuses use after dispose(). Its Promise calls
// share the network handles' queue (call_queue.h): made while another runs, they wait and settle in call order; a
// synchronous call made while a Promise call runs is refused with ERR_RNNKIT_BUSY. Decoders made by beginDecode() keep their own state (one per request) and the model alive.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/seq2seq.h"
#include "call_queue.h"

namespace rnnkit::addon {

class Seq2SeqHandle : public Napi::ObjectWrap<Seq2SeqHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit Seq2SeqHandle(const Napi::CallbackInfo& info);
  ~Seq2SeqHandle() override;

  static Seq2SeqHandle* fromObject(const Napi::Value& value, const char* what);
  Seq2Seq& model() { return *model_; }
  const std::shared_ptr<Backend>& backend() const { return backend_; }
  // Throws ERR_RNNKIT_DISPOSED after dispose(), ERR_RNNKIT_BUSY while a call runs or reads its arguments.
  void checkUsable() const;
  // Only ERR_RNNKIT_DISPOSED, and ERR_RNNKIT_BUSY while a call reads its arguments (the state of a Promise call).
  void checkOpen() const;
  bool disposed() const { return disposed_; }
  // The worker whose call ran has settled: start the next queued call, or free the model after dispose().
  void endCall();

  // The call protocol of NetworkHandle (see network_handle.h): while a call reads its JavaScript arguments the handle
  // is marked, so a getter that calls dispose() only marks it (freed when the call ends) and one that starts another
  // call on this model is refused with ERR_RNNKIT_BUSY.
  class Reading {
   public:
    explicit Reading(Seq2SeqHandle& h);
    ~Reading();
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

   private:
    Seq2SeqHandle& h_;
  };

 private:
  void releaseNative();
  void reportMemory();
  template <typename Job>
  Napi::Value run(const Napi::CallbackInfo& info, bool async);

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
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ForwardSync(const Napi::CallbackInfo& info);
  Napi::Value LossSync(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value EvaluateSync(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value TrainStepSync(const Napi::CallbackInfo& info);
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value DecodeSync(const Napi::CallbackInfo& info);
  Napi::Value BeginDecode(const Napi::CallbackInfo& info);

  std::shared_ptr<Backend> backend_;  // destroyed after model_
  std::unique_ptr<Seq2Seq> model_;
  CallQueue calls_;  // the running Promise call and those waiting for it
  bool reading_ = false;
  bool disposed_ = false;
  int64_t reportedBytes_ = 0;
};

// One decoding session: the decoder's state for its rows, stepped one token per row at a time.
class DecoderHandle : public Napi::ObjectWrap<DecoderHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit DecoderHandle(const Napi::CallbackInfo& info);
  // Called by Seq2SeqHandle::BeginDecode on a fresh object.
  void attach(Napi::Object model, std::shared_ptr<Backend> backend, std::unique_ptr<DecoderState> state, int rows,
              int srcLen);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Rows(const Napi::CallbackInfo& info);

  Napi::ObjectReference model_;
  std::shared_ptr<Backend> backend_;  // destroyed after state_
  std::unique_ptr<DecoderState> state_;
  int rows_ = 0, srcLen_ = 0;
};

}  // namespace rnnkit::addon
