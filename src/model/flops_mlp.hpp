// The FLOP model: MLP training steps.
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once

namespace wflops::flops {

// ---- MLP block (d -> d_ff -> d) ---------------------------------------------------------------
// Two weight matrices, d x d_ff and d_ff x d: 2*d*d_ff weights (biases are not weight FLOPs).
// E.g. d = 1600, d_ff = 6400: 20,480,000 weights.
double mlp_weights(double d, double d_ff);
// Forward: h = x W1^T is a [T,d]x[d,d_ff] GEMM (2*d*d_ff*T), y = a W2^T the same again:
// 2 * weights * T. A step adds the input gradients (da = dy W2, dx = dh W1) and the weight gradients
// (dW2 = dy^T a, dW1 = dh^T x), 2 * weights * T each: 6 * weights * T (linear_training_step).
double mlp_forward(double d, double d_ff, double tokens);        // 2 * weights * T
double mlp_training_step(double d, double d_ff, double tokens);  // 6 * weights * T

// The biases of the two nn.Linear layers, b1 [d_ff] and b2 [d]: d_ff + d parameters. They are
// parameters (cast and updated by the optimizer in mixed precision) but not weight FLOPs.
double mlp_bias_params(double d, double d_ff);

// Gated MLP (SwiGLU): out = (silu(x Wg^T) * (x Wu^T)) Wd^T with three d x d_ff matrices, so
// 3*d*d_ff weights; d_ff = 8/3 d keeps the weights of the 4d MLP (3 * 8/3 = 2 * 4), rounded up to
// a multiple of 64 for the tensor cores. E.g. d = 1600: 8*1600/3 = 4266.7 -> 4288.
double swiglu_hidden(double d);
double swiglu_weights(double d, double d_ff);

// ---- Elementwise passes and casts (bytes) ------------------------------------------------------
// These passes do no weight FLOPs; they are measured by the bytes they must move at least: each
// input read once, each output written once (caches and scratch buffers not counted). elem is
// bytes per element (fp32 4, bf16/fp16 2).
// Bias add over a [rows, cols] matrix: read the matrix and the bias (cols), write the matrix:
// (2 * rows * cols + cols) * elem. E.g. bf16 8192 x 6400: (2 * 52,428,800 + 6400) * 2 = 209,728,000.
double bias_add_bytes(double rows, double cols, double elem);
// Activation forward out = act(in): read n, write n: 2 * n * elem.
double activation_forward_bytes(double n, double elem);
// Activation backward dh = dout * act'(pre): read dout and pre, write dh: 3 * n * elem.
double activation_backward_bytes(double n, double elem);
// Residual add out = a + b: read a and b, write out: 3 * n * elem.
double residual_add_bytes(double n, double elem);
// Bias gradient db[c] = sum_r d[r, c]: read d (rows * cols * elem), write db (cols * db_elem).
double bias_grad_bytes(double rows, double cols, double elem, double db_elem);
// Cast of n elements: read n * in_elem, write n * out_elem. fp32 -> bf16: 6 bytes per element.
double cast_bytes(double n, double in_elem, double out_elem);
// Device-to-device copy of n elements: read and write n * elem: 2 * n * elem.
double copy_bytes(double n, double elem);
// AdamW step on fp32 master weights with fp32 moments, per parameter: read param, grad, m, v
// (4 * 4 bytes), write param, m, v (3 * 4 bytes): 28 * n.
double adamw_bytes(double n);
// Elementwise product out = a * b: read a and b, write out: 3 * n * elem.
double multiply_bytes(double n, double elem);
// Fused SwiGLU forward a = silu(g) * u over n = rows * d_ff: read g and u, write a: 3 * n * elem.
double swiglu_forward_bytes(double n, double elem);
// Fused SwiGLU backward: read da, g and u, write dg and du: 5 * n * elem.
double swiglu_backward_bytes(double n, double elem);

// The passes of one MLP step outside its GEMMs, as src/cuda/mlp_step.cpp runs them, summed by the
// part of the step's time split they belong to (elementwise, cast, optimizer), so the split's time
// of each part becomes a bandwidth (phase_gbps_<part>). Each pass counts its own least traffic
// (above); an intermediate written by one pass and read by the next is counted twice, because the
// unfused step really moves it twice.
struct MlpPasses {
  bool bias = false;        // bias adds forward, bias gradients backward
  bool activation = false;  // activation forward / backward on [T, d_ff]
  bool residual = false;    // residual adds on [T, d] forward (y += x) and backward (dx += dy)
  bool fused = false;       // cuBLASLt epilogues: bias, activation and residual ride in the GEMMs
  bool gated = false;       // SwiGLU on [T, d_ff] (no bias, activation or residual)
  bool gate_fused = false;  // gated: our one-pass kernels, else silu then multiply (eager)
  bool mixed = false;       // fp32 masters cast each step; fp32 gradients; AdamW on every parameter
  bool backward = true;     // a training step (else its forward pass only)
};
struct MlpPhaseBytes {
  double elementwise = 0, cast = 0, optimizer = 0;
};
// elem: bytes per element of the activations (2); parameters = weights + biases.
// Unfused forward: bias_add [T, d_ff], activation [T d_ff] (whenever bias or activation, as the
// step writes a separate activation buffer), bias_add [T, d], residual_add [T d]. Backward:
// bias_grad [T, d], activation backward [T d_ff], bias_grad [T, d_ff], residual_add [T d], with
// bias gradients in the gradient dtype (fp32 when mixed). Gated forward: swiglu_forward (fused) or
// silu (activation_forward) + multiply (unfused); backward: swiglu_backward, or two multiplies
// (da * u, da * s) and silu's backward (activation_backward). Cast: parameters fp32 -> elem.
// Optimizer: adamw_bytes(parameters), training steps only.
// E.g. mixed_unfused_relu_residual fp16 at d = 1600, d_ff = 6400, T = 8192: elementwise
// 550,518,400 forward + 524,320,000 backward = 1,074,838,400; cast 20,488,000 * 6 = 122,928,000;
// optimizer 20,488,000 * 28 = 573,664,000.
MlpPhaseBytes mlp_phase_bytes(double d, double d_ff, double tokens, double elem, double parameters,
                              const MlpPasses& passes);
// ---- end of elementwise passes and casts ------------------------------------------------------

}  // namespace wflops::flops
