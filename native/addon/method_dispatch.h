// How a handle's JavaScript methods are entered: the receiver checked by its type tag (Handle::fromObject), C++
// failures turned into coded JS errors in one place (guard), and for Promise methods a wrong receiver rejecting the
// Promise like every other failure of theirs. Shared by the Network, GraphModel and Seq2Seq handles; each names its
// methods as dispatchX<&Handle::Method>.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

#include "../core/error.h"
#include "js_convert.h"
#include "js_errors.h"

namespace rnnkit::addon {

template <typename MethodPointer>
struct MethodClass;
template <typename Handle>
struct MethodClass<Napi::Value (Handle::*)(const Napi::CallbackInfo&)> {
  using type = Handle;
};

template <auto Method>
using HandleOf = typename MethodClass<decltype(Method)>::type;

inline constexpr const char* kReceiver = "the receiver of this method";

// No call marking: dispose() and isDisposed(), allowed at any time (even from a getter while a call reads its
// arguments), and methods that follow the call protocol themselves.
template <auto Method>
Napi::Value dispatchAlways(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return (HandleOf<Method>::fromObject(info.This(), kReceiver)->*Method)(info); });
}

// A synchronous method of a model handle (model_handle.h): marked as reading its arguments for the whole call, so
// that a getter which disposes the handle or calls it again is refused (Handle::Reading), and refused while the
// handle is disposed or runs a Promise call (Handle::checkUsable).
template <auto Method>
Napi::Value dispatchReading(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    HandleOf<Method>* self = HandleOf<Method>::fromObject(info.This(), kReceiver);
    typename HandleOf<Method>::Reading reading(*self);
    self->checkUsable();
    return (self->*Method)(info);
  });
}

// A Promise-returning method: a receiver of the wrong type rejects the Promise instead of throwing synchronously.
template <typename Handle, typename Body>
Napi::Value enterPromise(const Napi::CallbackInfo& info, Body&& body) {
  Napi::Env env = info.Env();
  Handle* self = nullptr;
  try {
    self = Handle::fromObject(info.This(), kReceiver);
  } catch (const Error& e) {
    return rejectedPromise(env, makeError(env, e.code(), e.what()).Value());
  }
  return guard(env, [&] { return body(self); });
}

template <auto Method>
Napi::Value dispatchPromise(const Napi::CallbackInfo& info) {
  return enterPromise<HandleOf<Method>>(info, [&](auto* self) { return (self->*Method)(info); });
}

// A job's synchronous method and its Promise twin (Job reads its arguments from info; Handle::runJob runs it under
// the handle's call protocol).
template <typename Handle, typename Job>
Napi::Value dispatchJobSync(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return Handle::fromObject(info.This(), kReceiver)->template runJob<Job>(info, false); });
}

template <typename Handle, typename Job>
Napi::Value dispatchJob(const Napi::CallbackInfo& info) {
  return enterPromise<Handle>(info, [&](Handle* self) { return self->template runJob<Job>(info, true); });
}

// A prototype's methods, each a plain function that checks its receiver (the dispatchX above).
struct MethodEntry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};

template <std::size_t N>
void defineMethods(Napi::Env env, Napi::Function ctor, const MethodEntry (&methods)[N]) {
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  for (const MethodEntry& m : methods) proto.Set(m.name, Napi::Function::New(env, m.fn, m.name));
}

inline Napi::Value argAt(const Napi::CallbackInfo& info, std::size_t i) {
  return info.Length() > i ? info[i] : info.Env().Undefined();
}

inline std::string argString(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    fail(ErrorCode::Type, std::string(what) + " must be a string, got " +
                              (info.Length() > i ? typeName(info[i]) : std::string("nothing")));
  return info[i].As<Napi::String>().Utf8Value();
}

}  // namespace rnnkit::addon
