// The reference table wflops grew from (../shared/reference: one A100, 312 TFLOP/s fp16/bf16 dense
// peak; an MLP of d = 1600, d_ff = 6400 on 8192 tokens; all figures weight-FLOP/s) and the same four
// rows read from a result file of `wflops run --suite seed`, so the table is reproduced on whatever
// GPU ran it: each row's tau, its share of the matmul row's tau (where the gap opens), and its
// share of the GPU's peak.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "results/result_reader.hpp"

namespace wflops {

struct SeedRow {
  std::string what;             // "+ fp32 master weights (mixed precision)"
  std::string benchmark;        // the seed suite's benchmark that reproduces it
  double reference_tflops = 0;  // the A100 figure
};

// The four rows, in the table's order; their benchmarks are exactly the seed suite.
const std::vector<SeedRow>& seed_rows();
inline constexpr double kSeedReferencePeakTflops = 312.0;  // A100 fp16/bf16 dense (docs/conventions.md)

struct SeedTableRow {
  SeedRow row;
  double reference_pct_of_matmul = 0;   // 100 * reference / reference matmul
  std::optional<double> tflops;         // measured; absent when the file lacks it or it failed
  std::optional<double> pct_of_matmul;  // 100 * tflops / measured matmul tau
  std::optional<double> pct_peak;       // as the file recorded it
  std::string note;                     // why there is no figure ("not in the file", the error)
};

// The table for `file`. Throws UserError when the file has none of the four rows.
std::vector<SeedTableRow> seed_table(const ResultFile& file);
// The table as text, headed by the file's GPU.
std::string format_seed_table(const ResultFile& file);

}  // namespace wflops
