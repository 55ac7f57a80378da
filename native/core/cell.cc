#include "cell.h"

#include "error.h"

namespace rnnkit {

const char* cellName(CellKind cell) {
  switch (cell) {
    case CellKind::RnnTanh: return "rnn_tanh";
    case CellKind::RnnRelu: return "rnn_relu";
    case CellKind::Lstm: return "lstm";
    case CellKind::Gru: return "gru";
  }
  return "?";
}

CellKind parseCell(const std::string& name) {
  if (name == "rnn_tanh" || name == "rnn" || name == "tanh") return CellKind::RnnTanh;
  if (name == "rnn_relu" || name == "relu") return CellKind::RnnRelu;
  if (name == "lstm") return CellKind::Lstm;
  if (name == "gru") return CellKind::Gru;
  fail(ErrorCode::Argument, "unknown cell '" + name + "': expected one of rnn_tanh, rnn_relu, lstm, gru");
}

const char* gateActivationName(GateActivation activation) {
  return activation == GateActivation::HardSigmoid ? "hard_sigmoid" : "sigmoid";
}

GateActivation parseGateActivation(const std::string& name) {
  if (name == "sigmoid") return GateActivation::Sigmoid;
  if (name == "hard_sigmoid") return GateActivation::HardSigmoid;
  fail(ErrorCode::Argument, "unknown gate activation '" + name + "': expected sigmoid or hard_sigmoid");
}

}  // namespace rnnkit
