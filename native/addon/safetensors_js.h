// parseSafetensors(bytes) for JavaScript: the native reader (native/core/safetensors_reader.h) over a Uint8Array.
#pragma once

#include <napi.h>

namespace rnnkit::addon {

// parseSafetensors(bytes: Uint8Array) -> { tensors: [{ name, shape, data: Float32Array }], metadata: { [key]: string } }
// Every tensor is converted to float32 and copied into an ArrayBuffer that JavaScript owns. Errors: ERR_RNNKIT_TYPE
// for something other than a Uint8Array, ERR_RNNKIT_FORMAT for a malformed file.
Napi::Value ParseSafetensors(const Napi::CallbackInfo& info);

}  // namespace rnnkit::addon
