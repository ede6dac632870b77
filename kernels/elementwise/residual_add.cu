// out[i] = a[i] + b[i] (a residual connection as its own pass): fp32 arithmetic, 16-byte vector
// accesses where every pointer is aligned, a scalar tail for the rest.
#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/residual_add.cuh"

namespace wflops::kernels {

cudaError_t residual_add(DType dtype, const void* a, const void* b, void* out, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (a == nullptr || b == nullptr || out == nullptr) return cudaErrorInvalidValue;
  // Each element is read and written by the same thread, so out may alias a or b.
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return vec::launch_flat<vec::Add, T, T>({a, b}, {out}, n, stream);
  });
}

}  // namespace wflops::kernels
