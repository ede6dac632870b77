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
// ---- end of elementwise passes and casts ------------------------------------------------------

}  // namespace wflops::flops
