// The seam between the core and a compute device. The core orchestrates (which GEMM, which kernel, in which order);
// a backend owns memory and runs the arithmetic. Every float/int pointer passed to these methods is backend memory
// (from alloc), except where a parameter says "host".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cell.h"

namespace rnnkit {

// One time step of a cell over a batch, forward. Row b takes part iff lengths == nullptr or t < lengths[b];
// a row that does not keeps its state (hNext = hPrev, cNext = cPrev) and writes 0 to y, which gives PyTorch's
// packed-sequence semantics for both directions.
struct CellForwardStep {
  CellKind cell = CellKind::Lstm;
  bool resetAfter = true;  // GRU only
  GateActivation gate = GateActivation::Sigmoid;  // LSTM and GRU
  int batch = 0, hidden = 0;
  const float* gi = nullptr;  // [B, G*H], row stride ldgi: W_ih x + b_ih
  int ldgi = 0;
  const float* gh = nullptr;  // [B, G*H], row stride ldgh: W_hh h + b_hh (reset-before GRU: n columns hold W_hn(r*h) + b_hn)
  int ldgh = 0;
  const float* hPrev = nullptr;  // [B, H]
  const float* cPrev = nullptr;  // [B, H], lstm only
  float* hNext = nullptr;
  float* cNext = nullptr;
  float* y = nullptr;  // [B, H] with row stride ldy, or nullptr
  int ldy = 0;
  float* saved = nullptr;  // [B, savedWidth*H] for backward, or nullptr (inference)
  const int32_t* lengths = nullptr;
  int t = 0;
  // CPU inference over token ids (one-hot input) only: row b's gi is row giTokens[b] of a table [vocab, G*H] at gi
  // (each token's W_ih column plus the bias, the sums a per-token copy would hold) rather than row b of gi.
  const int32_t* giTokens = nullptr;
};

// Row b of a step's input projection.
inline const float* inputGatesRow(const CellForwardStep& s, int b) {
  return s.gi + (std::size_t)(s.giTokens ? s.giTokens[b] : b) * s.ldgi;
}

// One time step backward. dh is the gradient reaching hNext from later steps (and dhn); dy (may be null) is added
// for rows that take part. Writes the pre-activation gate gradients (dGi for the input side, dGh for the recurrent
// side; they differ only for the reset-after GRU, and may alias otherwise) and the direct parts of dhPrev / dcPrev,
// to which the core then adds dGh x W_hh. A row that does not take part passes dh and dc through and gets zero
// gate gradients.
struct CellBackwardStep {
  CellKind cell = CellKind::Lstm;
  bool resetAfter = true;
  GateActivation gate = GateActivation::Sigmoid;
  int batch = 0, hidden = 0;
  const float* saved = nullptr;
  const float* hPrev = nullptr;
  const float* hNext = nullptr;
  const float* cPrev = nullptr;
  const float* cNext = nullptr;
  const float* dy = nullptr;
  int ldy = 0;
  const float* dh = nullptr;
  const float* dc = nullptr;
  float* dGi = nullptr;
  int ldgi = 0;
  float* dGh = nullptr;
  int ldgh = 0;
  float* dhPrev = nullptr;
  float* dcPrev = nullptr;
  const int32_t* lengths = nullptr;
  int t = 0;
};

struct SgdHyper {
  float lr, momentum, dampening, weightDecay;
  bool nesterov, maximize;
};
struct AdamHyper {
  float lr, beta1, beta2, eps, weightDecay;
  bool decoupled;  // AdamW
  bool amsgrad, maximize;
};
struct RmspropHyper {
  float lr, alpha, eps, weightDecay, momentum;
  bool centered, maximize;
};

// A weight matrix that every step of a time loop multiplies by: op(B) is N x K (B itself [K, N] with row stride
// ldb, or with transB B is [N, K]). A backend may give it a layout of its own once per pass, in `panels` (storage
// the caller reserves with the size stepWeightsBytes asks for), instead of re-arranging it at every step; with
// `panels` null the steps read B in place.
struct StepWeights {
  const float* B = nullptr;
  int ldb = 0;
  bool transB = false;
  int N = 0, K = 0;
  float* panels = nullptr;
  // > 0: B is the recurrent weight W_hh [G*H, H] of a cell with this many gates (transB, N = G*H, K = H), set up
  // for recurrentStep, whose layout of the product's columns (gh) is then the backend's own.
  int cellGates = 0;
};

// One product C[M, N] = A[M, K] * B[N, K]^T + beta * C of a time step with few rows of A (a stream step): the
// weights B are read once, so the step is bound by how fast they stream in.
struct RowProduct {
  int M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int lda = 0;
  const float* B = nullptr;
  int ldb = 0;
  float beta = 0.f;
  float* C = nullptr;
  int ldc = 0;
};

// One int8 product C[M, N] = beta * C + A[M, K] x W^T, W in the backend's int8 form (Backend::int8PackWeights);
// with a bias (and beta 0), C = bias + A x W^T, bias a row of N added to every row (the sums of broadcasting it
// into C and adding the product with beta 1, without the pass that writes C first).
struct Int8Product {
  int M = 0;
  const float* A = nullptr;
  int lda = 0;
  const void* packed = nullptr;
  int N = 0, K = 0;
  float beta = 0.f;
  float* C = nullptr;
  int ldc = 0;
  const float* bias = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // What does the matrix work, for backendInfo() ("openblas", "builtin-avx512", ...).
  virtual std::string gemmName() const = 0;

