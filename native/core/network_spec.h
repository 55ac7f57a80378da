// What a network is: the recurrent stack (cell, sizes, depth, directions), its input (dense features or one-hot
// symbols) and an optional dense head. Parameters are laid out and named as PyTorch's nn.RNN/LSTM/GRU state_dict,
// followed by the head as `head.weight` [V, D*H] and `head.bias` [V].
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cell.h"

namespace rnnkit {

struct NetworkSpec {
  CellKind cell = CellKind::Lstm;
  int inputSize = 0;  // dense input features; 0 when the input is one-hot symbols
  int vocabSize = 0;  // one-hot input over this many symbols (token ids); 0 for dense input
  int hiddenSize = 0;
  int numLayers = 1;
  bool bidirectional = false;
  bool resetAfter = true;  // GRU only: false gives the reset-before variant of Keras/TF.js
  GateActivation gateActivation = GateActivation::Sigmoid;  // LSTM and GRU only
  int headSize = 0;        // 0: no head, the output is the top layer's y
  bool hasSeed = false;
  uint64_t seed = 0;

  int directions() const { return bidirectional ? 2 : 1; }
  int layerInputSize(int layer) const {
    return layer == 0 ? (vocabSize > 0 ? vocabSize : inputSize) : hiddenSize * directions();
  }
  int outputSize() const { return headSize > 0 ? headSize : hiddenSize * directions(); }
  // Throws ERR_RNNKIT_ARGUMENT naming the first problem.
  void validate() const;
};

struct ParamEntry {
  std::string name;
  std::vector<int> shape;
  std::size_t offset = 0;  // in floats, into the flat parameter vector
  std::size_t size = 0;
};

// Offsets of every parameter in one flat vector (the same layout for parameters, gradients and optimizer state).
class ParamLayout {
 public:
  // The most a model may have: tensors, and floats in all (8 GiB). Caps on what a model file may ask for, reached
  // while the layout is computed, before any parameter memory exists.
  static constexpr std::size_t kMaxTensors = std::size_t(1) << 16;
  static constexpr std::size_t kMaxFloats = std::size_t(1) << 31;
  // Adds a tensor at the end; returns its offset. Throws ERR_RNNKIT_ARGUMENT past the caps above.
  std::size_t add(const std::string& name, std::vector<int> shape);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  std::size_t total() const { return total_; }
  // nullptr when there is no parameter of that name.
  const ParamEntry* find(const std::string& name) const;
  const ParamEntry& at(const std::string& name) const;

 private:
  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> entry
  std::size_t total_ = 0;
};

std::string recurrentParamName(const char* kind, int layer, bool reverse);

}  // namespace rnnkit
