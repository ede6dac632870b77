// `wflops peaks`: the datasheet peak table (dense TFLOP/s per dtype, memory bandwidth).
#include <fmt/core.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"

namespace wflops::cli {

namespace {

// Peaks derived by multiplication (e.g. bus width x data rate) carry binary noise such as
// 2039.0000000000002; a datasheet figure has at most three decimals.
double datasheet_rounded(double v) { return std::round(v * 1000.0) / 1000.0; }

nlohmann::json peaks_json(const Peaks& p) {
  nlohmann::json tf = nlohmann::json::object();
  for (DType t : peak_dtypes()) {
    const auto v = p.peak(t);
    tf[std::string(dtype_name(t))] = v ? nlohmann::json(datasheet_rounded(*v)) : nlohmann::json(nullptr);
  }
  return {{"slug", p.slug},         {"model", p.model},
          {"sm_count", p.sm_count}, {"peak_clock_mhz", p.peak_clock_mhz},
          {"tflops", tf},           {"gbps", datasheet_rounded(p.gbps)},
          {"source", p.source},     {"note", p.note}};
}

int print_peaks(bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Peaks& p : peak_table()) out.push_back(peaks_json(p));
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("Dense datasheet peaks, TFLOP/s (int8: TOPS); memory GB/s. '-': the GPU lacks the dtype.\n");
  fmt::print("{:<16} {:>4} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}\n", "gpu", "SMs", "MHz", "fp64",
             "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "GB/s");
  for (const Peaks& p : peak_table()) {
    std::string line = fmt::format("{:<16} {:>4} {:>5.0f}", p.slug, p.sm_count, p.peak_clock_mhz);
    for (DType t : peak_dtypes()) {
      const auto v = p.peak(t);
      line += v ? fmt::format(" {:>7.4g}", *v) : fmt::format(" {:>7}", "-");
    }
    fmt::print("{} {:>7.0f}\n", line, p.gbps);
  }
  fmt::print("MHz: the SM clock the tensor peaks assume (below the boost clock on H100/H200).\n");
  fmt::print("GPUs not listed get peaks derived from SMs x clock x FLOP/clock/SM (marked 'derived').\n");
  return kExitOk;
}

}  // namespace

void add_peaks_command(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("peaks", "Print the datasheet peak table");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([json, &exit_code] { exit_code = print_peaks(*json); });
}

}  // namespace wflops::cli
