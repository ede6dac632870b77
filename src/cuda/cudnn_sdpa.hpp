// cuDNN's fused scaled-dot-product attention (forward) through the cuDNN 9 graph (backend) API:
// the vendor reference beside our kernels. The operation graph is the pattern cuDNN's fused
// attention engines recognise:
//   S = Q Kᵀ → ·scale → [causal: GEN_INDEX row, col; row >= col; BINARY_SELECT(S, -inf)]
//   → m = max over keys → exp(S − m) → l = sum over keys → Stats = m + log l → P = exp / l → O = P V
// with Q, K, V, O bf16/fp16 [b, h, s, d] (explicit strides, K read transposed through its strides),
// every intermediate a virtual fp32 tensor except P, and Stats a real fp32 [b, h, s, 1] output: the
// natural log-sum-exp of the scaled scores, which is wflops' L convention unchanged. P, the A input
// of O = P V, is declared in the I/O type (bf16/fp16): the fused engines take bmm2's A operand only
// in the I/O type (cudnn-frontend's SDPA forward node sets it so, calling it a backend requirement).
//
// The backward (SdpaBackward) recomputes P from Stats and follows the layout of cuDNN's frontend
// SDPA backward node (see sdpa_backward_graph).
//
// The graph is first described as plain data (SdpaGraph, testable without a GPU), then lowered to
// backend descriptors; every cuDNN call is checked and a failure names the call, the status and
// cuDNN's last error message.
#pragma once
#include <cuda_runtime.h>
#include <cudnn_graph.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_dims.cuh"
#include "dtype.hpp"

namespace wflops::cudnn {

// Unique ids of the graph's real (non-virtual) tensors: the variant pack binds pointers to them.
enum SdpaUid : int64_t {
  kUidQ = 1,
  kUidK = 2,
  kUidV = 3,
  kUidO = 4,
  kUidStats = 5,
  kUidScale = 6,
  kUidNegInf = 7,
  // Backward only (Q, K, V, O, Stats and the scalars above are shared with the forward).
  kUidDO = 8,
  kUidDQ = 9,
  kUidDK = 10,
  kUidDV = 11,
  kUidOne = 12,         // the by-value 1.0 the frontend multiplies the row dot D with
  kUidSoftmaxSum = 13,  // D = rowsum(dO * O), fp32 [b, h, s, 1], in our workspace (where D is real)
  kUidDQAccum = 14,     // fp32 dQ accumulator [b, h, s, d], in our workspace
  kFirstVirtualUid = 100
};

struct TensorSpec {
  int64_t uid = 0;
  std::string name;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::vector<int64_t> dims, strides;
  bool is_virtual = false;
  bool by_value = false;  // a host scalar passed by value in the variant pack
  cudnnBackendTensorReordering_t reordering = CUDNN_TENSOR_REORDERING_NONE;  // set only when not NONE
};

enum class OpKind { matmul, pointwise, reduction, reshape };

struct OpSpec {
  OpKind kind = OpKind::pointwise;
  std::string name;
  cudnnPointwiseMode_t pointwise = CUDNN_POINTWISE_ADD;       // kind == pointwise
  cudnnReduceTensorOp_t reduction = CUDNN_REDUCE_TENSOR_ADD;  // kind == reduction
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int64_t axis = -1;  // GEN_INDEX only
  // Tensor uids. matmul: a, b → y. pointwise: x[, b][, t (BINARY_SELECT's mask)] → y.
  // reduction, reshape: x → y (a reshape re-reads x's memory through y's dims and strides).
  int64_t x = 0, b = 0, t = 0, y = 0;
};

struct SdpaGraph {
  std::vector<TensorSpec> tensors;
  std::vector<OpSpec> ops;
  const TensorSpec& tensor(int64_t uid) const;  // throws std::logic_error when absent
};

// "" when the shape can be handed to cuDNN's fused attention, else why not (checked without a GPU;
// cuDNN itself may still refuse a shape when the plan is built, with its own message).
std::string sdpa_unsupported_reason(DType dtype, const kernels::AttentionDims& dims);

// The forward graph as data. The causal mask's fill value (tensor kUidNegInf) and the scale are
// passed by value at run time.
SdpaGraph sdpa_forward_graph(DType dtype, const kernels::AttentionDims& dims);

// The layouts of the backward graph, as cuDNN's frontend (cudnn-frontend, the SDPA backward node in
// include/cudnn_frontend/node/scaled_dot_product_flash_attention.h) emitted them over cuDNN 9's
// life. The engines match the graph's pattern, so the plan tries each in turn until one is taken.
//   current:      frontend 1.11 on. D is a real fp32 tensor (kUidSoftmaxSum) in the workspace; the
//                 causal mask is applied after S − Stats; dP is used as is.
//   frontend_1_8: frontend 1.8 and 1.9. D real, as in current; the causal mask comes before
//                 S − Stats (as in the forward); dP is multiplied by the by-value 1.0 (the
//                 frontend's no-dropout mask). (1.10 moved the mask after S − Stats and kept dP · 1.)
//   legacy:       frontend up to 1.7. D is virtual; mask before S − Stats; dP · 1; the dQ
//                 accumulator is marked F16x16-reordered.
enum class SdpaBackwardLayout { current, frontend_1_8, legacy };
std::string sdpa_backward_layout_name(SdpaBackwardLayout layout);    // "current", "frontend-1.8", "legacy"
bool sdpa_backward_has_real_softmax_sum(SdpaBackwardLayout layout);  // D in our workspace

// The type of the reshaped K that dQ = dS K reads. Every frontend release leaves that virtual
// tensor untyped, so it takes the graph's intermediate type (fp32; cudnn-frontend's reshape node
// fills an unset virtual type from the context's intermediate data type); `io` declares it
// bf16/fp16 like the K it views.
enum class SdpaKType { intermediate, io };

struct SdpaBackwardVariant {
  SdpaBackwardLayout layout = SdpaBackwardLayout::current;
  SdpaKType k_type = SdpaKType::intermediate;
};
std::string sdpa_backward_variant_name(const SdpaBackwardVariant& v);  // "current", "legacy, K in io type"
// The variants SdpaBackward tries, in order: each layout with K as the frontend types it (newest
// layout first), then the current layout with K in the I/O type.
const std::vector<SdpaBackwardVariant>& sdpa_backward_attempts();

// The backward graph as data: from Q, K, V, O, Stats and dO (real, [b, h, s, d] / [b, h, s, 1]) to
// dQ, dK, dV (real, [b, h, s, d]):
//   D = rowsum(dO ⊙ O) · 1
//   S = Q Kᵀ · scale [→ causal mask] − Stats [→ causal mask]; P = exp(S)
//   dV = Pᵀ dO           (Pᵀ: P reshaped to [b, h, s_kv, s_q] with swapped strides, io type)
//   dP = dO Vᵀ [· 1]     (Vᵀ: V read through swapped strides, like Kᵀ)
//   dS = (dP − D) ⊙ P · scale
//   dK = dSᵀ Q           (dSᵀ: a reshape like Pᵀ)
//   dQ_accum = dS K (fp32, real; K: Kᵀ reshaped back to [b, h, s, d], typed by variant.k_type);
//   dQ = IDENTITY(dQ_accum)
SdpaGraph sdpa_backward_graph(DType dtype, const kernels::AttentionDims& dims, SdpaBackwardVariant variant = {});

// Lowers every tensor and operation of `graph` to finalized backend descriptors and frees them;
// returns how many were built. Needs cuDNN but neither a GPU nor a handle (the operation graph
// and the plan do), so it checks the graph's attributes on any machine; throws like SdpaForward.
std::size_t build_graph_descriptors(const SdpaGraph& graph);

// The forward as a finalized execution plan on the current device (built once per shape).
class SdpaForward {
 public:
  // Loads cuDNN, creates a handle, lowers the graph, asks the heuristics (mode A, then fallback)
  // for engine configurations and keeps the first that finalizes. Throws std::runtime_error naming
  // the cuDNN call and status (or, when no configuration finalizes, every attempt's status).
  SdpaForward(DType dtype, const kernels::AttentionDims& dims);
  ~SdpaForward();
  SdpaForward(const SdpaForward&) = delete;
  SdpaForward& operator=(const SdpaForward&) = delete;

