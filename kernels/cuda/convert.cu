// Source: bfloat16 as the upper 16 bits of IEEE binary32 (round to nearest even); IEEE 754 binary16.
// Dtype conversions: float32 ↔ bfloat16, float32 ↔ IEEE half, and the id conversions (int64 ↔ float32,
// int32 → int64, int64 → int32).
//
// Design: pure streaming, a few integer ops per element, so bandwidth-bound. The float ↔ 16-bit kernels are
// the hot ones (weights and activations change precision around every bf16 GEMM): with the host's alignment
// check passed, a thread moves 4 elements per access (16 B of float, 8 B of 16-bit bits), grid-stride, plus
// a scalar tail. The rounding is done on the bits (no cuda_fp16/cuda_bf16 headers exist under NVRTC here),
// round to nearest even, matching ReferenceKernels bit for bit. The id conversions touch small tensors
// (token ids, expert indices), so they are plain coalesced grid-stride loops.
#include "prelude.cuh"
#include "elementwise.cuh"

// float32 → IEEE binary16 bits, round to nearest even; overflow → ±inf; NaN → quiet NaN keeping the sign and
// the top 10 payload bits.
static __device__ __forceinline__ uint16_t nr_f32_to_f16(float f)
{
    uint32_t u = __float_as_uint(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // ≥ 65520 rounds past 65504: inf (and inf itself)
    if (a >= 0x38800000u)
    {
        // Normal half (≥ 2^-14): round the 23-bit mantissa to 10 bits at bit 13 (a carry into the exponent is
        // the correct result), then rebias the exponent from 127 to 15.
        uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign; // ≤ 2^-25: rounds to ±0 (2^-25 itself is a tie, to even 0)
    // Subnormal half: the value in units of 2^-24 is mant · 2^(e − 126); shift it right by 126 − e ∈ [14, 24]
    // with round to nearest even (a result of 0x400 is the smallest normal, which is again the right bits).
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

// IEEE binary16 bits → float32 (exact: every half is a float; a NaN keeps its payload with the quiet bit set).
static __device__ __forceinline__ float nr_f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
    if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0u)); // inf; NaN made quiet (as .NET)
    if (e != 0) return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));     // normal: rebias 15 → 127
    // Zero or subnormal: m · 2^-24, exact in float.
    float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

// The loop the four 16-bit conversions share: groups of four through one 16-byte float load/store and one 8-byte
// 16-bit load/store when vec (x and y aligned for that), then the tail — or everything when not — one at a time.
// Op::apply converts one element.
template <class In, class Out, class In4, class Out4, class Op>
static __device__ __forceinline__ void nr_cvt_loop(const In* x, Out* y, long long n, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            In4 v = ((const In4*)x)[j];
            Out4 r;
            r.x = Op::apply(v.x); r.y = Op::apply(v.y); r.z = Op::apply(v.z); r.w = Op::apply(v.w);
            ((Out4*)y)[j] = r;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) y[j] = Op::apply(x[j]);
}

struct nr_cvt_to_bf16 { static __device__ __forceinline__ uint16_t apply(float v) { return nr_f32_to_bf16(v); } };
struct nr_cvt_from_bf16 { static __device__ __forceinline__ float apply(uint16_t v) { return nr_bf16_to_f32(v); } };
struct nr_cvt_to_f16 { static __device__ __forceinline__ uint16_t apply(float v) { return nr_f32_to_f16(v); } };
struct nr_cvt_from_f16 { static __device__ __forceinline__ float apply(uint16_t v) { return nr_f16_to_f32(v); } };

// x: [n] float → y: [n] bf16 bits; vec: x 16-byte and y 8-byte aligned.
extern "C" __global__ void nr_cvt_f32_to_bf16(const float* x, uint16_t* y, long long n, int vec)
{
    nr_cvt_loop<float, uint16_t, nr_f4, nr_u16x4, nr_cvt_to_bf16>(x, y, n, vec);
}

extern "C" __global__ void nr_cvt_bf16_to_f32(const uint16_t* x, float* y, long long n, int vec)
{
    nr_cvt_loop<uint16_t, float, nr_u16x4, nr_f4, nr_cvt_from_bf16>(x, y, n, vec);
}

extern "C" __global__ void nr_cvt_f32_to_f16(const float* x, uint16_t* y, long long n, int vec)
{
    nr_cvt_loop<float, uint16_t, nr_f4, nr_u16x4, nr_cvt_to_f16>(x, y, n, vec);
}

extern "C" __global__ void nr_cvt_f16_to_f32(const uint16_t* x, float* y, long long n, int vec)
{
    nr_cvt_loop<uint16_t, float, nr_u16x4, nr_f4, nr_cvt_from_f16>(x, y, n, vec);
}

// int64 → float32, round to nearest even (cvt.rn.f32.s64; .NET's long → float conversion rounds the same way).
extern "C" __global__ void nr_cvt_i64_to_f32(const long long* x, float* y, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride()) y[i] = (float)x[i];
}

// float32 → int64 with .NET's saturating semantics spelled out (so the emulator's host cast cannot differ):
// truncate toward zero, NaN → 0, ≥ 2^63 → long.MaxValue, < −2^63 → long.MinValue.
extern "C" __global__ void nr_cvt_f32_to_i64(const float* x, long long* y, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride())
    {
        float f = x[i];
        long long r;
        if (f != f) r = 0;
        else if (f >= 9.223372036854775808e18f) r = 0x7fffffffffffffffLL;
        else if (f < -9.223372036854775808e18f) r = (long long)(-0x7fffffffffffffffLL - 1);
        else r = (long long)f;
        y[i] = r;
    }
}

extern "C" __global__ void nr_cvt_i32_to_i64(const int* x, long long* y, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride()) y[i] = (long long)x[i];
}

// Keeps the low 32 bits (two's complement), as the reference's unchecked cast.
extern "C" __global__ void nr_cvt_i64_to_i32(const long long* x, int* y, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride()) y[i] = (int)(uint32_t)(unsigned long long)x[i];
}
