// Multi-tensor AdamW (adamw_multi.cuh): one block per chunk of the table, the update of adamw.cu in
// the same order of operations, the compute copy written from the updated fp32 value.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/adamw_multi.cuh"
#include "elementwise/adamw_update.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;
constexpr std::size_t kAlign = 256;

// A tensor as the kernel reads it from the table.
struct DeviceTensor {
  float* param;
  const float* grad;
  float* m;
  float* v;
  void* copy;
  std::size_t n;
  float decay;  // 1 or 0: multiplies the step's weight decay
  int vectorised;
};

using adamw_detail::StepConstants;
using adamw_detail::update;
using adamw_detail::update4;

// Four consecutive copies from four floats: one 8-byte store for fp16/bf16, one 16-byte for fp32.
template <typename T>
__device__ __forceinline__ void store4(T* p, const float4& x) {
  T e[4] = {vec::from_float<T>(x.x), vec::from_float<T>(x.y), vec::from_float<T>(x.z), vec::from_float<T>(x.w)};
  if constexpr (sizeof(T) == 2) {
    uint2 bits;
    memcpy(&bits, e, sizeof bits);
    *reinterpret_cast<uint2*>(p) = bits;
  } else {
    *reinterpret_cast<float4*>(p) = x;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    adamw_multi_kernel(StepConstants k, const DeviceTensor* tensors, const AdamWChunk* chunks) {
  const AdamWChunk c = chunks[blockIdx.x];
  const DeviceTensor t = tensors[c.tensor];
  const float wd = t.decay * k.weight_decay;  // exactly the step's decay, or 0
  T* copy = static_cast<T*>(t.copy);
  if (t.vectorised) {  // begin is a multiple of kAdamWChunk, so of 4; the tail past n/4*4 is scalar
    const std::size_t vec_end = c.end / 4 * 4;
    for (std::size_t i = c.begin + 4 * threadIdx.x; i < vec_end; i += 4 * kThreads) {
      const float4 p = update4(k, wd, t.param, t.grad, t.m, t.v, i);
      if (copy != nullptr) store4(copy + i, p);
    }
    for (std::size_t i = vec_end + threadIdx.x; i < c.end; i += kThreads) {
      update(k, wd, t.param[i], t.grad[i], t.m[i], t.v[i]);
      if (copy != nullptr) copy[i] = vec::from_float<T>(t.param[i]);
    }
    return;
  }
  for (std::size_t i = c.begin + threadIdx.x; i < c.end; i += kThreads) {
    update(k, wd, t.param[i], t.grad[i], t.m[i], t.v[i]);
    if (copy != nullptr) copy[i] = vec::from_float<T>(t.param[i]);
  }
}

std::size_t aligned_up(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

std::vector<AdamWChunk> adamw_chunks(const std::vector<std::size_t>& sizes) {
  std::vector<AdamWChunk> out;
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    for (std::size_t begin = 0; begin < sizes[t]; begin += kAdamWChunk) {
      const std::size_t end = sizes[t] - begin > kAdamWChunk ? begin + kAdamWChunk : sizes[t];
      out.push_back({static_cast<int>(t), begin, end});
    }
  }
  return out;
}

AdamWMultiTable::~AdamWMultiTable() {
  if (device_ != nullptr) cudaFree(device_);
}

cudaError_t AdamWMultiTable::prepare(const std::vector<AdamWTensor>& tensors) {
  if (tensors.size() > 0x7fffffffu) return cudaErrorInvalidValue;
  std::vector<DeviceTensor> table;
  std::vector<std::size_t> sizes;
  for (const AdamWTensor& t : tensors) {
    if (t.n > 0 && (t.param == nullptr || t.grad == nullptr || t.m == nullptr || t.v == nullptr))
      return cudaErrorInvalidValue;
    // The vector path stores 4 copies at once (8 bytes of fp16/bf16, 16 of fp32): ask for 16.
    const bool vectorised = vec::aligned16(t.param) && vec::aligned16(t.grad) && vec::aligned16(t.m) &&
                            vec::aligned16(t.v) && vec::aligned16(t.copy);
    table.push_back({t.param, t.grad, t.m, t.v, t.copy, t.n, t.decay ? 1.0f : 0.0f, vectorised ? 1 : 0});
    sizes.push_back(t.n);
  }
  const std::vector<AdamWChunk> chunks = adamw_chunks(sizes);
  if (chunks.size() > 0x7fffffffu) return cudaErrorInvalidValue;
  if (device_ != nullptr) {
    cudaError_t e = cudaFree(device_);
    device_ = nullptr;
    chunk_table_ = nullptr;
    chunks_ = 0;
    if (e != cudaSuccess) return e;
  }
  if (chunks.empty()) return cudaSuccess;
  const std::size_t tensor_bytes = aligned_up(table.size() * sizeof(DeviceTensor));
  const std::size_t bytes = tensor_bytes + chunks.size() * sizeof(AdamWChunk);
  cudaError_t e = cudaMalloc(&device_, bytes);
  if (e != cudaSuccess) {
    device_ = nullptr;
    return e;
  }
  char* base = static_cast<char*>(device_);
  e = cudaMemcpy(base, table.data(), table.size() * sizeof(DeviceTensor), cudaMemcpyHostToDevice);
  if (e == cudaSuccess)
    e = cudaMemcpy(base + tensor_bytes, chunks.data(), chunks.size() * sizeof(AdamWChunk), cudaMemcpyHostToDevice);
  if (e != cudaSuccess) return e;
  chunk_table_ = reinterpret_cast<const AdamWChunk*>(base + tensor_bytes);
  chunks_ = chunks.size();
  return cudaSuccess;
}

cudaError_t adamw_multi_step(const AdamW& opt, int step, DType copy_dtype, const AdamWMultiTable& table,
                             cudaStream_t stream) {
  if (step < 1) return cudaErrorInvalidValue;
  if (table.chunks() == 0) return cudaSuccess;
  const StepConstants k = adamw_detail::step_constants(opt, step);
  const auto* tensors = static_cast<const DeviceTensor*>(table.tensor_table());
  const unsigned blocks = static_cast<unsigned>(table.chunks());
  return dispatch_float_types(copy_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    adamw_multi_kernel<T><<<blocks, kThreads, 0, stream>>>(k, tensors, table.chunk_table());
    return cudaGetLastError();
  });
}

void adamw_multi_step_host(const AdamW& opt, int step, bool decay, std::vector<double>& param,
                           const std::vector<double>& grad, std::vector<double>& m, std::vector<double>& v) {
  AdamW o = opt;
  if (!decay) o.weight_decay = 0;
  for (std::size_t i = 0; i < param.size(); ++i) adamw_step_host(o, step, param[i], grad[i], m[i], v[i]);
}

}  // namespace wflops::kernels
