// emu_shim.h: lets the backend's CUDA C programs compile as C++ for the CPU emulator (see
// run.sh).  Kernels run with one host thread per CUDA thread of a block (blocks one after the
// other), __syncthreads is a barrier of the block, and warp shuffles exchange values through a
// per-warp buffer between two warp barriers.  Only what aqa's kernels use is provided.
#include <cmath>
#include <cstdint>
#include <cstring>

struct dim3 {
    unsigned x, y, z;
};
// Runtime services the emulator (mock driver) hands to each launch.
struct emu_ctx {
    dim3 grid, block;
    void (*sync_block)(void);
    unsigned long long (*shfl)(unsigned long long v, int lane_xor);
};
static thread_local dim3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;
static thread_local const emu_ctx *emu_c;

#define __global__ __attribute__((used))
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static

static inline void __syncthreads(void) { emu_c->sync_block(); }
template <typename V>
static inline V __shfl_xor_sync(unsigned mask, V v, int o) {
    (void)mask;
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    bits = emu_c->shfl(bits, o);
    V r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}
// __shfl_sync from lane src: the xor exchange with (own lane ^ src)
template <typename V>
static inline V __shfl_sync(unsigned mask, V v, int src) {
    return __shfl_xor_sync(mask, v, (int)(threadIdx.x & 31u) ^ src);
}
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static inline int atomicCAS(int *p, int cmp, int val) { return __sync_val_compare_and_swap(p, cmp, val); }
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    unsigned long long old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
static inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
static inline double __longlong_as_double(long long i) {
    double f;
    std::memcpy(&f, &i, 8);
    return f;
}
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;
using std::log1p;
using std::erfc;
using std::pow;
using std::fabs;
using std::cos;
struct alignas(16) float4 {
    float x, y, z, w;
};
