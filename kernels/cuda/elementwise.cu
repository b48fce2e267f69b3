// Memory and elementwise kernels: fill, conversions, unary ops with their derivatives.
#include "prelude.cuh"

// y[i] = value, grid-stride.
extern "C" __global__ void nr_fill_f32(float* y, long long n, float value)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = value;
}
