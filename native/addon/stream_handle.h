// A stateful stream over a network: the recurrent state stays in native memory between calls, so a server can feed
// one time step at a time. Type-tagged like NetworkHandle; it keeps its network alive.
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

 private:
  NetworkHandle& network() const;
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value StepSync(const Napi::CallbackInfo& info);
  Napi::Value Reset(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value run(const Napi::CallbackInfo& info, bool async);

  Napi::ObjectReference networkRef_;
  NetworkHandle* network_ = nullptr;
  std::shared_ptr<Backend> backend_;  // keeps the backend of state_'s memory alive, even past network.dispose()
  std::unique_ptr<RecurrentState> state_;
};

}  // namespace rnnkit::addon
