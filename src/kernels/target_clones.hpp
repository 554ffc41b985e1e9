#pragma once
// Private: ATTNREC_CLONES compiles a function twice, for x86-64-v3 (AVX2, FMA) and for the
// baseline, and lets the dynamic loader pick one on the running CPU (GCC target_clones, an
// ifunc). Hand-written element-wise kernels use it so that one binary is both portable and
// vectorised with 256-bit registers where the CPU has them. Elsewhere it expands to nothing.

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ATTNREC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ATTNREC_CLONES
#endif
