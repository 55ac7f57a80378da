#include "property_keys.h"

#include "addon_data.h"

namespace rnnkit::addon {

namespace {

const char* const kNames[] = {"data", "shape", "x", "tokens", "lengths", "h0", "c0", "batchFirst", "output"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<int>(Key::Count), "a name for every Key");

Napi::String keyOf(Napi::Env env, Key key) {
  // Instance data is set before any call can reach here; a missing one (never expected) still gives the right key.
  if (AddonData* data = env.GetInstanceData<AddonData>())
    return data->keys.names.Value().Get(static_cast<uint32_t>(key)).As<Napi::String>();
  return Napi::String::New(env, kNames[static_cast<int>(key)]);
}

}  // namespace

void createPropertyKeys(Napi::Env env, PropertyKeys& keys) {
  Napi::Array names = Napi::Array::New(env, static_cast<std::size_t>(Key::Count));
  for (int i = 0; i < static_cast<int>(Key::Count); ++i)
    names.Set(static_cast<uint32_t>(i), Napi::String::New(env, kNames[i]));
  keys.names = Napi::Persistent(names);
}

Napi::Value getField(const Napi::Object& obj, Key key) { return obj.Get(keyOf(obj.Env(), key)); }

void setField(Napi::Object& obj, Key key, const Napi::Value& value) { obj.Set(keyOf(obj.Env(), key), value); }

}  // namespace rnnkit::addon
