// Activation forward (out = act(in)) and backward (dh = dout * act'(pre)) as their own elementwise
// passes, fp32 arithmetic, 16-byte vector accesses with a scalar tail; the double-precision host
// versions beside them are the references.
#include <cmath>

#include "activation.cuh"
#include "dtype_dispatch.cuh"
#include "elementwise_vector.cuh"

namespace wflops::kernels {

namespace {

// GELU, tanh approximation (elementwise_common.cuh): sqrt(2/pi) and the cubic coefficient.
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCubic = 0.044715;

template <Activation A>
__device__ __forceinline__ float act_forward(float x) {
  if constexpr (A == Activation::relu) {
    return x > 0.0f ? x : 0.0f;
  } else if constexpr (A == Activation::gelu) {
    const float u = static_cast<float>(kSqrt2OverPi) * (x + static_cast<float>(kGeluCubic) * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
  } else {
    return x;
  }
}

// d/dx of the above. GELU: with u = c (x + a x^3), t = tanh(u):
//   gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
// ReLU: 1 for x > 0, else 0 (0 at exactly 0, as cuBLASLt's DRELU).
template <Activation A>
__device__ __forceinline__ float act_derivative(float x) {
  if constexpr (A == Activation::relu) {
    return x > 0.0f ? 1.0f : 0.0f;
  } else if constexpr (A == Activation::gelu) {
    const float c = static_cast<float>(kSqrt2OverPi), a = static_cast<float>(kGeluCubic);
    const float t = tanhf(c * (x + a * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * a * x * x);
  } else {
    return 1.0f;
  }
}

// Each thread owns whole 16-byte vectors (when every pointer is aligned), then the elements past
// the last whole vector (or all of them, unaligned) one by one. A thread reads an element before
// writing the same element, so out may alias in.
template <typename T, Activation A>
__global__ void forward_kernel(const T* in, T* out, std::size_t n, bool vectorised) {
  constexpr int W = vec::kWidth<T>;
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t vectors = vectorised ? n / W : 0;
  for (std::size_t v = tid; v < vectors; v += stride) {
    float x[W];
    vec::load<W>(in + v * W, x);
#pragma unroll
    for (int j = 0; j < W; ++j) x[j] = act_forward<A>(x[j]);
    vec::store<W>(out + v * W, x);
  }
  for (std::size_t i = vectors * W + tid; i < n; i += stride) {
    out[i] = vec::from_float<T>(act_forward<A>(vec::to_float(in[i])));
  }
}

template <typename T, Activation A>
__global__ void backward_kernel(const T* dout, const T* pre, T* dh, std::size_t n, bool vectorised) {
  constexpr int W = vec::kWidth<T>;
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t vectors = vectorised ? n / W : 0;
  for (std::size_t v = tid; v < vectors; v += stride) {
    float g[W], x[W];
    vec::load<W>(dout + v * W, g);
    vec::load<W>(pre + v * W, x);
#pragma unroll
    for (int j = 0; j < W; ++j) g[j] *= act_derivative<A>(x[j]);
    vec::store<W>(dh + v * W, g);
  }
  for (std::size_t i = vectors * W + tid; i < n; i += stride) {
    dh[i] = vec::from_float<T>(vec::to_float(dout[i]) * act_derivative<A>(vec::to_float(pre[i])));
  }
}

template <typename T, Activation A>
cudaError_t launch_forward(const void* in, void* out, std::size_t n, cudaStream_t stream) {
  const bool vectorised = vec::aligned16(in) && vec::aligned16(out);
  const std::size_t items = vectorised ? n / vec::kWidth<T> + 1 : n;
  forward_kernel<T, A><<<vec::blocks_for(items), vec::kThreads, 0, stream>>>(
      static_cast<const T*>(in), static_cast<T*>(out), n, vectorised);
  return cudaGetLastError();
}

template <typename T, Activation A>
cudaError_t launch_backward(const void* dout, const void* pre, void* dh, std::size_t n, cudaStream_t stream) {
  const bool vectorised = vec::aligned16(dout) && vec::aligned16(pre) && vec::aligned16(dh);
  const std::size_t items = vectorised ? n / vec::kWidth<T> + 1 : n;
  backward_kernel<T, A><<<vec::blocks_for(items), vec::kThreads, 0, stream>>>(
      static_cast<const T*>(dout), static_cast<const T*>(pre), static_cast<T*>(dh), n, vectorised);
  return cudaGetLastError();
}

template <typename T>
cudaError_t forward_for(Activation act, const void* in, void* out, std::size_t n, cudaStream_t stream) {
  switch (act) {
    case Activation::none: return launch_forward<T, Activation::none>(in, out, n, stream);
    case Activation::relu: return launch_forward<T, Activation::relu>(in, out, n, stream);
    case Activation::gelu: return launch_forward<T, Activation::gelu>(in, out, n, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t backward_for(Activation act, const void* dout, const void* pre, void* dh, std::size_t n,
                         cudaStream_t stream) {
  switch (act) {
    case Activation::none: return launch_backward<T, Activation::none>(dout, pre, dh, n, stream);
    case Activation::relu: return launch_backward<T, Activation::relu>(dout, pre, dh, n, stream);
    case Activation::gelu: return launch_backward<T, Activation::gelu>(dout, pre, dh, n, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t activation_forward(DType dtype, Activation act, const void* in, void* out, std::size_t n,
                               cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (in == nullptr || out == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    return forward_for<typename decltype(tag)::type>(act, in, out, n, stream);
  });
}

cudaError_t activation_backward(DType dtype, Activation act, const void* dout, const void* pre, void* dh,
                                std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (dout == nullptr || pre == nullptr || dh == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    return backward_for<typename decltype(tag)::type>(act, dout, pre, dh, n, stream);
  });
}

double activation_host(Activation act, double x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x > 0 ? x : 0.0;
    case Activation::gelu: return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
  }
  return x;
}

double activation_derivative_host(Activation act, double x) {
  switch (act) {
    case Activation::none: return 1.0;
    case Activation::relu: return x > 0 ? 1.0 : 0.0;
    case Activation::gelu: {
      const double t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x * x);
    }
  }
  return 1.0;
}

}  // namespace wflops::kernels