  // Memory. alloc throws ERR_RNNKIT_OUT_OF_MEMORY on failure; free(nullptr) is a no-op.
  virtual void* alloc(std::size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void upload(void* dst, const void* hostSrc, std::size_t bytes) = 0;
  virtual void download(void* hostDst, const void* src, std::size_t bytes) = 0;
  // Whether alloc's memory is the host's own, so that host code may read and write it in place (the CPU backend):
  // a sequence is then transposed straight into or out of it instead of through a staging copy and a transfer.
  virtual bool hostMemory() const { return false; }
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void fill(float* p, std::size_t n, float value) = 0;
  // y += alpha * x
  virtual void axpy(std::size_t n, float alpha, const float* x, float* y) = 0;
  // Wait until every kernel issued so far has finished (a no-op on the CPU).
  virtual void synchronize() = 0;

  // Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
  virtual void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc) = 0;

  // Bytes of the step layout of `w` for products with `rows` rows of A over `steps` steps; 0: read B in place.
  virtual std::size_t stepWeightsBytes(const StepWeights& w, int rows, int steps) const {
    (void)w, (void)rows, (void)steps;
    return 0;
  }
  // Fills w.panels (reserved with stepWeightsBytes) from w.B.
  virtual void packStepWeights(const StepWeights& w) { (void)w; }
  // C[M, N] = alpha * A[M, K] * op(B) + beta * C, op(B) from the step weights.
  virtual void gemmStep(int M, float alpha, const float* A, int lda, const StepWeights& w, float beta, float* C,
                        int ldc) {
    gemm(false, w.transB, M, w.N, w.K, alpha, A, lda, w.B, w.ldb, beta, C, ldc);
  }

  // One forward time step of a cell whose recurrent product needs nothing from the same step (every cell but the
  // reset-before GRU): gh = hPrev W_hh^T (+ bhh where given, else from zero), then cellForward(step), step.gh being
  // gh's storage. whh comes from a StepWeights with cellGates set; a backend that laid it out for this may keep gh in
  // its own column order and fuse the two (the CPU backend gives each thread a slice of the hidden units: their rows
  // of W_hh for every gate, then their update, with no wait between the product and the update).
  virtual void recurrentStep(const CellForwardStep& step, float* gh, const StepWeights& whh, const float* bhh) {
    if (bhh) broadcastRows(gh, step.batch, whh.N, step.ldgh, bhh);
    gemmStep(step.batch, 1.f, step.hPrev, step.hidden, whh, bhh ? 1.f : 0.f, gh, step.ldgh);
    cellForward(step);
  }

  // int8 inference (dynamic quantization: weights int8 per output row with a float scale, activations quantized per
  // row at each call). A backend without it says so with supportsInt8() and is never asked for the rest.
  virtual bool supportsInt8() const { return false; }
  // Bytes of W [N, K] (one row per output) in the backend's int8 form, and the packing into that form.
  virtual std::size_t int8WeightsBytes(int N, int K) const { return (void)N, (void)K, 0; }
  virtual void int8PackWeights(const float* W, int N, int K, void* dst) { (void)W, (void)N, (void)K, (void)dst; }
  // C[M, N] = beta * C + A[M, K] x W^T, W packed by int8PackWeights; beta is 0 or 1.
  virtual void gemmInt8(int M, const float* A, int lda, const void* packedW, int N, int K, float beta, float* C,
                        int ldc) {
    (void)M, (void)A, (void)lda, (void)packedW, (void)N, (void)K, (void)beta, (void)C, (void)ldc;
  }
  // The fused int8 recurrent step (optional, as recurrentStep is for float32): W_hh [G*H, H] in the backend's own
  // int8 step form (0 bytes: the backend has none, and is never asked for the rest), its packing, and one step:
  // gh = hPrev W_hh^T with hPrev quantized per row (+ bhh where given, else from zero), then cellForward(step),
  // step.gh being gh's storage, in the backend's column order. The same outputs as gemmInt8 and cellForward.
  virtual std::size_t int8StepWeightsBytes(int gates, int hidden) const { return (void)gates, (void)hidden, 0; }
  virtual void int8PackStepWeights(const float* whh, int gates, int hidden, void* dst) {
    (void)whh, (void)gates, (void)hidden, (void)dst;
  }
  virtual void int8RecurrentStep(const CellForwardStep& step, float* gh, const void* packedWhh, const float* bhh) {
    (void)step, (void)gh, (void)packedWhh, (void)bhh;
  }
  // Independent int8 products of one time step, which a backend may run as one pass over all their weights.
  virtual void gemmInt8Products(const Int8Product* products, int count) {
    for (int i = 0; i < count; ++i) {
      const Int8Product& p = products[i];
      if (p.bias) broadcastRows(p.C, p.M, p.N, p.ldc, p.bias);
      gemmInt8(p.M, p.A, p.lda, p.packed, p.N, p.K, p.bias ? 1.f : p.beta, p.C, p.ldc);
    }
  }

