// Property names that every call reads or writes (a tensor's data and shape, the fields of a sequence input),
// made once per environment. A name passed as a C string is converted and looked up in V8's string table at each
// access; for a small stream step, whose arithmetic is a few microseconds, that lookup was a tenth of the call.
#pragma once

#include <napi.h>

namespace rnnkit::addon {

enum class Key : int { Data, Shape, X, Tokens, Lengths, H0, C0, BatchFirst, Output, Count };

struct PropertyKeys {
  // The names as a JS array, indexed by Key (N-API on Node 20 cannot hold a reference to a string itself).
  Napi::Reference<Napi::Array> names;
};

// Fills `keys` for `env` (at module initialization).
void createPropertyKeys(Napi::Env env, PropertyKeys& keys);

// obj[key]; undefined when absent.
Napi::Value getField(const Napi::Object& obj, Key key);
// obj[key] = value.
void setField(Napi::Object& obj, Key key, const Napi::Value& value);

}  // namespace rnnkit::addon
