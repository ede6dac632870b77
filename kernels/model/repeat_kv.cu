// repeat_kv's expansion and its gradient's group sum (repeat_kv.cuh).
#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "model/repeat_kv.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    expand_kernel(const T* kv, T* out, std::size_t n, std::size_t head_elems, std::size_t heads, std::size_t group) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    // Output element i lies in slice b·heads + j; query head j reads K/V head j / group of batch b,
    // slice b·(heads / group) + j / group of kv.
    const std::size_t slice = i / head_elems, within = i - slice * head_elems;
    const std::size_t b = slice / heads, j = slice - b * heads;
    out[i] = kv[(b * (heads / group) + j / group) * head_elems + within];
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const T* dout, T* dkv, std::size_t n, std::size_t head_elems, std::size_t group) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    // dkv element i lies in kv slice i / head_elems = b·kvh + g, whose query heads are the slices
    // (b·kvh + g)·group + r of dout.
    const std::size_t slice = i / head_elems, within = i - slice * head_elems;
    float sum = 0;
    for (std::size_t r = 0; r < group; ++r) sum += vec::to_float(dout[(slice * group + r) * head_elems + within]);
    dkv[i] = vec::from_float<T>(sum);
  }
}

int blocks_for(std::size_t n) {
  const std::size_t wanted = (n + kThreads - 1) / kThreads;
  return static_cast<int>(wanted < 65536 ? (wanted ? wanted : 1) : 65536);
}

bool valid(const RepeatKvDims& d) { return d.kv_heads > 0 && d.heads % d.kv_heads == 0; }

// One launch over the output of either direction: the expansion's h heads, or the group sum's kvh.
template <bool kExpand>
cudaError_t launch(DType dtype, const void* src, void* dst, const RepeatKvDims& dims, cudaStream_t stream) {
  if (!valid(dims)) return cudaErrorInvalidValue;
  const std::size_t head_elems = dims.seq * dims.head_dim;
  const std::size_t n = dims.batch * (kExpand ? dims.heads : dims.kv_heads) * head_elems;
  if (n == 0) return cudaSuccess;
  if (src == nullptr || dst == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(src);
    T* out = static_cast<T*>(dst);
    if constexpr (kExpand) {
      expand_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(in, out, n, head_elems, dims.heads, dims.group());
    } else {
      reduce_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(in, out, n, head_elems, dims.group());
    }
    return cudaGetLastError();
  });
}

}  // namespace

cudaError_t repeat_kv_forward(DType dtype, const void* kv, void* out, const RepeatKvDims& dims, cudaStream_t stream) {
  return launch<true>(dtype, kv, out, dims, stream);
}

cudaError_t repeat_kv_backward(DType dtype, const void* dout, void* dkv, const RepeatKvDims& dims,
                               cudaStream_t stream) {
  return launch<false>(dtype, dout, dkv, dims, stream);
}

void repeat_kv_forward_host(const double* kv, double* out, const RepeatKvDims& dims) {
  const std::size_t head_elems = dims.seq * dims.head_dim, group = dims.group();
  for (std::size_t slice = 0; slice < dims.batch * dims.heads; ++slice) {
    const std::size_t b = slice / dims.heads, j = slice % dims.heads;
    const double* src = kv + (b * dims.kv_heads + j / group) * head_elems;
    for (std::size_t e = 0; e < head_elems; ++e) out[slice * head_elems + e] = src[e];
  }
}

void repeat_kv_backward_host(const double* dout, double* dkv, const RepeatKvDims& dims) {
  const std::size_t head_elems = dims.seq * dims.head_dim, group = dims.group();
  for (std::size_t slice = 0; slice < dims.batch * dims.kv_heads; ++slice) {
    for (std::size_t e = 0; e < head_elems; ++e) {
      double sum = 0;
      for (std::size_t r = 0; r < group; ++r) sum += dout[(slice * group + r) * head_elems + e];
      dkv[slice * head_elems + e] = sum;
    }
  }
}

}  // namespace wflops::kernels
