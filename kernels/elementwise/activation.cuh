// Activation forward and backward as separate elementwise passes (the unfused MLP step).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "common/elementwise_common.cuh"
#include "dtype.hpp"

namespace wflops::kernels {

// out[i] = act(in[i]) for n elements (fp16, bf16 or fp32; fp32 arithmetic; n any size).
cudaError_t activation_forward(DType dtype, Activation act, const void* in, void* out, std::size_t n,
                               cudaStream_t stream);

// dh[i] = dout[i] * act'(pre[i]), with pre the saved pre-activation (dh may alias dout).
cudaError_t activation_backward(DType dtype, Activation act, const void* dout, const void* pre, void* dh, std::size_t n,
                                cudaStream_t stream);

// Host versions (the CPU references and the tests use them), in double.
double activation_host(Activation act, double x);
double activation_derivative_host(Activation act, double x);

}  // namespace wflops::kernels
