#include "js_convert.h"
#include "property_keys.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "../core/error.h"

namespace rnnkit::addon {

namespace {
const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

constexpr double kMaxSafeInteger = 9007199254740991.0;
}  // namespace

std::string numberText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string typeName(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsTypedArray()) return typedArrayName(value.As<Napi::TypedArray>().TypedArrayType());
  if (value.IsArray()) return "Array";
  if (value.IsArrayBuffer()) return "ArrayBuffer";
  if (value.IsBuffer()) return "Buffer";
  if (value.IsNumber()) return "number";
  if (value.IsString()) return "string";
  if (value.IsBoolean()) return "boolean";
  if (value.IsFunction()) return "function";
  if (value.IsObject()) return "object";
  return "value";
}

std::vector<float> readFloat32(const Napi::Value& value, const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(ErrorCode::Type, what + " must be a Float32Array, got " + typeName(value) +
                              " (convert with Float32Array.from(...))");
  Napi::Float32Array arr = value.As<Napi::Float32Array>();
  std::vector<float> out(arr.ElementLength());
  if (!out.empty()) std::memcpy(out.data(), arr.Data(), out.size() * sizeof(float));
  return out;
}

std::vector<int32_t> readInt32(const Napi::Value& value, const std::string& what) {
  std::vector<int32_t> out;
  auto checked = [&](double v, std::size_t i) {
    if (!std::isfinite(v) || std::floor(v) != v || v < -2147483648.0 || v > 2147483647.0)
      fail(ErrorCode::Value, what + "[" + std::to_string(i) + "] must be an integer, got " +
                                 numberText(v));
    return (int32_t)v;
  };
  if (value.IsTypedArray()) {
    // The element pointer as N-API gives it, whatever backs the view: an ArrayBuffer or a SharedArrayBuffer (which
    // is not an ArrayBuffer to N-API, so going through TypedArray::ArrayBuffer() would fail). Copied below.
    napi_typedarray_type type;
    std::size_t n = 0;
    void* base = nullptr;
    napi_status st = napi_get_typedarray_info(value.Env(), value, &type, &n, &base, nullptr, nullptr);
    if (st != napi_ok) fail(ErrorCode::Type, what + " could not be read as a typed array");
    if (n > 0 && base == nullptr) fail(ErrorCode::Type, what + " is a view of a detached buffer");
    out.resize(n);
    switch (type) {
      case napi_int32_array: if (n) std::memcpy(out.data(), base, n * sizeof(int32_t)); break;
      case napi_int8_array: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t*>(base)[i]; break;
      case napi_uint8_array:
      case napi_uint8_clamped_array: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t*>(base)[i]; break;
      case napi_int16_array: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<int16_t*>(base)[i]; break;
      case napi_uint16_array: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t*>(base)[i]; break;
      case napi_uint32_array: for (std::size_t i = 0; i < n; ++i) out[i] = checked(static_cast<uint32_t*>(base)[i], i); break;
      case napi_float32_array: for (std::size_t i = 0; i < n; ++i) out[i] = checked(static_cast<float*>(base)[i], i); break;
      case napi_float64_array: for (std::size_t i = 0; i < n; ++i) out[i] = checked(static_cast<double*>(base)[i], i); break;
      default:
        fail(ErrorCode::Type, what + " must be an Int32Array or an Array of integers, got " + typeName(value));
    }
    return out;
  }
  if (value.IsArray()) {
    Napi::Array arr = value.As<Napi::Array>();
    const uint32_t n = arr.Length();
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber())
        fail(ErrorCode::Type, what + "[" + std::to_string(i) + "] must be a number, got " + typeName(v));
      out[i] = checked(v.As<Napi::Number>().DoubleValue(), i);
    }
    return out;
  }
  fail(ErrorCode::Type, what + " must be an Int32Array or an Array of integers, got " + typeName(value));
}

std::vector<long long> readShape(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) fail(ErrorCode::Type, what + " must be an Array of integers, got " + typeName(value));
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() > 8) fail(ErrorCode::Shape, what + " has too many dimensions");
  std::vector<long long> shape(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) shape[i] = readDim(arr.Get(i), what, i);
  return shape;
}

long long readDim(const Napi::Value& v, const std::string& what, std::size_t index) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d > kMaxSafeInteger)
    fail(ErrorCode::Shape, what + "[" + std::to_string(index) + "] must be a non-negative integer, got " +
                               (v.IsNumber() ? numberText(d) : typeName(v)));
  return (long long)d;
}

