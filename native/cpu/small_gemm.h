#pragma once

namespace rnnkit::cpu {

// Products with at most this many rows of A go to smallRowsGemm.
constexpr int kSmallGemmRows = 4;

// Handles C = alpha * A * B^T + beta * C when A has at most kSmallGemmRows rows (and B is the transposed operand,
// the layout of every weight product in the forward pass); returns false, doing nothing, for any other case.
bool smallRowsGemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                   int ldb, float beta, float* C, int ldc);

}  // namespace rnnkit::cpu
