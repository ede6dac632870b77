// The FLOP model: every FLOP and byte count wflops reports is written here, once, with its
// derivation. Benchmarks, `wflops list`, the planner and the peers all call these functions, so a
// figure in one place always matches the figure in another.
//
// Conventions (docs/conventions.md):
//  - one multiply-add is 2 FLOPs;
//  - weight FLOPs (activations multiplied by weight matrices) are counted separately from
//    attention FLOPs (activations multiplied by activations) and MoE routing FLOPs;
//  - biases, norms, activations and residual additions are not weight FLOPs; where they matter
//    they are reported as bytes moved.
// Counts are doubles: 6*N*D for a real training run (~1e23) overflows int64, and a double holds
// every GEMM count below 2^53 (a 16384^3 GEMM is 8.8e12) exactly.
//
// The module's files, one namespace: this one (GEMMs, linear layers, training runs), then one per
// benchmark family, included at the end so that "flops.hpp" gives all of it:
//   flops_mlp.hpp (MLP steps, elementwise passes, casts, optimizer), flops_attention.hpp,
//   flops_moe.hpp, flops_transformer.hpp (whole-model parameter and FLOP counts), and
//   flops_model.hpp (the model_step family: a GPT-2 or Llama step's weight, attention and model
//   FLOPs), which, like flops_transformer.hpp, is included by those who need it.
#pragma once
#include <cstdint>

namespace wflops::flops {

// ---- GEMM ----------------------------------------------------------------------------------
// C[M,N] = A[M,K] * B[K,N]: each of the M*N outputs is a dot product of length K, i.e. K
// multiply-adds = 2K FLOPs, so 2*M*N*K. (The beta*C term, when present, is not counted.)
double gemm(double m, double n, double k);

// The least bytes a GEMM must move: read A and B once, write C once.
double gemm_bytes(double m, double n, double k, double a_elem_bytes, double b_elem_bytes, double c_elem_bytes);

// ---- Training steps of linear layers (weight FLOPs) -----------------------------------------
// A linear layer y = x W with W of shape [d_in, d_out] applied to T tokens:
//   forward         y  = x W          : a [T,d_in]x[d_in,d_out] GEMM, 2*W*T FLOPs (W = d_in*d_out)
//   input gradient  dx = dy W^T       : [T,d_out]x[d_out,d_in],          2*W*T
//   weight gradient dW = x^T dy       : [d_in,T]x[T,d_out],              2*W*T
// so a training step costs 6 FLOPs per weight per token: the 6 of C = 6*N*D.
double linear_forward(double weights, double tokens);        // 2*W*T
double linear_backward(double weights, double tokens);       // 4*W*T
double linear_training_step(double weights, double tokens);  // 6*W*T

// A training run over D tokens of a model with N (non-embedding) weights: C = 6*N*D.
double training_run(double params, double tokens);

}  // namespace wflops::flops

#include "model/flops_attention.hpp"
#include "model/flops_mlp.hpp"
#include "model/flops_moe.hpp"
