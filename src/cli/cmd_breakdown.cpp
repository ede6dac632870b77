// `wflops breakdown FILE [--benchmark NAME] [--format table|json]`: where a model step's time goes
// (src/results/breakdown.hpp, docs/model.md "Reading the breakdown").
#include <fmt/core.h>

#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "errors.hpp"
#include "results/breakdown.hpp"
#include "results/result_reader.hpp"

namespace wflops::cli {

namespace {

struct BreakdownArgs {
  std::string file, benchmark, format = "table";
};

}  // namespace

void add_breakdown_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BreakdownArgs>();
  CLI::App* cmd = app.add_subcommand(
      "breakdown",
      "where a model step's time goes: its phases' share, tau or GB/s, eager against fused, and each part against "
      "the same part benchmarked alone");
  cmd->add_option("file", a->file, "result file holding a model_step benchmark")->required();
  cmd->add_option("--benchmark", a->benchmark, "the model step to break down (default: every one in the file)");
  cmd->add_option("--format", a->format, "table (default) or json");
  cmd->callback([a, &exit_code] {
    if (a->format != "table" && a->format != "json") {
      throw UserError(fmt::format("--format '{}': expected table or json", a->format));
    }
    const ResultFile file = read_result_file(a->file);
    std::vector<std::string> skipped;
    const std::vector<Breakdown> all = breakdowns(file, a->benchmark, &skipped);
    if (a->format == "json") {
      fmt::print("{}\n", breakdowns_json(file, all, skipped).dump(2));
    } else {
      fmt::print("{}", format_breakdowns(file, all, skipped));
    }
    exit_code = kExitOk;
  });
}

}  // namespace wflops::cli
