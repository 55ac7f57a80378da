// The JavaScript handle of a core GraphNetwork (a model graph): a type-tagged wrapped object owning the network, with
// synchronous methods and Promise twins that run on the thread pool, under the call protocol of every model handle
// (model_handle.h).
#pragma once

#include <napi.h>

#include <memory>

#include "../core/graph_network.h"
#include "model_handle.h"

namespace rnnkit::addon {

class GraphHandle : public ModelHandle<GraphHandle, GraphNetwork> {
 public:
  static const napi_type_tag kTypeTag;
  static constexpr const char* kTypeName = "a Graph model";
  static constexpr const char* kNoun = "graph model";

  static Napi::Function define(Napi::Env env);
  explicit GraphHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value Tensors(const Napi::CallbackInfo& info);
  Napi::Value LossBackwardSync(const Napi::CallbackInfo& info);
};

}  // namespace rnnkit::addon