  // The float32 product of a batch-1 step, y[N] = [W1 | W2] [x1; x2] (a layer's input and recurrent weights in one
  // pass), over weights packed once into the backend's step form. A backend without that form returns 0 from
  // stepGemvFloats and is never asked for the rest.
  virtual std::size_t stepGemvFloats(int N, int K1, int K2) const { return (void)N, (void)K1, (void)K2, 0; }
  virtual void stepGemvPack(const float* W1, int K1, const float* W2, int K2, int N, float* packed) {
    (void)W1, (void)K1, (void)W2, (void)K2, (void)N, (void)packed;
  }
  virtual void stepGemv(const float* packed, int N, const float* x1, int K1, const float* x2, int K2, float* y) {
    (void)packed, (void)N, (void)x1, (void)K1, (void)x2, (void)K2, (void)y;
  }

  // Independent products of one time step, which a backend may run as one pass over all their weights (one
  // parallel region instead of one per product); by default one gemm each.
  virtual void gemmRowProducts(const RowProduct* products, int count) {
    for (int i = 0; i < count; ++i) {
      const RowProduct& p = products[i];
      gemm(false, true, p.M, p.N, p.K, 1.f, p.A, p.lda, p.B, p.ldb, p.beta, p.C, p.ldc);
    }
  }

  // C[r, :cols] = bias for every row (the starting value of a GEMM that then accumulates with beta = 1).
  virtual void broadcastRows(float* C, int rows, int cols, int ldc, const float* bias) = 0;
  // out[c] += sum over r of A[r, c].
  virtual void columnSumAdd(const float* A, int rows, int cols, int lda, float* out) = 0;
  // One-hot input projection: out[i, g] = W[g, idx[i]] + bias[g] for W [G, V]. idx values are already validated.
  virtual void gatherColumns(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n,
                             float* out, int ldo) = 0;
  // Its gradient: dW[g, idx[i]] += dG[i, g].
  virtual void scatterAddColumns(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                                 int vocab) = 0;

  // Embedding: out[i, :] = W[idx[i], :] for W [V, E]; its gradient dW[idx[i], :] += dOut[i, :].
  virtual void gatherRows(const float* W, int dim, const int32_t* idx, int n, float* out) = 0;
  virtual void scatterAddRows(const float* dOut, int n, int dim, const int32_t* idx, float* dW) = 0;
  // dst[r, :cols] = src[r, :cols] (alpha = 0 in add2d's sense) or dst += alpha * src, with row strides.
  virtual void copy2d(int rows, int cols, const float* src, int lds, float* dst, int ldd) = 0;
  virtual void add2d(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) = 0;
  // x *= m elementwise (dropout masks).
  virtual void multiply(float* x, const float* m, std::size_t n) = 0;
  // In place over [rows, cols]: linear (no-op), sigmoid, tanh, relu, or a softmax along each row.
  virtual void activate(int activation, float* x, int rows, int cols) = 0;
  // dx = dy * f'(pre) expressed through the activation's output y (softmax: the Jacobian-vector product per row).
  virtual void activationBackward(int activation, const float* y, const float* dy, float* dx, int rows, int cols) = 0;

  virtual void cellForward(const CellForwardStep& step) = 0;
  virtual void cellBackward(const CellBackwardStep& step) = 0;
  // Reset-before GRU, forward: rh = gate(gi_r + gh_r) * hPrev, the input of the W_hn GEMM.
  virtual void gruResetGate(const CellForwardStep& step, float* rh) = 0;
  // Reset-before GRU, backward, after cellBackward and drh = dn_pre x W_hn: completes dGh's r columns and adds
  // drh * r to dhPrev.
  virtual void gruResetGateBackward(const CellBackwardStep& step, const float* drh) = 0;

