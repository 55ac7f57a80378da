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

// A failure captured on a worker thread, to be turned into a JS error back on the main thread.
struct CapturedError {
  bool set = false;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  // Runs fn, capturing what it throws. Never throws.
  void capture(const std::function<void()>& fn) noexcept;
};

}  // namespace rnnkit::addon
