#include "js_errors.h"

#include <new>

namespace rnnkit::addon {

Napi::Error makeError(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error err = code == ErrorCode::Type ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, errorCodeName(code)));
  return err;
}

Napi::Value rejectedPromise(Napi::Env env, const Napi::Value& reason) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(reason);
  return d.Promise();
}

Napi::Value guard(Napi::Env env, const std::function<Napi::Value()>& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JS error
  } catch (const Error& e) {
    throw makeError(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw makeError(env, ErrorCode::OutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    throw makeError(env, ErrorCode::Internal, std::string("internal error: ") + e.what());
  }
}

void CapturedError::capture(const std::function<void()>& fn) noexcept {
  try {
    fn();
    return;
  } catch (const Error& e) {
    code = e.code();
    message = e.what();
  } catch (const std::bad_alloc&) {
    code = ErrorCode::OutOfMemory;
    message = "out of memory";
  } catch (const std::exception& e) {
    code = ErrorCode::Internal;
    message = std::string("internal error: ") + e.what();
  } catch (...) {
    code = ErrorCode::Internal;
    message = "internal error";
  }
  set = true;
}

}  // namespace rnnkit::addon
