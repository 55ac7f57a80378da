// Per-environment state (main thread and each worker thread get their own), kept as N-API instance data so the
// addon has no process-wide mutable state of its own.
#pragma once

#include <napi.h>

#include "property_keys.h"

namespace rnnkit::addon {

struct AddonData {
  Napi::FunctionReference networkConstructor;
  Napi::FunctionReference decoderConstructor;  // Seq2Seq.beginDecode's sessions
  PropertyKeys keys;
};

}  // namespace rnnkit::addon
