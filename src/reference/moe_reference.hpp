// The Mixture-of-Experts layer on the CPU, in double, forward and backward: the reference the GPU
// workload (src/cuda/moe_layer.cpp) is checked against. Small configurations run whole; the GPU
// verification of real shapes reuses the routing and per-row pieces on sampled tokens.
//
// Layout (row-major, as the GPU stores it): x[T,d], router weights wr[N,d] (N = E*G experts),
// expert e's up-projection w1[e] of [f,d] and down-projection w2[e] of [d,f] (f = 4d/G), dy[T,d].
// Forward: logits = x wr^T, probs = softmax over the N experts, routing picks (token, expert,
// score = probs[token, expert]) assignments, and y[t] = sum over t's assignments of
// score * w2[e] gelu(w1[e] x[t]) (GELU, tanh approximation). The backward is that of the loss
// L = sum(y * dy); the routing decision itself is not differentiated (only its scores are).
#pragma once
#include <string>
#include <vector>

namespace wflops::moe {

enum class Routing { token_choice, expert_choice };
std::string routing_name(Routing r);  // "token_choice", "expert_choice"

struct Dims {
  long d = 0, E = 1, G = 1, T = 0;
  Routing routing = Routing::expert_choice;
  long experts() const { return E * G; }
  long hidden() const { return 4 * d / G; }
};

// One token sent to one expert, weighted by its router probability.
struct Assignment {
  long token = 0;
  long expert = 0;
  double score = 0;
};

// Token choice: the k experts with the highest probability, highest first; equal probabilities go
// to the lower expert index.
std::vector<long> top_k_experts(const double* probs, long experts, long k);
// Expert choice within one group: the `take` tokens of the group with the highest probability for
// `expert` (probs is the group's [tokens, experts] block); equal probabilities go to the lower
// token index. Returned in increasing token order (group-relative indices).
std::vector<long> expert_choice_tokens(const double* group_probs, long group_tokens, long experts, long expert,
                                       long take);
// Every assignment of a step, in expert-contiguous order (expert 0's tokens first, by token index
// within an expert), from the router probabilities probs[T, N].
std::vector<Assignment> route(const Dims& dims, const std::vector<double>& probs);

double gelu(double x);             // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
double gelu_derivative(double x);  // its exact derivative

// softmax over n values; and its backward: dlogits = p * (dp - sum(p * dp)).
void softmax(const double* logits, long n, double* probs);
void softmax_backward(const double* probs, const double* dprobs, long n, double* dlogits);

// One row through one expert: h = w1e x (f values), out = w2e gelu(h) (d values).
void expert_row_forward(const double* w1e, const double* w2e, long d, long f, const double* x, double* h, double* out);
// Its backward for the output gradient dout (d values): dx_acc += w1e^T (gelu'(h) * (w2e^T dout)).
void expert_row_backward_input(const double* w1e, const double* w2e, long d, long f, const double* h,
                               const double* dout, double* dx_acc);

struct Inputs {
  std::vector<double> x, wr, w1, w2, dy;
};
struct Result {
  std::vector<double> logits, probs;      // [T, N]
  std::vector<Assignment> assignments;    // expert-contiguous
  std::vector<long> expert_counts;        // [N]
  std::vector<double> y;                  // [T, d]
  std::vector<double> dx, dwr, dw1, dw2;  // gradients of sum(y * dy)
  std::vector<double> dlogits;            // [T, N]
};
// "" when dims can be run by the reference and the workload, else why not.
std::string dims_error(const Dims& dims);
Result reference(const Dims& dims, const Inputs& in);
// The same, with the routing decisions taken from `probs_for_routing` instead of the reference's
// own probabilities (the GPU verification routes with the GPU's fp32 probabilities).
Result reference_routed_by(const Dims& dims, const Inputs& in, const std::vector<double>& probs_for_routing);

// max / mean tokens per expert (1 = perfectly balanced).
double load_imbalance(const std::vector<long>& counts);

// The bound b of the router weights the GPU workload draws, wr ~ U(-b, b), beside inputs
// x ~ U(-1, 1). A logit is a sum of d independent products of variance (1/3)(b²/3), so its standard
// deviation is b·sqrt(d)/3; b = 3/sqrt(d) makes it 1. With b = 1 it would be sqrt(d)/3 (15 at
// d = 2048): the softmax would be one-hot, and its backward would lose the small probabilities'
// gradients to fp32 cancellation.
double router_weight_bound(long d);

}  // namespace wflops::moe
