// A stage of a model's pipeline (embedding, recurrent stack, dense, dropout). A stage owns its output and
// input-gradient buffers, so the activations a training forward leaves behind stay valid for backward.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "device_buffer.h"
#include "model_spec.h"
#include "network_spec.h"
#include "random.h"

namespace rnnkit {

// What flows between stages, in backend memory: rows of features ([T*B, F] time-major for a sequence, [B, F]
// after a recurrent stage that returns only its last step), or token ids before the first stage that reads them.
struct Activations {
  const float* data = nullptr;
  const int32_t* tokens = nullptr;
  int rows = 0;
  int features = 0;
  bool sequence = true;
};

struct PassContext {
  Backend* be = nullptr;
  int T = 0, B = 0;
  const int32_t* lengths = nullptr;  // [B] or null
  bool train = false;
  float* params = nullptr;
  float* grads = nullptr;
  Random* rng = nullptr;  // dropout masks
  // An inference pass with int8 recurrent products (Network::setInt8Inference), and the version of the parameters
  // (it changes whenever they do), so that stages re-quantize only after a change.
  bool int8 = false;
  uint64_t paramsVersion = 0;
};

// The recurrent state a stage reads and writes during one pass (all [L*D, B, H], null = zero / not wanted).
struct StateIo {
  const float* h0 = nullptr;
  const float* c0 = nullptr;
  float* hn = nullptr;
  float* cn = nullptr;
  const float* dhn = nullptr;
  const float* dcn = nullptr;
  float* dh0 = nullptr;
  float* dc0 = nullptr;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Adds this stage's parameters to the layout and remembers their offsets.
  virtual void declareParams(ParamLayout& layout) = 0;
  // Writes this stage's initial parameter values into the host copy of the flat vector.
  virtual void initParams(Random& rng, float* host) const = 0;
  virtual Activations forward(const PassContext& ctx, const Activations& in) = 0;
  // dOut has the shape of the last forward's output. Returns the gradient of the input (or null when
  // needInputGrad is false or the input is token ids). Parameter gradients accumulate.
  virtual const float* backward(const PassContext& ctx, const Activations& in, const float* dOut,
                                bool needInputGrad) = 0;
  // Recurrent stages only: floats of state per batch row ([L*D, B, H] -> L*D*H), and whether there is a cell state.
  virtual int statePerRow() const { return 0; }
  virtual bool hasCellState() const { return false; }
  StateIo state;  // set by the network before each pass
};

std::unique_ptr<Stage> makeStage(Backend& be, const StageSpec& spec, int inputFeatures, int vocab);

}  // namespace rnnkit
