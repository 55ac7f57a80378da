// The one place where C++ failures become JavaScript errors with a stable `code`.
#pragma once

#include <napi.h>

#include <functional>
#include <string>

#include "../core/error.h"

namespace rnnkit::addon {

// A JS Error (TypeError for ErrorCode::Type) with err.code = "ERR_RNNKIT_...".
Napi::Error makeError(Napi::Env env, ErrorCode code, const std::string& message);

// Run body; any rnnkit::Error, std::bad_alloc or other std::exception is rethrown as a coded JS error.
Napi::Value guard(Napi::Env env, const std::function<Napi::Value()>& body);

// A Promise already rejected with reason.
Napi::Value rejectedPromise(Napi::Env env, const Napi::Value& reason);

// Run body for a method that returns a Promise: an rnnkit::Error it throws (a bad argument, a disposed handle), or a
// JavaScript exception raised by the caller's own code while it ran (a getter, a Proxy trap), rejects the returned
// Promise instead of being thrown. A template, so that the awaited stream step pays no std::function.
template <typename Body>
Napi::Value rejectOnThrow(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    return rejectedPromise(env, makeError(env, e.code(), e.what()).Value());
  } catch (const Napi::Error& e) {
    return rejectedPromise(env, e.Value());
  }
}

// A failure captured on a worker thread, to be turned into a JS error back on the main thread.
struct CapturedError {
  bool set = false;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  // Runs fn, capturing what it throws. Never throws.
  void capture(const std::function<void()>& fn) noexcept;
};

}  // namespace rnnkit::addon
