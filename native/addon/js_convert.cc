#include "js_convert.h"
#include "property_keys.h"

#include <cmath>
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
                                 (std::isnan(v) ? std::string("NaN") : std::to_string(v)));
    return (int32_t)v;
  };
  if (value.IsTypedArray()) {
    Napi::TypedArray ta = value.As<Napi::TypedArray>();
    const std::size_t n = ta.ElementLength();
    out.resize(n);
    void* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    switch (ta.TypedArrayType()) {
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
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d > kMaxSafeInteger)
      fail(ErrorCode::Shape, what + "[" + std::to_string(i) + "] must be a non-negative integer, got " +
                                 (v.IsNumber() ? std::to_string(d) : typeName(v)));
    shape[i] = (long long)d;
  }
  return shape;
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
    fail(ErrorCode::Value, std::string(key) + " must be an integer, got " + std::to_string(d));
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