  std::size_t workspace_bytes() const;
  std::string describe() const;  // "cuDNN 9.19.0 engine 8 (config 1 of 3, heuristics mode A)"

  // Enqueues O and Stats (fp32 [b, h, s]) from Q, K, V on `stream`; `workspace` holds
  // workspace_bytes(). Does not synchronise.
  void run(cudaStream_t stream, const void* q, const void* k, const void* v, void* o, float* stats, void* workspace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The backward as a finalized execution plan on the current device (built once per shape).
class SdpaBackward {
 public:
  // Like SdpaForward; tries the variants of sdpa_backward_attempts() in order; when none finalizes
  // the error lists every variant's attempts.
  SdpaBackward(DType dtype, const kernels::AttentionDims& dims);
  ~SdpaBackward();
  SdpaBackward(const SdpaBackward&) = delete;
  SdpaBackward& operator=(const SdpaBackward&) = delete;

  // Bytes of the tensors wflops places in the workspace itself (dQ accumulator, and D where the
  // layout makes it real), known without a GPU: the most any layout needs.
  static std::size_t scratch_bytes(const kernels::AttentionDims& dims);

  std::size_t workspace_bytes() const;  // the engine's workspace + scratch_bytes()
  std::string describe() const;         // like SdpaForward's, plus the graph layout
  SdpaBackwardLayout layout() const;
  SdpaBackwardVariant variant() const;

  // Enqueues dQ, dK, dV from Q, K, V, O, Stats (fp32 [b, h, s]) and dO on `stream`; `workspace`
  // holds workspace_bytes(). Zeroes the dQ accumulator on the stream first where cuDNN needs it
  // (before 9.6). Does not synchronise.
  void run(cudaStream_t stream, const void* q, const void* k, const void* v, const void* o, const float* stats,
           const void* d_o, void* dq, void* dk, void* dv, void* workspace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wflops::cudnn
