// Errors raised by the core. Each carries a stable code that the addon exposes to JavaScript as `err.code`.
#pragma once

#include <stdexcept>
#include <string>

namespace rnnkit {

enum class ErrorCode {
  Argument,      // a malformed option or spec (ERR_RNNKIT_ARGUMENT)
  Type,          // a value of the wrong type, e.g. a Float64Array where a Float32Array is needed (ERR_RNNKIT_TYPE)
  Shape,         // tensor shapes or sizes that do not fit (ERR_RNNKIT_SHAPE)
  Value,         // a value out of range: NaN, a length past the sequence, a token past the vocabulary (ERR_RNNKIT_VALUE)
  UnknownParam,  // a parameter name the model does not have (ERR_RNNKIT_UNKNOWN_PARAM)
  State,         // a call out of order, e.g. backward without a training forward (ERR_RNNKIT_STATE)
  Disposed,      // use after dispose() (ERR_RNNKIT_DISPOSED)
  Busy,          // the handle is running another call (ERR_RNNKIT_BUSY)
  Format,        // a malformed or hostile file (ERR_RNNKIT_FORMAT)
  File,          // a file that cannot be read: missing, not a regular file, too large (ERR_RNNKIT_FILE)
  Device,        // a device that is not available (ERR_RNNKIT_DEVICE)
  NonFinite,     // a training step whose loss or gradient norm is not finite; the weights were left alone
                 // (ERR_RNNKIT_NON_FINITE)
  Unsupported,   // an operation this model cannot do, e.g. a step-at-a-time stream over a bidirectional layer
                 // (ERR_RNNKIT_UNSUPPORTED)
  OutOfMemory,   // an allocation failed (ERR_RNNKIT_OUT_OF_MEMORY)
  Internal,      // a bug (ERR_RNNKIT_INTERNAL)
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

inline void require(bool ok, ErrorCode code, const std::string& message) {
  if (!ok) fail(code, message);
}

}  // namespace rnnkit
