// A stateful stream over a network: the recurrent state stays in native memory between calls, so a server can feed
// one time step at a time. Type-tagged like NetworkHandle; it keeps its network alive. Its steps go through the
// network's call queue, so many streams over one network are served in call order.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/network.h"
#include "network_handle.h"

namespace rnnkit::addon {

class StreamHandle : public Napi::ObjectWrap<StreamHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit StreamHandle(const Napi::CallbackInfo& info);
  static StreamHandle* fromThis(const Napi::CallbackInfo& info);

  // Held by each step from before its arguments are read until it settles: the state stays allocated while any
  // step may use it, and dispose() during that time frees it when the last step settles.
  class Use {
   public:
    explicit Use(StreamHandle* s);
    Use(Use&& other) noexcept : s_(other.s_) { other.s_ = nullptr; }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Use& operator=(Use&&) = delete;
    ~Use();
    RecurrentState* state() const;
    bool disposed() const;

   private:
    StreamHandle* s_;
  };

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value StepSync(const Napi::CallbackInfo& info);
  Napi::Value Reset(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // The lean form ModelStream uses: stepData(data, rank, d0, d1, d2, output?) (token models: stepData(ids, ..., output?)),
  // giving the output's Float32Array; outputForm() says what shape it has ({ features, sequence }).
  Napi::Value StepData(const Napi::CallbackInfo& info);
  Napi::Value StepDataSync(const Napi::CallbackInfo& info);
  Napi::Value DescribeOutput(const Napi::CallbackInfo& info);
  Napi::Value run(const Napi::CallbackInfo& info, bool async);
  Napi::Value runData(const Napi::CallbackInfo& info, bool async);
  void releaseState();

  Napi::ObjectReference networkRef_;
  NetworkHandle* network_ = nullptr;
  std::shared_ptr<Backend> backend_;  // keeps the backend of state_'s memory alive, even past network.dispose()
  std::unique_ptr<RecurrentState> state_;
  int uses_ = 0;  // steps made and not yet settled
  bool disposed_ = false;
};

}  // namespace rnnkit::addon