namespace {
std::string foldName(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_' && c != '-' && c != ' ') out.push_back((char)std::tolower((unsigned char)c));
  return out;
}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string closestName(const std::string& name, const std::vector<std::string>& known) {
  const std::string folded = foldName(name);
  for (const std::string& k : known)
    if (foldName(k) == folded) return k;
  // A name cut short or run on ('class' for 'classes', 'batchSizes' for 'batchSize').
  for (const std::string& k : known) {
    const std::string fk = foldName(k);
    const std::size_t shorter = std::min(fk.size(), folded.size());
    if (shorter >= 3 && fk.compare(0, shorter, folded, 0, shorter) == 0) return k;
  }
  std::string best;
  std::size_t bestDistance = std::max<std::size_t>(1, std::min<std::size_t>(3, folded.size() / 3)) + 1;
  for (const std::string& k : known) {
    const std::size_t d = editDistance(folded, foldName(k));
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return best;
}

void checkOptionNames(const Napi::Object& obj, const std::string& what, const std::vector<std::string>& known) {
  napi_env env = obj.Env();
  napi_value names;
  napi_status st = napi_get_all_property_names(env, obj, napi_key_own_only,
                                               (napi_key_filter)(napi_key_enumerable | napi_key_skip_symbols),
                                               napi_key_numbers_to_strings, &names);
  if (st != napi_ok) NAPI_THROW_IF_FAILED_VOID(env, st);
  Napi::Array list(env, names);
  const uint32_t n = list.Length();
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value key = list.Get(i);
    if (!key.IsString()) continue;
    const std::string name = key.As<Napi::String>().Utf8Value();
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string message = "unknown option '" + name + "' in " + what;
    const std::string suggestion = closestName(name, known);
    if (!suggestion.empty()) message += ": did you mean '" + suggestion + "'?";
    message += " (known options: ";
    for (std::size_t k = 0; k < known.size(); ++k) message += (k ? ", " : "") + known[k];
    message += ")";
    fail(ErrorCode::Argument, message);
  }
}

bool has(const Napi::Object& obj, const char* key) { return !obj.Get(key).IsUndefined(); }

Napi::Object requireObject(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray())
    fail(ErrorCode::Type, what + " must be an object, got " + typeName(value));
  return value.As<Napi::Object>();
}

bool optionalBool(const Napi::Value& v, const char* name, bool fallback) {
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) fail(ErrorCode::Type, std::string(name) + " must be a boolean, got " + typeName(v));
  return v.As<Napi::Boolean>().Value();
}

bool optionalBool(const Napi::Object& obj, const char* key, bool fallback) {
  return optionalBool(obj.Get(key), key, fallback);
}

double optionalNumber(const Napi::Object& obj, const char* key, double fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) fail(ErrorCode::Type, std::string(key) + " must be a number, got " + typeName(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) fail(ErrorCode::Value, std::string(key) + " must not be NaN");
  return d;
}

int optionalInt(const Napi::Object& obj, const char* key, int fallback) {
  if (!has(obj, key)) return fallback;
  double d = optionalNumber(obj, key, fallback);
  if (!std::isfinite(d) || std::floor(d) != d || d < -2147483648.0 || d > 2147483647.0)
    fail(ErrorCode::Value, std::string(key) + " must be an integer, got " + numberText(d));
  return (int)d;
}

std::string optionalString(const Napi::Object& obj, const char* key, const std::string& fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) fail(ErrorCode::Type, std::string(key) + " must be a string, got " + typeName(v));
  return v.As<Napi::String>().Utf8Value();
}

Napi::Float32Array toFloat32Array(Napi::Env env, const std::vector<float>& data) {
  Napi::Float32Array arr = Napi::Float32Array::New(env, data.size());
  if (!data.empty()) std::memcpy(arr.Data(), data.data(), data.size() * sizeof(float));
  return arr;
}

Napi::Array toShape(Napi::Env env, const std::vector<long long>& shape) {
  Napi::Array arr = Napi::Array::New(env, shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) arr.Set((uint32_t)i, Napi::Number::New(env, (double)shape[i]));
  return arr;
}

Napi::Object toTensor(Napi::Env env, const std::vector<float>& data, const std::vector<long long>& shape) {
  Napi::Object t = Napi::Object::New(env);
  setField(t, Key::Data, toFloat32Array(env, data));
  setField(t, Key::Shape, toShape(env, shape));
  return t;
}

}  // namespace rnnkit::addon
