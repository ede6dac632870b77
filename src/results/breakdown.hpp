// Where a model step's time goes (`wflops breakdown`, docs/model.md "Reading the breakdown"): the
// phases of a model_step result (src/model/model_phases.hpp) with their share of the step, their tau
// (GEMM phases, the attention core) or bandwidth (memory-bound phases) against the same run's
// best matmul of the dtype or device copy, the eager-versus-fused gain of each, and, where the file
// holds the same part benchmarked alone (the matmul of that GEMM's shape, the attention rows of
// that b/h/s/d, the MLP step of that d/d_ff/tokens), the part inside the model over the part alone:
// whether the micro-benchmarks compose into the model. Everything is read from one result file;
// FLOPs and bytes are the file's own counters.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/flops_model.hpp"
#include "model/model_phases.hpp"
#include "results/result_reader.hpp"

namespace wflops {

struct BreakdownRow {
  std::string phase;  // "fwd_qkv"
  model_phases::Kind kind = model_phases::Kind::memory;
  // Absent: the implementation folded this phase into `folded_into` (the fused kernels of
  // model_phases::fused_into); the row has no time of its own.
  std::optional<double> ms;
  std::string folded_into;
  std::vector<std::string> holds;        // phases whose work this one's time also holds (fused)
  double share_pct = 0;                  // of the sum of the step's phases
  std::optional<double> tflops;          // GEMM and attention phases: phase_flops / time
  std::optional<double> gbps;            // memory-bound phases: phase_gbps (or phase_bytes / time)
  std::optional<double> pct_of_ceiling;  // tflops over the best matmul, gbps over the device copy
  // The same work in the other implementation (eager for fused, fused for eager): its time and
  // the gain, eager time over fused time (above 1: fusing saved time). `gain_over` names the phases
  // compared when a fused kernel holds several ("fwd_mlp_up + fwd_activation").
  std::optional<double> other_ms;
  std::optional<double> gain;
  std::string gain_over;
  // Set when the other implementation folds this phase into a fused one: the gain is on that row.
  std::string compared_in;
  // The standalone benchmark of the same part, its tau, and this phase's tau over it.
  std::string alone;
  std::optional<double> alone_tflops;
  std::optional<double> over_alone;
};

// A part made of several phases read against the same part benchmarked alone: the MLP (mlp_up,
// activation, mlp_down, forward and backward) against the MLP step, the attention core (forward and
// backward) against the attention rows, all GEMM phases against the best matmul.
struct BreakdownPart {
  std::string what;
  double ms = 0;
  double share_pct = 0;
  std::optional<double> tflops;
  std::string alone;  // benchmark name(s), " + " between two
  std::optional<double> alone_tflops;
  std::optional<double> over_alone;
};

struct Breakdown {
  std::string benchmark;
  std::string implementation, dtype;
  flops::ModelStepShape shape;
  double step_ms = 0;  // flops / tflops: the time of one timed step
  double tflops = 0;   // weight-FLOP/s, the family's tau
  std::optional<double> pct_peak;
  std::optional<double> model_tflops;  // model_flops / step time (weight + attention: MFU's numerator)
  std::optional<double> pct_peak_model;
  std::string best_matmul;  // the fastest matmul of the dtype in the file
  std::optional<double> best_matmul_tflops;
  std::optional<double> pct_best_matmul;  // the step's tau over it
  std::string best_copy;                  // the fastest device-to-device copy (cast/d2d_copy) in the file
  std::optional<double> best_copy_gbps;
  double phases_ms = 0;  // the sum of the phases' times (timed apart, so not exactly step_ms)
  double gemm_share_pct = 0, attention_share_pct = 0, memory_share_pct = 0;
  std::string other;               // the other implementation's step of the same shape, "" when not in the file
  std::vector<BreakdownRow> rows;  // in the order a step runs its phases
  std::vector<BreakdownPart> parts;
};

// What breakdown() reads the parts of the model step of `impl`, `dtype` and `shape` against, by
// name, so that a suite can be made to hold them (bench/model_parts.hpp) and checked to without a
// result file.
struct StepAlone {
  // Per GEMM component ("qkv", ...), in flops::model_gemms' order: the shape keys of its forward
  // matmul, "m:<tokens>/n:<out>/k:<in>"; the fastest matmul of the dtype with them is the one. A
  // component whose sizes are not whole numbers has none.
  std::vector<std::pair<std::string, std::string>> gemm_shapes;
  // The attention rows of the forward and backward core, in the order they are tried (the first
  // in the file is the one); empty when d / h is not whole.
  std::vector<std::string> attention_fwd, attention_bwd;
  std::string mlp_word;  // the mlp_step implementation the MLP part is read against
  std::string mlp;       // that MLP step
};
StepAlone step_alone(const std::string& impl, const std::string& dtype, const flops::ModelStepShape& shape);

// The model steps of the file that did not fail, in file order.
std::vector<std::string> model_step_names(const ResultFile& file);

// The breakdown of the model step `name`. Throws UserError naming the file when it is absent, not a
// model step, failed, or has no phases.
Breakdown breakdown(const ResultFile& file, const std::string& name);

// `name` alone, or every model step of the file when `name` is empty. Throws UserError when the file
// has none (naming it) or `name` is not one of them (naming those it has). Without a name, a step
// that cannot be broken down (a peer's, timed whole, has no phases) is left out with its reason in
// `skipped` ("NAME: why"), unless no step can: then its error is thrown. Failed steps are listed
// in `skipped` too ("NAME failed: message").
std::vector<Breakdown> breakdowns(const ResultFile& file, const std::string& name,
                                  std::vector<std::string>* skipped = nullptr);

std::string format_breakdowns(const ResultFile& file, const std::vector<Breakdown>& all,
                              const std::vector<std::string>& skipped = {});
nlohmann::json breakdowns_json(const ResultFile& file, const std::vector<Breakdown>& all,
                               const std::vector<std::string>& skipped = {});

}  // namespace wflops
