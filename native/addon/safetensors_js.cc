#include "safetensors_js.h"

#include <string>
#include <unordered_set>
#include <vector>

#include "../core/error.h"
#include "../core/safetensors_reader.h"
#include "js_convert.h"
#include "js_errors.h"

namespace rnnkit::addon {

Napi::Value ParseSafetensors(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    Napi::Env env = info.Env();
    Napi::Value arg = info.Length() > 0 ? info[0] : env.Undefined();
    if (!arg.IsTypedArray() || arg.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      fail(ErrorCode::Type, "safetensors: expected a Buffer or Uint8Array, got " + typeName(arg));
    Napi::Uint8Array bytes = arg.As<Napi::Uint8Array>();
    const std::uint8_t* file = bytes.Data();
    const std::size_t size = bytes.ByteLength();

    // parseSafetensors(bytes, { only: names }): read just these tensors; the rest are checked but not converted.
    std::unordered_set<std::string> only;
    bool selecting = false;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      Napi::Object options = requireObject(info[1], "options");
      Napi::Value names = options.Get("only");
      if (!names.IsUndefined()) {
        if (!names.IsArray()) fail(ErrorCode::Type, "safetensors: options.only must be an array of tensor names");
        Napi::Array list = names.As<Napi::Array>();
        for (uint32_t i = 0; i < list.Length(); ++i) {
          Napi::Value name = list.Get(i);
          if (!name.IsString()) fail(ErrorCode::Type, "safetensors: options.only must be an array of tensor names");
          only.insert(name.As<Napi::String>().Utf8Value());
        }
        selecting = true;
      }
    }
    const SafetensorsHeader header = selecting
        ? readSafetensorsHeader(file, size, [&](const std::string& name) { return only.count(name) > 0; })
        : readSafetensorsHeader(file, size);
    // Only now, with every size proven to be backed by the file, is anything allocated. The arrays are V8's own
    // (never external, which Electron forbids) and are filled in place, without a second copy.
    Napi::Array tensors = Napi::Array::New(env, header.tensors.size());
    for (std::size_t i = 0; i < header.tensors.size(); ++i) {
      const SafetensorsEntry& entry = header.tensors[i];
      Napi::Float32Array data = Napi::Float32Array::New(env, (std::size_t)entry.elements);
      decodeSafetensorsTensor(file, size, entry, data.Data());
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", Napi::String::New(env, entry.name));
      t.Set("shape", toShape(env, std::vector<long long>(entry.shape.begin(), entry.shape.end())));
      t.Set("data", data);
      tensors.Set((uint32_t)i, t);
    }
    // Defined, not assigned: a key such as "__proto__" becomes an ordinary property instead of reaching a setter.
    Napi::Object metadata = Napi::Object::New(env);
    for (const auto& [key, value] : header.metadata)
      metadata.DefineProperty(Napi::PropertyDescriptor::Value(Napi::String::New(env, key), Napi::String::New(env, value),
                                                              napi_default_jsproperty));
    Napi::Object result = Napi::Object::New(env);
    result.Set("tensors", tensors);
    result.Set("metadata", metadata);
    return result;
  });
}

}  // namespace rnnkit::addon
