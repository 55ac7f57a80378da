// Which class targets a softmax cross-entropy counts: the one rule for every model of the core (Network's loss and
// Seq2Seq's). A target equal to the ignore index (-1 unless the caller names another, as PyTorch's ignore_index) is
// left out; so is a position the caller marks as padding (past its row's length), whose target is not even read;
// every other target must be a class in [0, classes). The loss is then the mean over the counted positions. The
// kernels (Backend::softmaxCrossEntropy) read the result of classTargetsForKernel: the class, or -1 where a position
// is left out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "error.h"

namespace rnnkit {

constexpr int32_t kDefaultIgnoreIndex = -1;

// Checks targets[0, n) against the rule and writes the kernel's targets to out (may alias targets); returns the
// number of counted positions. padding(i) tells whether position i lies past its row's length. `what` names the
// targets in errors ("target", "seq2seq: target").
template <class Padding>
std::size_t classTargetsForKernel(const int32_t* targets, std::size_t n, int classes, int32_t ignoreIndex,
                                  Padding padding, int32_t* out, const char* what) {
  std::size_t counted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int32_t c = targets[i];
    if (c == ignoreIndex || padding(i)) {
      out[i] = -1;
      continue;
    }
    if (c < 0 || c >= classes)
      fail(ErrorCode::Value, std::string(what) + " " + std::to_string(c) + " at index " + std::to_string(i) +
                                 " is not a class of the output (it has " + std::to_string(classes) +
                                 "); mark a position left out of the loss with the ignore index (" +
                                 std::to_string(ignoreIndex) + ")");
    out[i] = c;
    ++counted;
  }
  return counted;
}

}  // namespace rnnkit
