// out[r, c] = in[r, c] + bias[c] over a row-major [rows, cols] matrix, on the shared elementwise
// loop (elementwise_vector.cuh): the bias is a [rows, cols] view whose rows all start at the same
// address (row length 0), as a broadcast. fp32 arithmetic; 16-byte vector accesses when the
// pointers are aligned and a row holds whole vectors (cols a multiple of the vector width, so every
// row starts aligned); otherwise element by element. in may equal out (each element is read, then
// written, by the same thread).
#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/bias_add.cuh"

namespace wflops::kernels {

cudaError_t bias_add(DType dtype, const void* in, const void* bias, void* out, long rows, long cols,
                     cudaStream_t stream) {
  if (rows < 0 || cols < 0) return cudaErrorInvalidValue;
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (in == nullptr || bias == nullptr || out == nullptr) return cudaErrorInvalidValue;
  const auto r = static_cast<std::size_t>(rows), c = static_cast<std::size_t>(cols);
  const vec::Operands<2, 1> ops{{in, bias}, {c, 0}, {out}, {c}};
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return vec::launch_elementwise<vec::Add, T, T>(ops, r, c, stream);
  });
}

}  // namespace wflops::kernels
