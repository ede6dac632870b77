// `wflops seed-table FILE`: the reference A100 table (matmul, linear MLP step, + mixed precision,
// + ReLU and residual) beside the same four rows of a result file (src/results/seed_table.hpp).
#include <fmt/core.h>

#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "errors.hpp"
#include "results/result_reader.hpp"
#include "results/seed_table.hpp"

namespace wflops::cli {

void add_seed_table_command(CLI::App& app, int& exit_code) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "seed-table", "The reference A100 MLP table beside the same rows of a result file (wflops run --suite seed)");
  cmd->add_option("file", *path, "Result file holding the seed suite's benchmarks")->required();
  cmd->callback([path, &exit_code] {
    fmt::print("{}", format_seed_table(read_result_file(*path)));
    exit_code = kExitOk;
  });
}

}  // namespace wflops::cli
