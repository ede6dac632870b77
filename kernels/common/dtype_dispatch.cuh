// From a runtime DType to the C++ type a kernel template is instantiated for: the one place the
// elementwise kernels (and the fill and non-finite count the harness uses) spell out which storage
// type each dtype has, and that any other dtype is refused with cudaErrorInvalidValue.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "dtype.hpp"

namespace wflops::kernels {

// A type passed as a value, so that a generic lambda can receive it:
//   dispatch_float_types(dtype, [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <typename T>
struct TypeTag {
  using type = T;
};

// Returns f(TypeTag<T>{}) with T the storage type of dtype: float for fp32, __half for fp16,
// __nv_bfloat16 for bf16; cudaErrorInvalidValue (without calling f) for any other dtype. f is
// instantiated for all three types, so it must compile for each.
template <typename F>
cudaError_t dispatch_float_types(DType dtype, F&& f) {
  switch (dtype) {
    case DType::fp32: return f(TypeTag<float>{});
    case DType::fp16: return f(TypeTag<__half>{});
    case DType::bf16: return f(TypeTag<__nv_bfloat16>{});
    default: return cudaErrorInvalidValue;
  }
}

// The dtype whose storage holds a dtype's elements: tf32 is stored as fp32 (dtype.hpp); every
// other dtype is its own.
constexpr DType storage_dtype(DType dtype) { return dtype == DType::tf32 ? DType::fp32 : dtype; }

}  // namespace wflops::kernels
