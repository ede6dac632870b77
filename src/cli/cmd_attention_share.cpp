// `wflops attention-share`: for one transformer layer of hidden size H at sequence length s, the
// share of the training step's FLOPs and of its time that attention takes, from measured tau:
// the fused attention forward and backward of the matching head dim and sequence, and the best
// dense matmul of the same dtype, in a result file (FLOP model: flops_attention.hpp).
#include <fmt/core.h>

#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "dtype.hpp"
#include "errors.hpp"
#include "model/flops.hpp"
#include "results/result_reader.hpp"

namespace wflops::cli {

namespace {

struct ShareArgs {
  std::string results;
  long hidden = 0, seq = 0, heads = 0;
  bool causal = false;
  std::string dtype = "bf16";
};

// The fused attention benchmark of `family` with this head dim, sequence, mask and dtype (any batch
// and head count: tau does not depend on them much at 16384 tokens).
const BenchmarkResult& find_attention(const ResultFile& file, const std::string& family, const ShareArgs& a,
                                      long head_dim) {
  for (const BenchmarkResult& b : file.benchmarks) {
    const BenchmarkName n = parse_benchmark_name(b.name);
    if (n.family != family || n.implementation != "fused" || n.dtype != a.dtype) continue;
    if (n.number("s") != static_cast<double>(a.seq) || n.number("d") != static_cast<double>(head_dim)) continue;
    if (n.number("causal") != (a.causal ? 1.0 : 0.0) || b.failed || !b.tflops) continue;
    return b;
  }
  throw UserError(fmt::format("{}: no measured {}/fused/{} benchmark with s:{}/d:{}/causal:{}", file.path, family,
                              a.dtype, a.seq, head_dim, a.causal ? 1 : 0));
}

const BenchmarkResult& best_matmul(const ResultFile& file, const std::string& dtype) {
  const BenchmarkResult* best = nullptr;
  for (const BenchmarkResult& b : file.benchmarks) {
    const BenchmarkName n = parse_benchmark_name(b.name);
    if (n.family != "matmul" || n.dtype != dtype || b.failed || !b.tflops) continue;
    if (!best || *b.tflops > *best->tflops) best = &b;
  }
  if (!best) throw UserError(fmt::format("{}: no measured {} matmul benchmark", file.path, dtype));
  return *best;
}

// The head counts that split `hidden` into heads of 32 to 256 (the head sizes attention kernels serve).
std::string fitting_heads(long hidden) {
  std::string out;
  for (long d = 32; d <= 256; d *= 2) {
    if (hidden % d == 0) out += fmt::format("{}{} heads of {}", out.empty() ? "" : ", ", hidden / d, d);
  }
  return out.empty() ? "none with a power-of-two head size from 32 to 256" : out;
}

int run(const ShareArgs& a, bool heads_given) {
  if (a.hidden <= 0) throw UserError(fmt::format("--hidden must be a positive whole number (got {})", a.hidden));
  if (a.seq <= 0) throw UserError(fmt::format("--seq must be a positive whole number (got {})", a.seq));
  if (heads_given && a.heads <= 0) {
    throw UserError(fmt::format("--heads must be a positive whole number (got {})", a.heads));
  }
  if (!parse_dtype(a.dtype)) {
    throw UserError(fmt::format("--dtype '{}' is not a dtype wflops knows (fp32, tf32, fp16, bf16, fp8)", a.dtype));
  }
  const long heads = heads_given ? a.heads : a.hidden / 128;
  if (heads <= 0 || a.hidden % heads != 0) {
    throw UserError(fmt::format("--hidden {} does not split into {} heads{}; head counts that fit: {}", a.hidden, heads,
                                heads_given ? "" : " (the default, H / 128; choose with --heads)",
                                fitting_heads(a.hidden)));
  }
  const long head_dim = a.hidden / heads;
  const ResultFile file = read_result_file(a.results);
  const BenchmarkResult& fwd = find_attention(file, "attention_fwd", a, head_dim);
  const BenchmarkResult& bwd = find_attention(file, "attention_bwd", a, head_dim);
  const BenchmarkResult& mm = best_matmul(file, a.dtype);
  const double h = static_cast<double>(a.hidden), s = static_cast<double>(a.seq);
  const double weights = flops::layer_weight_step_flops(h, s);
  const double attention = flops::layer_attention_step_flops(h, s, s, a.causal);
  const double flop_share = flops::attention_flop_share(h, s, a.causal);
  const double time_share = flops::attention_time_share(h, s, a.causal, *mm.tflops, *fwd.tflops, *bwd.tflops);
  fmt::print("Layer: hidden {} ({} heads of {}), sequence {}, {}, {}; per sequence of {} tokens\n", a.hidden, heads,
             head_dim, a.seq, a.causal ? "causal" : "not causal", a.dtype, a.seq);
  fmt::print("FLOPs: weights 6*12H^2*s = {:.4g}, attention fwd+bwd (3.5x forward) = {:.4g}\n", weights, attention);
  fmt::print("tau:   dense matmul {:.1f} TFLOP/s ({}), attention forward {:.1f} ({}), backward {:.1f} ({})\n",
             *mm.tflops, mm.name, *fwd.tflops, fwd.name, *bwd.tflops, bwd.name);
  fmt::print("attention share of step FLOPs: {:.2f}%\n", 100.0 * flop_share);
  fmt::print("attention share of step time:  {:.2f}%\n", 100.0 * time_share);
  return kExitOk;
}

}  // namespace

void add_attention_share_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ShareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "attention-share", "Share of a layer's training-step FLOPs and time that attention takes, from measured tau");
  cmd->add_option("--results", a->results, "Result file with fused attention and matmul benchmarks")->required();
  cmd->add_option("--hidden", a->hidden, "Hidden size H")->required();
  cmd->add_option("--seq", a->seq, "Sequence length s")->required();
  CLI::Option* heads = cmd->add_option("--heads", a->heads, "Attention heads (default H / 128)");
  cmd->add_flag("--causal", a->causal, "Causal attention");
  cmd->add_option("--dtype", a->dtype, "dtype of the benchmarks to read (default bf16)");
  cmd->callback([a, heads, &exit_code] { exit_code = run(*a, heads->count() > 0); });
}

}  // namespace wflops::cli
