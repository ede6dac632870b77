// The shape every attention kernel takes. Q, K, V, O and their gradients are [batch, heads, seq,
// head_dim] row-major (one contiguous [seq][head_dim] slice per (batch, head)); the log-sum-exp L
// and the row dots D are fp32 [batch, heads, seq].
#pragma once

namespace wflops::kernels {

struct AttentionDims {
  long batch = 0;
  long heads = 0;
  long seq = 0;
  long head_dim = 0;
  bool causal = false;
  long slices() const { return batch * heads; }
  long rows() const { return batch * heads * seq; }  // query rows of all slices
};

}  // namespace wflops::kernels
