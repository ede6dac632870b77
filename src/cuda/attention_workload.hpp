// Attention forward and backward as harness Workloads: unfused (cuBLAS + our softmax), fused
// (our FlashAttention-2 kernels) and cudnn (cuDNN's fused attention through the graph API;
// cuda/cudnn_sdpa.hpp; its backward gets O and L from cuDNN's forward). Q, K, V, O and gradients [b, h, s, d]
// row-major, bf16 or fp16, softmax scale 1/sqrt(d). A backward workload times the backward alone: the forward outputs
// it needs (O, L, and P for the unfused path) are prepared in allocate() and verify().
#pragma once
#include <memory>
#include <string>

#include "attention/attention_dims.cuh"
#include "cuda/harness.hpp"
#include "dtype.hpp"

namespace wflops {

enum class AttentionImpl { unfused, fused, cudnn };
enum class AttentionPass { forward, backward };

struct AttentionCase {
  AttentionImpl impl = AttentionImpl::fused;
  AttentionPass pass = AttentionPass::forward;
  DType dtype = DType::bf16;
  kernels::AttentionDims dims;
};

std::string attention_impl_name(AttentionImpl impl);  // "unfused", "fused", "cudnn"

// "" when the implementation can run the case, else why not (checked without a GPU; whether cuDNN
// is installed and accepts the shape is only known when the workload is allocated).
std::string attention_unsupported_reason(const AttentionCase& c);

// FLOPs the implementation's matrix multiplications actually perform (flops::attention_*_matmul).
double attention_matmul_flops(const AttentionCase& c);

// Device bytes the case needs with one set of inputs: inputs, outputs, and the implementation's
// scratch (the unfused path's two b*h*s^2 score matrices, the fused backward's fp32 dQ workspace,
// cuDNN's backward dQ accumulator and row dot; not cuDNN's engine workspace, unknown before the plan).
double attention_memory_bytes(const AttentionCase& c);

std::unique_ptr<Workload> make_attention_workload(const AttentionCase& c);

}  // namespace wflops
