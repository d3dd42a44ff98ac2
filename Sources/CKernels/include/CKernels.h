// Per-batch kernels written in C where Swift cannot reach the instruction
// set: Swift code is compiled for the x86-64 baseline (SSE2), and one
// function here is compiled for AVX2 and chosen at run time. Each computes
// exactly what its Swift counterpart computes, the same IEEE operations in
// the same order (no FMA), so results do not depend on which one ran.
#ifndef ESAPN_CKERNELS_H
#define ESAPN_CKERNELS_H

/// 1 when this CPU runs AVX2 instructions, else 0.
int esapn_cpu_has_avx2(void);

/// Kernels.fastTanh on eight lanes at a time with AVX2, for the first
/// count & ~7 elements of inp (out may alias inp); returns how many it did.
/// Call only when esapn_cpu_has_avx2() is 1.
long esapn_tanh_avx2(float *out, const float *inp, long count);

/// Kernels.adamUpdate's element step on eight lanes at a time with AVX2, for
/// the first count & ~7 elements; returns how many it did. The scalars are
/// the Float values adamUpdate derives from the step and hyperparameters.
/// Call only when esapn_cpu_has_avx2() is 1.
long esapn_adam_avx2(float *values, float *m, float *v, const float *grads, long count,
                     float stepSize, float correction2Root, float oneMinusBeta1, float beta2,
                     float oneMinusBeta2, float eps);

#endif
