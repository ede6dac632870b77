// The FLOP model: attention (activations times activations: not weight FLOPs).
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once

namespace wflops::flops {

// ---- Attention (not weight FLOPs) -------------------------------------------------------------
// Per batch element and head, with sequence s and head dim d_h:
//   S = Q K^T : [s,d_h]x[d_h,s], 2*s*s*d_h FLOPs;   O = P V : [s,s]x[s,d_h], 2*s*s*d_h FLOPs,
// so the forward is 4*b*h*s^2*d_h. A causal mask leaves half of the s^2 scores, so half of it.
double attention_forward(double batch, double heads, double seq, double head_dim, bool causal);
// Backward, by the public convention (FlashAttention papers): 2.5x the forward. It counts the
// four backward GEMMs (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: 4 x 2*s^2*d_h = 2x
// forward) plus the recomputation of S = Q K^T (0.5x forward).
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal);

}  // namespace wflops::flops
