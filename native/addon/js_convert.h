// Reading JavaScript values into owned C++ data (always copied, so that JS may reuse its arrays at once and no
// external ArrayBuffer is ever handed back, which Electron's V8 sandbox forbids), and making JS results.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rnnkit::addon {

// A Float32Array, or throws ERR_RNNKIT_TYPE naming `what` and the type it got.
std::vector<float> readFloat32(const Napi::Value& value, const std::string& what);
// Integers from an Int32Array, a smaller integer typed array, or an Array of integers (ERR_RNNKIT_VALUE for
// NaN, fractions or values outside int32).
std::vector<int32_t> readInt32(const Napi::Value& value, const std::string& what);
// An Array of non-negative safe integers.
std::vector<long long> readShape(const Napi::Value& value, const std::string& what);
// One dimension of a shape, given as a value of its own (`what`[index] in the message): the check readShape applies
// to each element.
long long readDim(const Napi::Value& value, const std::string& what, std::size_t index);

// Optional typed fields of an options object: absent or undefined -> the fallback.
bool optionalBool(const Napi::Object& obj, const char* key, bool fallback);
// The same for a value already read (`name` for the message).
bool optionalBool(const Napi::Value& value, const char* name, bool fallback);
double optionalNumber(const Napi::Object& obj, const char* key, double fallback);
int optionalInt(const Napi::Object& obj, const char* key, int fallback);
std::string optionalString(const Napi::Object& obj, const char* key, const std::string& fallback);
bool has(const Napi::Object& obj, const char* key);
Napi::Object requireObject(const Napi::Value& value, const std::string& what);

std::string typeName(const Napi::Value& value);
// A number as JavaScript would print it (NaN, Infinity, 3.7, 4294967301), for messages.
std::string numberText(double v);

// Throws ERR_RNNKIT_ARGUMENT when `obj` has an own enumerable property that is not one of `known`, naming it and
// suggesting the closest known name (Keras's `return_sequences` -> `returnSequences`, a typo -> the word meant).
// The one check of option names: the parsers call it, and JavaScript reaches it as native.checkOptionNames.
void checkOptionNames(const Napi::Object& obj, const std::string& what, const std::vector<std::string>& known);
// The closest of `known` to `name` (same letters ignoring case, '_' and '-'; else a small edit distance), or "".
std::string closestName(const std::string& name, const std::vector<std::string>& known);

Napi::Float32Array toFloat32Array(Napi::Env env, const std::vector<float>& data);
Napi::Array toShape(Napi::Env env, const std::vector<long long>& shape);
// { data: Float32Array, shape: number[] }
Napi::Object toTensor(Napi::Env env, const std::vector<float>& data, const std::vector<long long>& shape);

}  // namespace rnnkit::addon
