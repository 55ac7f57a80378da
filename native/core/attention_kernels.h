// The attention kernels over host memory: the CPU backend runs them in place, and the Backend defaults run them on
// host copies, so there is one definition of each rule.
#pragma once

#include <cstdint>

namespace rnnkit::attention {

void maskedSoftmax(float* x, int rows, int cols, const int32_t* lengths, int batch);
void additiveScores(const float* q, const float* keysProj, const float* v, const float* vBias, int batch, int steps,
                    int hidden, float* scores);
void additiveScoresBackward(const float* dScores, const float* q, const float* keysProj, const float* v, int batch,
                            int steps, int hidden, float* dKeysProj, float* dq, float* dv);

}  // namespace rnnkit::attention
