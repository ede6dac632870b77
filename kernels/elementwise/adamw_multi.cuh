// AdamW over a list of fp32 master tensors in one launch (the "multi-tensor" optimizer step that
// fused frameworks run), writing each updated tensor's fp16/bf16 compute copy in the same pass.
// The update is adamw.cuh's, per element, with weight decay on or off per tensor (GPT-2 decays its
// matrices and embeddings, not its biases and LayerNorm gains).
//
// The tensors are cut into chunks of kAdamWChunk elements; a table of the tensors and the chunks
// (built on the host once, when the model's buffers are allocated, and copied to the device) lets
// block b of the one launch find its chunk without searching. Each block updates its chunk with
// float4 accesses when the tensor's fp32 arrays are 16-byte aligned (and its copy 8-byte
// aligned), one element at a time otherwise.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "dtype.hpp"
#include "elementwise/adamw.cuh"

namespace wflops::kernels {

constexpr std::size_t kAdamWChunk = 65536;  // elements per block: 256 threads x 64 float4s

struct AdamWTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  void* copy = nullptr;  // the compute copy (the step's dtype), or nullptr for none
  std::size_t n = 0;
  bool decay = true;  // weight decay applies (opt.weight_decay), or not (0)
};

// One chunk: elements [begin, end) of tensor `tensor`.
struct AdamWChunk {
  int tensor;
  std::size_t begin, end;
};

// The chunks of tensors of these sizes, in order: each tensor cut into pieces of at most
// kAdamWChunk elements (an empty tensor has none).
std::vector<AdamWChunk> adamw_chunks(const std::vector<std::size_t>& sizes);

// The device table of a list of tensors. prepare() copies it (synchronously) to device memory it
// owns; the tensors' buffers must outlive it and stay where they are.
class AdamWMultiTable {
 public:
  AdamWMultiTable() = default;
  ~AdamWMultiTable();
  AdamWMultiTable(const AdamWMultiTable&) = delete;
  AdamWMultiTable& operator=(const AdamWMultiTable&) = delete;

  // cudaErrorInvalidValue for a tensor with n > 0 and a null param, grad, m or v.
  cudaError_t prepare(const std::vector<AdamWTensor>& tensors);
  std::size_t chunks() const { return chunks_; }
  const void* tensor_table() const { return device_; }  // the tensors, as the kernel reads them
  const AdamWChunk* chunk_table() const { return chunk_table_; }

 private:
  void* device_ = nullptr;  // one allocation: the tensors, then the chunks
  const AdamWChunk* chunk_table_ = nullptr;
  std::size_t chunks_ = 0;
};

// One AdamW step (step counts from 1) over every tensor of the table; copy_dtype (fp16 or bf16)
// is the dtype of the tensors' copies (any value when none has one; fp32 writes fp32 copies).
cudaError_t adamw_multi_step(const AdamW& opt, int step, DType copy_dtype, const AdamWMultiTable& table,
                             cudaStream_t stream);

// The host reference: adamw_step_host on every element, with the tensor's decay.
void adamw_multi_step_host(const AdamW& opt, int step, bool decay, std::vector<double>& param,
                           const std::vector<double>& grad, std::vector<double>& m, std::vector<double>& v);

}  // namespace wflops::kernels
