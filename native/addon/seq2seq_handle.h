// The JavaScript handle of a core Seq2Seq (an encoder-decoder): a type-tagged wrapped object owning the model, with
// synchronous methods and Promise twins that run on the thread pool, under the call protocol of every model handle
// (model_handle.h). Decoders made by beginDecode() keep their own state (one per request) and the model alive.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/seq2seq.h"
#include "model_handle.h"

namespace rnnkit::addon {

class Seq2SeqHandle : public ModelHandle<Seq2SeqHandle, Seq2Seq> {
 public:
  static const napi_type_tag kTypeTag;
  static constexpr const char* kTypeName = "a Seq2Seq model";
  static constexpr const char* kNoun = "seq2seq model";

  static Napi::Function define(Napi::Env env);
  explicit Seq2SeqHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value Spec(const Napi::CallbackInfo& info);
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info);
  Napi::Value LossSync(const Napi::CallbackInfo& info);
  Napi::Value BeginDecode(const Napi::CallbackInfo& info);
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
