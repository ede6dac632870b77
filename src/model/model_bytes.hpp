// The least bytes of each memory-bound phase of a model step (the model_step family), part of the
// module flops.hpp (same conventions, namespace wflops::flops): what a result's
// phase_bytes_<phase> counters hold, so that the harness can turn a phase's time into a bandwidth
// (phase_gbps_<phase>). The phase names are src/model/model_phases.hpp's; the GEMM phases and the
// attention core count FLOPs instead (flops_model_phases.hpp).
//
// "Least" as everywhere in the FLOP module: each input read once, each output written once, caches
// and scratch buffers not counted; a tensor written by one phase and read by the next is counted in
// both, because the step really moves it twice. What is assumed of the step:
//  - activations, their gradients and the logits are in the compute dtype (`elem` bytes: 2 for
//    bf16 and fp16); the loss reads the logits once in that dtype;
//  - mixed precision: fp32 master weights, fp32 gradients, fp32 AdamW moments m and v; every
//    parameter (norm gains and biases too) is cast to the compute dtype once per step;
//  - token ids and targets are 4-byte integers, per-row statistics (a norm's mean and 1/rms, the
//    loss's log-sum-exp) fp32;
//  - a norm saves its per-row statistics for the backward rather than recomputing them;
//  - a bias add belongs to its GEMM's phase (model_phases.hpp), so no phase here counts one.
// The elementwise building blocks shared with the MLP step (residual_add_bytes, the activation and
// SwiGLU passes, cast_bytes, adamw_bytes) are flops_mlp.hpp's.
#pragma once
#include <map>
#include <string>

#include "model/flops_model.hpp"

namespace wflops::flops {

// ---- one pass each ---------------------------------------------------------------------------
// Embedding forward x = E[ids] (+ P[position]): read the ids (4 * tokens), the gathered rows
// (tokens * d * elem) and the position table (position_rows * d * elem; gpt2: s rows, each read
// once and broadcast over the batch; llama: 0), write x (tokens * d * elem).
// E.g. gpt2 reference bf16 (8192 tokens, d 1600, 256 positions):
// 32,768 + 26,214,400 + 819,200 + 26,214,400 = 53,280,768.
double embedding_forward_bytes(double tokens, double d, double elem, double position_rows);
// Embedding backward: read the ids and dx (4 * tokens + tokens * d * elem), add each token's row
// into the fp32 gradient of the table (read and write 4 bytes per element: 8 * tokens * d; a
// token that repeats is counted each time, as a scatter-add does its work), and write the fp32
// gradient of the position table, dx summed over the batch (position_rows * d * 4).
// E.g. gpt2 reference bf16: 32,768 + 26,214,400 + 104,857,600 + 1,638,400 = 132,743,168.
double embedding_backward_bytes(double tokens, double d, double elem, double position_rows);

// A norm over [rows, cols] with `norm_params` parameters (LayerNorm: gain and bias, 2 * cols;
// RMSNorm: the gain, cols) and `stats` fp32 values saved per row (LayerNorm: mean and 1/std, 2;
// RMSNorm: 1/rms, 1).
// Forward y = norm(x): read x and the parameters, write y and the statistics:
// 2 * rows * cols * elem + norm_params * elem + 4 * stats * rows.
// E.g. a LayerNorm of 8192 x 1600 in bf16: 52,428,800 + 6,400 + 65,536 = 52,500,736.
double norm_forward_bytes(double rows, double cols, double elem, double norm_params, double stats);
// Backward: read dy, x, the statistics and the parameters, write dx and the fp32 parameter
// gradients: 3 * rows * cols * elem + 4 * stats * rows + norm_params * (elem + 4).
// E.g. the LayerNorm above: 78,643,200 + 65,536 + 6,400 + 12,800 = 78,727,936.
double norm_backward_bytes(double rows, double cols, double elem, double norm_params, double stats);
// The fused residual add + norm (the residual stream s = a + b and y = norm(s) in one kernel):
// read a and b, write s and y, so two rows * cols * elem more than the norm alone and one less
// than a residual add (3 * rows * cols * elem) and a norm apart: s is not read back.
// E.g. the LayerNorm above: 52,500,736 + 52,428,800 = 104,929,536.
double add_norm_forward_bytes(double rows, double cols, double elem, double norm_params, double stats);
// Its backward: the norm's backward that also adds the gradient arriving along the residual
// stream (read it, write the sum instead of dx): one rows * cols * elem more than the norm's
// backward, two less than it and a gradient add apart.
// E.g. the LayerNorm above: 78,727,936 + 26,214,400 = 104,942,336.
double add_norm_backward_bytes(double rows, double cols, double elem, double norm_params, double stats);

// Loss forward, softmax and cross-entropy over [tokens, vocab] logits: read the logits once and
// the targets, write each row's log-sum-exp (what the backward needs instead of the softmax) and
// the mean loss: tokens * vocab * elem + 4 * tokens + 4 * tokens + 4.
// E.g. gpt2 reference bf16 (8192 x 50257): 823,410,688 + 32,768 + 32,768 + 4 = 823,476,228.
double loss_forward_bytes(double tokens, double vocab, double elem);
// Loss backward dlogits = (softmax(logits) - onehot(target)) / tokens: read the logits, the
// targets and the log-sum-exp, write dlogits: 2 * tokens * vocab * elem + 8 * tokens.
// E.g. gpt2 reference bf16: 1,646,821,376 + 65,536 = 1,646,886,912.
double loss_backward_bytes(double tokens, double vocab, double elem);

// ---- the step's memory-bound phases ----------------------------------------------------------
// The least bytes of every memory-bound phase a step of this shape records, keyed by phase name
// ("fwd_embedding", ..., "optimizer"), for compute dtype `elem` bytes; `fused` for the fused
// implementation, which leaves out the phases model_phases::fused_into folds and counts their work
// in the phase that holds them (a GEMM phase holds no bytes).
//   embedding   embedding_forward / backward_bytes (gpt2 with the s-row position table)
//   norm        2L + 1 norms (two per block, the final one); eager: norm_forward / backward_bytes
//               each; fused: every residual add is followed by a norm (block i's second add feeds
//               block i+1's first norm, the last block's the final norm) and every gradient add
//               meets a norm's backward, so 2L of them are add_norm_* and the first forward norm
//               (after the embedding) and the final norm's backward are plain
//   residual    eager only: 2L residual adds forward, 2L gradient adds backward, residual_add_bytes
//               over [T, d] each
//   activation  eager only (fused: the GEMM epilogues), L of them over [T, d_ff]: gpt2 GELU
//               (activation_forward / backward_bytes), llama SwiGLU (swiglu_forward / backward_bytes)
//   loss        loss_forward / backward_bytes over [T, V]
//   optimizer   every parameter P (model_params(m).total): AdamW adamw_bytes(P) and the cast of the
//               fp32 masters to the compute dtype cast_bytes(P, 4, elem): 34 bytes each in bf16
// E.g. gpt2 reference bf16 eager: fwd_norm 17 x 52,500,736 = 892,512,512, fwd_residual
// 16 x 78,643,200 = 1,258,291,200; fused fwd_norm 16 x 104,929,536 + 52,500,736 = 1,731,373,312;
// optimizer 326,750,400 x 34 = 11,109,513,600.
std::map<std::string, double> model_phase_bytes(const ModelStepShape& m, double elem, bool fused);

}  // namespace wflops::flops
