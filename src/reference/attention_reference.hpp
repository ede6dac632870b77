// fp64 host reference of scaled-dot-product attention, for the verification of every attention
// implementation and for the CPU tests. It works on one (batch, head) slice: Q, K, V, O, dO and
// the gradients are row-major [seq][head_dim].
//   S = scale * Q K^T (key j is visible to query i unless causal and j > i),
//   P = softmax(S) by rows, O = P V, L = log-sum-exp of each row of S (natural log).
// A row that sees no key (impossible for self-attention, kept for safety) has O = 0 and L = +inf,
// so that exp(S - L) = 0 in a backward pass.
#pragma once
#include <vector>

namespace wflops {

struct AttentionProblem {
  long seq = 0;
  long head_dim = 0;
  bool causal = false;
  double scale = 0;  // usually 1/sqrt(head_dim)
};

// Forward of the whole slice: o [seq][head_dim], lse [seq].
void attention_forward_reference(const AttentionProblem& p, const double* q, const double* k, const double* v,
                                 double* o, double* lse);
// Forward of the listed query rows only (cost seq*head_dim per row): o_rows [rows][head_dim].
void attention_forward_rows(const AttentionProblem& p, const double* q, const double* k, const double* v,
                            const std::vector<long>& rows, double* o_rows, double* lse_rows);

// Gradients of the listed rows, given the forward's O and L (whole slice): dQ of query rows
// (dq_rows [q_rows][head_dim]), dK and dV of key rows. Uses D_i = dO_i . O_i and
// dS = P (dP - D), dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO. Cost seq*head_dim per row.
void attention_backward_rows(const AttentionProblem& p, const double* q, const double* k, const double* v,
                             const double* o, const double* lse, const double* d_o, const std::vector<long>& q_rows,
                             double* dq_rows, const std::vector<long>& k_rows, double* dk_rows, double* dv_rows);
// Gradients of the whole slice (runs the forward itself).
void attention_backward_reference(const AttentionProblem& p, const double* q, const double* k, const double* v,
                                  const double* d_o, double* dq, double* dk, double* dv);

}  // namespace wflops
