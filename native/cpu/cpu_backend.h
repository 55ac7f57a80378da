// The CPU backend: host memory, GEMM through a system BLAS or the built-in kernel, and the element-wise kernels.
#pragma once

#include <functional>

#include "../core/backend.h"

namespace rnnkit::cpu {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string gemmName() const override;

  void* alloc(std::size_t bytes) override;
  void free(void* p) override;
  void upload(void* dst, const void* hostSrc, std::size_t bytes) override;
  void download(void* hostDst, const void* src, std::size_t bytes) override;
  bool hostMemory() const override { return true; }
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void fill(float* p, std::size_t n, float value) override;
  void axpy(std::size_t n, float alpha, const float* x, float* y) override;
  void synchronize() override {}

  void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
            int ldb, float beta, float* C, int ldc) override;

  // The recurrent weights of a time loop are packed once per pass into the built-in kernel's panels, and every
  // step's product runs on the built-in kernel, a system BLAS or not: a BLAS call re-packs them at every step.
  std::size_t stepWeightsBytes(const StepWeights& w, int rows, int steps) const override;
  void packStepWeights(const StepWeights& w) override;
  void recurrentStep(const CellForwardStep& step, float* gh, const StepWeights& whh, const float* bhh) override;
  void gemmRowProducts(const RowProduct* products, int count) override;
  std::size_t stepGemvFloats(int N, int K1, int K2) const override;
  void stepGemvPack(const float* W1, int K1, const float* W2, int K2, int N, float* packed) override;
  void stepGemv(const float* packed, int N, const float* x1, int K1, const float* x2, int K2, float* y) override;
  bool supportsInt8() const override { return true; }
  std::size_t int8WeightsBytes(int N, int K) const override;
  void int8PackWeights(const float* W, int N, int K, void* dst) override;
  void gemmInt8(int M, const float* A, int lda, const void* packedW, int N, int K, float beta, float* C,
                int ldc) override;
  void gemmInt8Products(const Int8Product* products, int count) override;
  std::size_t int8StepWeightsBytes(int gates, int hidden) const override;
  void int8PackStepWeights(const float* whh, int gates, int hidden, void* dst) override;
  void int8RecurrentStep(const CellForwardStep& step, float* gh, const void* packedWhh, const float* bhh) override;
  void gemmStep(int M, float alpha, const float* A, int lda, const StepWeights& w, float beta, float* C,
                int ldc) override;

  void broadcastRows(float* C, int rows, int cols, int ldc, const float* bias) override;
  void columnSumAdd(const float* A, int rows, int cols, int lda, float* out) override;
  void gatherColumns(const float* W, int gates, int vocab, const float* bias, const int32_t* idx, int n, float* out,
                     int ldo) override;
  void scatterAddColumns(const float* dG, int n, int gates, int ldg, const int32_t* idx, float* dW,
                         int vocab) override;

  void gatherRows(const float* W, int dim, const int32_t* idx, int n, float* out) override;
  void scatterAddRows(const float* dOut, int n, int dim, const int32_t* idx, float* dW) override;
  void copy2d(int rows, int cols, const float* src, int lds, float* dst, int ldd) override;
  void add2d(int rows, int cols, float alpha, const float* src, int lds, float* dst, int ldd) override;
  void multiply(float* x, const float* m, std::size_t n) override;
  void activate(int activation, float* x, int rows, int cols) override;
  void activationBackward(int activation, const float* y, const float* dy, float* dx, int rows, int cols) override;

  void cellForward(const CellForwardStep& step) override;
  void cellBackward(const CellBackwardStep& step) override;
  void gruResetGate(const CellForwardStep& step, float* rh) override;
  void gruResetGateBackward(const CellBackwardStep& step, const float* drh) override;

  // Attention (native/cpu/attention_kernels.cc; maskedSoftmax runs the portable kernel in place).
  void gemmBatched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                   long long strideA, const float* B, int ldb, long long strideB, float beta, float* C, int ldc,
                   long long strideC, int count) override;
  void maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch) override;
  void additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch,
                      int steps, int hidden, float* scores) override;
  void additiveAttention(const float* q, const float* keysProj, const float* values, int width, const float* v,
                         const float* vBias, int batch, int group, int steps, int hidden, const int32_t* lengths,
                         float* weights, float beta, float* context, int ldContext) override;
  void additiveAttentionBackward(const float* dContext, int ldDContext, const float* weights, const float* q,
                                 const float* keysProj, const float* keys, const float* v, int batch, int steps,
                                 int hidden, float* dKeys, float* dKeysProj, float* dq, float* dv) override;
  void additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v, int batch,
                              int steps, int hidden, float* dKeysProj, float* dq, float* dv) override;

  double softmaxCrossEntropy(const float* logits, int n, int classes, const int32_t* targets, float* dLogits,
                             int* counted) override;
  double meanSquaredError(const float* out, const float* target, std::size_t rows, int features,
                          const int32_t* rowCounted, std::size_t countedRows, float* dOut) override;
  double sumSquares(const float* p, std::size_t n) override;
  void scale(float* p, std::size_t n, float s) override;

  void sgdUpdate(float* p, const float* g, float* momentumBuf, std::size_t n, const SgdHyper& h,
                 long long step) override;
  void adamUpdate(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n, const AdamHyper& h,
                  long long step) override;
  void rmspropUpdate(float* p, const float* g, float* sq, float* mom, float* gavg, std::size_t n,
                     const RmspropHyper& h, long long step) override;

  // The GEMM in use: true when a system BLAS was found and RNNKIT_BLAS does not forbid it.
  static bool usingSystemBlas();
};

// Run fn(begin, end) over [0, n) on the thread pool when the work (n * costPerItem) is worth splitting.
void parallelRows(std::size_t n, std::size_t costPerItem, const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace rnnkit::cpu
