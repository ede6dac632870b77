// Activation forward (out = act(in)) and backward (dh = dout * act'(pre)) as their own elementwise
// passes, fp32 arithmetic, 16-byte vector accesses with a scalar tail; the double-precision host
// versions beside them are the references.
#include <cmath>
#include <type_traits>

#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/activation.cuh"

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

// The two passes as functors of the shared elementwise loop (elementwise_vector.cuh): out = act(in),
// and dh = dout * act'(pre) with x = (dout, pre).
template <Activation A>
struct Forward {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = act_forward<A>(x[0]); }
};

template <Activation A>
struct Backward {
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * act_derivative<A>(x[1]); }
};

// Returns f(std::integral_constant<Activation, A>{}) for the runtime act (cudaErrorInvalidValue
// for a value outside the enum).
template <typename F>
cudaError_t dispatch_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::none: return f(std::integral_constant<Activation, Activation::none>{});
    case Activation::relu: return f(std::integral_constant<Activation, Activation::relu>{});
    case Activation::gelu: return f(std::integral_constant<Activation, Activation::gelu>{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t activation_forward(DType dtype, Activation act, const void* in, void* out, std::size_t n,
                               cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (in == nullptr || out == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_activation(
        act, [&](auto a) { return vec::launch_flat<Forward<decltype(a)::value>, T, T>({in}, {out}, n, stream); });
  });
}

cudaError_t activation_backward(DType dtype, Activation act, const void* dout, const void* pre, void* dh, std::size_t n,
                                cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (dout == nullptr || pre == nullptr || dh == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_activation(act, [&](auto a) {
      return vec::launch_flat<Backward<decltype(a)::value>, T, T>({dout, pre}, {dh}, n, stream);
    });
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
