// Kernels.adamUpdate's element step (Sources/Kernels/Adam.swift) with AVX2:
//   m ← m + (1 − β1)(g − m);  v ← β2·v + ((1 − β2)·g)·g;
//   p ← p − (stepSize·m) / (√v / correction2Root + ε)
// the same operations in the same order (sqrt and division are correctly
// rounded in both instruction sets; no FMA), so every element is bit for bit
// what the Swift loop gives (SIMDKernelTests).
#include "CKernels.h"
#include <immintrin.h>
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2")))
long esapn_adam_avx2(float *values, float *m, float *v, const float *grads, long count,
                     float stepSize, float correction2Root, float oneMinusBeta1, float beta2,
                     float oneMinusBeta2, float eps) {
    long body = count & ~7L;
    const __m256 s = _mm256_set1_ps(stepSize), c2 = _mm256_set1_ps(correction2Root);
    const __m256 a1 = _mm256_set1_ps(oneMinusBeta1), b2 = _mm256_set1_ps(beta2), a2 = _mm256_set1_ps(oneMinusBeta2);
    const __m256 e = _mm256_set1_ps(eps);
    for (long i = 0; i < body; i += 8) {
        __m256 g = _mm256_loadu_ps(grads + i), m0 = _mm256_loadu_ps(m + i), v0 = _mm256_loadu_ps(v + i);
        __m256 mi = _mm256_add_ps(m0, _mm256_mul_ps(a1, _mm256_sub_ps(g, m0)));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, v0), _mm256_mul_ps(_mm256_mul_ps(a2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), c2), e);
        __m256 step = _mm256_div_ps(_mm256_mul_ps(s, mi), denominator);
        _mm256_storeu_ps(values + i, _mm256_sub_ps(_mm256_loadu_ps(values + i), step));
    }
    return body;
}
#else
long esapn_adam_avx2(float *values, float *m, float *v, const float *grads, long count,
                     float stepSize, float correction2Root, float oneMinusBeta1, float beta2,
                     float oneMinusBeta2, float eps) {
    (void)values; (void)m; (void)v; (void)grads; (void)count; (void)stepSize; (void)correction2Root;
    (void)oneMinusBeta1; (void)beta2; (void)oneMinusBeta2; (void)eps;
    return 0;
}
#endif
