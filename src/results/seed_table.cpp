#include "results/seed_table.hpp"

#include <fmt/core.h>

#include "errors.hpp"

namespace wflops {

const std::vector<SeedRow>& seed_rows() {
  // The matmul row is the ceiling the others are read against (the reference's "237 for pure
  // matrix multiplications"); the steps count 6 x 20,480,000 weights x 8192 tokens per step.
  static const std::vector<SeedRow> rows = {
      {"4096x8192x4096 matmul", "matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096", 237.0},
      {"linear MLP step (no activation)", "mlp_step/linear/fp16/d:1600/ff:6400/tok:8192", 230.0},
      {"+ fp32 master weights (mixed precision)", "mlp_step/mixed_linear/fp16/d:1600/ff:6400/tok:8192", 207.6},
      {"+ ReLU and residual", "mlp_step/mixed_unfused_relu_residual/fp16/d:1600/ff:6400/tok:8192", 185.7},
  };
  return rows;
}

std::vector<SeedTableRow> seed_table(const ResultFile& file) {
  const std::vector<SeedRow>& rows = seed_rows();
  const double reference_matmul = rows.front().reference_tflops;
  std::vector<SeedTableRow> out;
  bool any = false;
  for (const SeedRow& r : rows) {
    SeedTableRow t;
    t.row = r;
    t.reference_pct_of_matmul = 100.0 * r.reference_tflops / reference_matmul;
    const BenchmarkResult* b = file.find(r.benchmark);
    if (!b) {
      t.note = "not in the file";
    } else if (b->failed) {
      t.note = "failed: " + b->error_message;
    } else if (!b->tflops) {
      t.note = "no tflops counter";
    } else {
      t.tflops = b->tflops;
      t.pct_peak = b->pct_peak;
      any = true;
    }
    out.push_back(std::move(t));
  }
  if (!any) {
    throw UserError(fmt::format("{}: none of the seed table's benchmarks (run `wflops run --suite seed`)", file.path));
  }
  if (const auto matmul = out.front().tflops; matmul && *matmul > 0) {
    for (SeedTableRow& t : out) {
      if (t.tflops) t.pct_of_matmul = 100.0 * *t.tflops / *matmul;
    }
  }
  return out;
}

std::string format_seed_table(const ResultFile& file) {
  const std::vector<SeedTableRow> table = seed_table(file);
  const auto num = [](const std::optional<double>& v, const char* format) {
    return v ? fmt::format(fmt::runtime(format), *v) : std::string("-");
  };
  std::string s = fmt::format(
      "The reference table (one A100, fp16, MLP d=1600 d_ff=6400 on 8192 tokens; weight-TFLOP/s)\n"
      "beside {}, {}:\n\n",
      file.path, file.label());
  s += fmt::format("{:<42} {:>21}   {:>31}\n", "", "A100 reference", "this file");
  s += fmt::format("{:<42} {:>7} {:>6} {:>6}   {:>8} {:>11} {:>10}\n", "row", "TFLOP/s", "%mm", "%peak", "TFLOP/s",
                   "% of matmul", "% of peak");
  for (const SeedTableRow& t : table) {
    s += fmt::format("{:<42} {:>7.1f} {:>6.1f} {:>6.1f}   {:>8} {:>11} {:>10}{}\n", t.row.what, t.row.reference_tflops,
                     t.reference_pct_of_matmul, 100.0 * t.row.reference_tflops / kSeedReferencePeakTflops,
                     num(t.tflops, "{:.1f}"), num(t.pct_of_matmul, "{:.1f}"), num(t.pct_peak, "{:.1f}"),
                     t.note.empty() ? "" : "  (" + t.note + ")");
  }
  s += "\n%mm and % of matmul: the row's tau over the matmul row's (where a real step falls short of a pure GEMM);\n"
       "%peak and % of peak: over the dense fp16 datasheet peak (A100: 312 TFLOP/s).\n";
  return s;
}

}  // namespace wflops
