// The FLOP model: attention (activations times activations: not weight FLOPs).
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once

namespace wflops::flops {

// ---- Attention (not weight FLOPs) -------------------------------------------------------------
// Per batch element and head, with sequence s and head dim d_h:
//   S = Q K^T : [s,d_h]x[d_h,s], 2*s*s*d_h FLOPs;   O = P V : [s,s]x[s,d_h], 2*s*s*d_h FLOPs,
// so the forward is 4*b*h*s^2*d_h. A causal mask leaves half of the s^2 scores, so half of it
// (the public convention: the s extra diagonal scores of s(s+1)/2 are ignored).
double attention_forward(double batch, double heads, double seq, double head_dim, bool causal);
// Backward, by the public convention (FlashAttention papers): 2.5x the forward. It counts the
// four backward GEMMs (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: 4 x 2*s^2*d_h = 2x
// forward) plus the recomputation of S = Q K^T (0.5x forward).
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal);

// ---- What each implementation actually multiplies ---------------------------------------------
// Unfused (cuBLAS GEMMs over whole score matrices): the GEMMs compute every one of the s^2
// scores even when a causal mask throws half of them away, so causal changes nothing.
//   forward : S = Q K^T and O = P V          -> 4*b*h*s^2*d_h (the full, non-causal forward)
//   backward: dV, dP, dQ, dK (P is kept)     -> 8*b*h*s^2*d_h (2x the full forward, no recompute)
double attention_unfused_forward_matmul(double batch, double heads, double seq, double head_dim);
double attention_unfused_backward_matmul(double batch, double heads, double seq, double head_dim);

// Tiled (fused) kernels compute scores in tiles of block_q queries x block_k keys; a causal kernel
// skips the tiles that lie wholly above the diagonal. This is the number of score elements inside
// the computed tiles, clipped to the sequence (a ragged last tile counts its real rows/columns):
//   not causal: s^2;
//   causal: sum over query tiles i (rows r0 = i*block_q .. r1 = min(r0 + block_q, s) - 1) of
//           (r1 - r0 + 1) * min(s, ceil((r1 + 1) / block_k) * block_k)
// i.e. each query tile computes every key tile that starts at or before its last row.
double attention_tiled_scores(double seq, long block_q, long block_k, bool causal);
// Fused forward: 2 GEMMs (Q K^T, P V) over the computed score tiles: 4*d_h FLOPs per score.
double attention_fused_forward_matmul(double batch, double heads, double seq, double head_dim, bool causal,
                                      long block_q, long block_k);
// Fused backward (FlashAttention-2): 5 GEMMs per computed score: S = Q K^T recomputed, dP = dO V^T,
// dV += P^T dO, dK += dS^T Q, dQ += dS K -> 10*d_h FLOPs per score (2.5x the fused forward).
double attention_fused_backward_matmul(double batch, double heads, double seq, double head_dim, bool causal,
                                       long block_q, long block_k);

// Bytes of one batch of score matrices (S, P, dP or dS) that the unfused path keeps in memory:
// b*h*s^2 elements of elem_bytes.
double attention_score_bytes(double batch, double heads, double seq, double elem_bytes);

// Least bytes one fused forward moves: read Q, K, V, write O (b*h*s*d_h elements each) and the
// fp32 log-sum-exp L (b*h*s). Backward: read Q, K, V, O, dO, L, write dQ, dK, dV.
double attention_forward_bytes(double batch, double heads, double seq, double head_dim, double elem_bytes);
double attention_backward_bytes(double batch, double heads, double seq, double head_dim, double elem_bytes);

// ---- Attention's share of a training step -------------------------------------------------------
// One transformer layer of hidden size H (heads * head_dim = H) on T tokens at sequence length s:
//   weight FLOPs: the projections Q, K, V, O (4H^2 weights) and the MLP (8H^2) = 12H^2 weights,
//                 6 FLOPs per weight per token -> 6 * 12H^2 * T = 72 H^2 T;
//   attention   : T/s sequences, forward 4 * (T/s) * s^2 * H = 4 T s H (halved if causal);
//                 forward + backward = 3.5x forward (backward 2.5x by the public convention)
//                 -> 14 T s H (7 T s H causal).
// So attention's share of the step's FLOPs is 14 s / (14 s + 72 H) (7 s / (7 s + 72 H) causal),
// independent of T.
double layer_weight_step_flops(double hidden, double tokens);
double layer_attention_step_flops(double hidden, double seq, double tokens, bool causal);
double attention_flop_share(double hidden, double seq, bool causal);
// Share of step time: the weight FLOPs run at tau_weight (the dense GEMMs' measured rate), the
// attention forward at tau_fwd and backward at tau_bwd (all in the same unit, e.g. TFLOP/s):
//   t_w = W / tau_weight, t_a = F / tau_fwd + 2.5 F / tau_bwd, share = t_a / (t_a + t_w).
double attention_time_share(double hidden, double seq, bool causal, double tau_weight, double tau_fwd, double tau_bwd);

}  // namespace wflops::flops
