// The Mixture-of-Experts layer's training step (forward and backward, bf16) as a Workload:
// router GEMM (fp32 logits) and softmax, routing (token choice top-G or expert choice), the
// permutation into expert-contiguous order, the expert MLPs (GEMM, GELU, GEMM) through one of
// four GEMM implementations, the weighted combine, and the backward of all of it including the
// router's weight gradient. Its parts are timed separately (PhaseMarks): router, routing, permute,
// expert_gemm, combine, combine_bwd, expert_gemm_bwd, permute_bwd, router_bwd.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cuda/harness.hpp"
#include "cuda/moe_expert_gemm.hpp"
#include "reference/moe_reference.hpp"

namespace wflops {

struct MoeConfig {
  long d = 0;
  long experts = 1;      // E, the expansion rate
  long granularity = 1;  // G; N = E*G experts of hidden 4d/G, each token visits G on average
  long tokens = 0;       // T
  moe::Routing routing = moe::Routing::expert_choice;
  MoeGemmImpl impl = MoeGemmImpl::grouped;
  // Test hook: >= 0 makes this expert win every token (a constant feature in x's last column
  // and a large router weight for it), so with token choice and G = 1 every other expert gets
  // no token.
  long dominant_expert = -1;
};

std::string moe_gemm_impl_name(MoeGemmImpl impl);  // "grouped", "loop", "padded", "ours_grouped"
// "" when the workload can run `c`, else a sentence saying why not.
std::string moe_unsupported_reason(const MoeConfig& c);
// "d:2048/E:64/G:8/tok:32768/route:expert_choice"
std::string moe_shape(const MoeConfig& c);

class MoeLayerWorkload final : public Workload {
 public:
  explicit MoeLayerWorkload(const MoeConfig& config);  // throws std::runtime_error if unsupported
  ~MoeLayerWorkload() override;

  double input_bytes() const override;
  double device_bytes(int input_sets) const override;
  void allocate(int input_sets, cudaStream_t stream) override;
  Verification verify(cudaStream_t stream) override;
  void launch(cudaStream_t stream, int set) override;
  bool has_phases() const override { return true; }
  void launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) override;
  bool synchronizes() const override;
  std::string describe() const override;
  // load_imbalance and max_expert_tokens of the verified routing (fresh random inputs, like the
  // timed sets'), so the JSON carries the figure as a number, not only a label.
  std::map<std::string, double> measured_counters() const override;

  // Tokens per expert of the last verification run, and max / mean of them.
  const std::vector<int>& expert_counts() const;
  double load_imbalance() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

std::unique_ptr<Workload> make_moe_workload(const MoeConfig& config);

}  // namespace wflops
