// Kernels.fastTanh (Sources/Kernels/Activations.swift) with AVX2: the same
// operations in the same order, lane by lane, so every element is bit for bit
// what the Swift function gives (tested over a dense grid and the special
// values in SIMDKernelTests). The target is "avx2" without "fma": the
// compiler cannot fuse a multiply and an add, which would change the bits.
#include "CKernels.h"
#include <immintrin.h>
#pragma STDC FP_CONTRACT OFF

int esapn_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#define F(v) _mm256_set1_ps(v)

__attribute__((target("avx2")))
long esapn_tanh_avx2(float *out, const float *inp, long count) {
    long body = count & ~7L;
    const __m256i absMask = _mm256_set1_epi32(0x7FFFFFFF), signMask = _mm256_set1_epi32((int)0x80000000u);
    const __m256i mantissa = _mm256_set1_epi32(0x7FFFFF);
    for (long i = 0; i < body; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256i xb = _mm256_castps_si256(x);
        __m256 m = _mm256_castsi256_ps(_mm256_and_si256(xb, absMask));
        // m >= 9.5 -> 9.5 (ordered: NaN stays NaN)
        __m256 a = _mm256_blendv_ps(m, F(9.5f), _mm256_cmp_ps(m, F(9.5f), _CMP_GE_OQ));
        __m256 z = _mm256_mul_ps(x, x);
        __m256 p = F(-1382.0f / 155925.0f);
        p = _mm256_add_ps(_mm256_mul_ps(p, z), F(62.0f / 2835.0f));
        p = _mm256_sub_ps(_mm256_mul_ps(p, z), F(17.0f / 315.0f));
        p = _mm256_add_ps(_mm256_mul_ps(p, z), F(2.0f / 15.0f));
        p = _mm256_sub_ps(_mm256_mul_ps(p, z), F(1.0f / 3.0f));
        __m256 small = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, z), p));
        __m256 y = _mm256_mul_ps(F(2.0f), a);
        __m256 k = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(y, F(1.442695041f)), F(12582912.0f)), F(12582912.0f));
        __m256 r = _mm256_sub_ps(_mm256_sub_ps(y, _mm256_mul_ps(k, F(0.693145752f))), _mm256_mul_ps(k, F(1.42860677e-6f)));
        __m256 e = F(1.0f / 5040.0f);
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f / 720.0f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f / 120.0f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f / 24.0f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f / 6.0f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(0.5f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f));
        e = _mm256_add_ps(_mm256_mul_ps(e, r), F(1.0f));
        __m256i biased = _mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(k, F(8388735.0f))), mantissa);
        e = _mm256_mul_ps(e, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
        __m256 t = _mm256_sub_ps(F(1.0f), _mm256_div_ps(F(2.0f), _mm256_add_ps(e, F(1.0f))));
        __m256 large = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(t), _mm256_and_si256(xb, signMask)));
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, F(0.4f), _CMP_LT_OQ)));
    }
    return body;
}
#else
long esapn_tanh_avx2(float *out, const float *inp, long count) { (void)out; (void)inp; (void)count; return 0; }
#endif