  // Attention (the encoder-decoder's). These have portable default implementations (native/core/backend.cc:
  // gemmBatched loops over gemm; the others stage through host memory), so that a backend without kernels of its
  // own still computes them exactly; a backend overrides them for speed.
  //
  // `count` independent products C_i = alpha * op(A_i) * op(B_i) + beta * C_i, with A_i = A + i * strideA (in
  // floats) and likewise for B and C: the attention scores or contexts of every batch row as one call.
  virtual void gemmBatched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                           long long strideA, const float* B, int ldb, long long strideB, float beta, float* C,
                           int ldc, long long strideC, int count);
  // In place over x [rows, cols]: a softmax along each row over its first lengths[r % batch] columns (all columns
  // when lengths is null), 0 in the columns past it.
  virtual void maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch);
  // Additive (Bahdanau) scores: scores[b, s] = v . tanh(q[b] + keysProj[s, b]) + vBias[0], for q [batch, hidden],
  // keysProj time-major [steps, batch, hidden], scores [batch, steps].
  virtual void additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch,
                              int steps, int hidden, float* scores);
  // One decoder step of additive attention in one pass: the scores above, their softmax masked to each row's
  // lengths[b] (null: all steps), written into weights [batch, steps], and the context
  // context[b] = beta * context[b] + sum_s weights[b, s] values[s, b / group] (values [steps, batch / group, width]
  // time-major, the keys or a projection of them; keysProj [steps, batch / group, hidden]: `group` consecutive rows,
  // a beam's hypotheses, share one source row; context's row stride ldContext). The default runs additiveScores,
  // maskedSoftmax and gemmBatched; the CPU backend fuses them per row.
  virtual void additiveAttention(const float* q, const float* keysProj, const float* values, int width, const float* v,
                                 const float* vBias, int batch, int group, int steps, int hidden,
                                 const int32_t* lengths, float* weights, float beta, float* context, int ldContext);
  // additiveAttention's gradient for one step (values = keys, group 1) from dContext [batch, ldDContext]: through
  // the context dKeys += (accumulating), through the softmax and the scores as additiveScoresBackward below
  // (dKeysProj +=, dv +=, dq =). The default runs gemmBatched, activationBackward and additiveScoresBackward; the CPU
  // backend does it in one pass per row.
  virtual void additiveAttentionBackward(const float* dContext, int ldDContext, const float* weights, const float* q,
                                         const float* keysProj, const float* keys, const float* v, int batch,
                                         int steps, int hidden, float* dKeys, float* dKeysProj, float* dq, float* dv);
  // Its gradient from dScores [batch, steps]: dKeysProj += and dv += (accumulating), dq = (written). vBias has none:
  // it shifts every score of a row alike, which the softmax that follows cancels exactly (summing the rounding noise
  // of its zero gradient would move it under Adam, whose step does not shrink with the gradient).
  virtual void additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v,
                                      int batch, int steps, int hidden, float* dKeysProj, float* dq, float* dv);

  // Softmax cross-entropy of logits [n, classes] against targets in [0, classes), a negative target marking a row
  // left out (Network::computeLoss maps the caller's ignore index and positions past a row's length to -1). Writes
  // dLogits = d(mean over counted rows)/d(logits), 0 on the rows left out, and returns the summed loss over the
  // counted rows (count in *counted).
  virtual double softmaxCrossEntropy(const float* logits, int n, int classes, const int32_t* targets,
                                     float* dLogits, int* counted) = 0;
  // Mean squared error over the values of the counted rows of out [rows, features]: rowCounted[r] != 0 (every row
  // when rowCounted is null), countedRows of them. Writes its gradient (0 on the other rows); returns the mean, 0 when
  // no row counts.
  virtual double meanSquaredError(const float* out, const float* target, std::size_t rows, int features,
                                  const int32_t* rowCounted, std::size_t countedRows, float* dOut) = 0;
  virtual double sumSquares(const float* p, std::size_t n) = 0;
  virtual void scale(float* p, std::size_t n, float s) = 0;

  // Optimizer updates over a flat parameter vector, PyTorch's rules. `step` counts from 1.
  virtual void sgdUpdate(float* p, const float* g, float* momentumBuf, std::size_t n, const SgdHyper& h,
                         long long step) = 0;
  virtual void adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n,
                          const AdamHyper& h, long long step) = 0;
  virtual void rmspropUpdate(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                             const RmspropHyper& h, long long step) = 0;
};

// The CPU backend (always built).
Backend& cpuBackend();

}  // namespace rnnkit
