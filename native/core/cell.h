// The recurrent cells and their equations, named as in PyTorch.
//
//   rnn_tanh / rnn_relu:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
//   lstm (gates i,f,g,o): c' = f*c + i*g,  h' = o*tanh(c')
//   gru  (gates r,z,n):   h' = (1-z)*n + z*h, with
//        reset-after  (PyTorch, cuDNN, Keras reset_after=True):  n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
//        reset-before (Keras reset_after=False, TF.js):          n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)
// The gates (LSTM i, f, o; GRU r, z) use a GateActivation; the candidate (g, n) and the cell output are always tanh.
#pragma once

#include <string>

namespace rnnkit {

enum class CellKind { RnnTanh, RnnRelu, Lstm, Gru };

// Gates stacked in one weight matrix: G*H rows.
inline int gateCount(CellKind cell) {
  switch (cell) {
    case CellKind::Lstm: return 4;
    case CellKind::Gru: return 3;
    default: return 1;
  }
}

// Per-step activations kept by a training forward for backward, in units of H per batch row:
// rnn keeps nothing beyond h' itself; lstm keeps i,f,g,o; gru keeps r,z,n and either W_hn h + b_hn (reset-after)
// or r*h (reset-before).
inline int savedWidth(CellKind cell) {
  switch (cell) {
    case CellKind::Lstm: return 4;
    case CellKind::Gru: return 4;
    default: return 0;
  }
}

inline bool hasCellState(CellKind cell) { return cell == CellKind::Lstm; }
inline bool hasGates(CellKind cell) { return cell == CellKind::Lstm || cell == CellKind::Gru; }

// Sigmoid is PyTorch's (and cuDNN's) only choice. HardSigmoid is TF.js's default recurrentActivation (and Keras 2's
// hard_sigmoid): clip(0.2 x + 0.5, 0, 1), a slope of 0.2 between the kinks at x = -2.5 and 2.5 and 0 outside them.
// Backward computes the slope from the gate's output y, which cannot tell a pre-activation exactly at a kink (y = 0
// or 1 without clipping) from a clipped one: there the slope taken is 0, where TF.js's clipByValue passes 0.2.
// One byte, so that it fits the padding after resetAfter in the kernel step structs, whose layout stays as it was.
enum class GateActivation : unsigned char { Sigmoid, HardSigmoid };

const char* cellName(CellKind cell);
// Accepts "rnn_tanh", "rnn_relu", "lstm", "gru" (and "rnn" for rnn_tanh). Throws ERR_RNNKIT_ARGUMENT otherwise.
CellKind parseCell(const std::string& name);
const char* gateActivationName(GateActivation activation);
// Accepts "sigmoid" and "hard_sigmoid". Throws ERR_RNNKIT_ARGUMENT otherwise.
GateActivation parseGateActivation(const std::string& name);

}  // namespace rnnkit
