#include "error.h"

namespace rnnkit {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Argument: return "ERR_RNNKIT_ARGUMENT";
    case ErrorCode::Type: return "ERR_RNNKIT_TYPE";
    case ErrorCode::Shape: return "ERR_RNNKIT_SHAPE";
    case ErrorCode::Value: return "ERR_RNNKIT_VALUE";
    case ErrorCode::UnknownParam: return "ERR_RNNKIT_UNKNOWN_PARAM";
    case ErrorCode::State: return "ERR_RNNKIT_STATE";
    case ErrorCode::Disposed: return "ERR_RNNKIT_DISPOSED";
    case ErrorCode::Busy: return "ERR_RNNKIT_BUSY";
    case ErrorCode::Format: return "ERR_RNNKIT_FORMAT";
    case ErrorCode::File: return "ERR_RNNKIT_FILE";
    case ErrorCode::Device: return "ERR_RNNKIT_DEVICE";
    case ErrorCode::NonFinite: return "ERR_RNNKIT_NON_FINITE";
    case ErrorCode::Unsupported: return "ERR_RNNKIT_UNSUPPORTED";
    case ErrorCode::OutOfMemory: return "ERR_RNNKIT_OUT_OF_MEMORY";
    case ErrorCode::Internal: return "ERR_RNNKIT_INTERNAL";
  }
  return "ERR_RNNKIT_INTERNAL";
}

}  // namespace rnnkit
