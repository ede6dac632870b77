// wflops: measures the achieved weight-FLOP/s of the operations of transformer and MoE training.
#include <fmt/core.h>

#include <exception>

#include "cli/commands.hpp"
#include "cuda/harness.hpp"
#include "errors.hpp"

int main(int argc, char** argv) {
  wflops::prefer_eager_module_loading();  // before anything initialises CUDA (see harness.hpp)
  CLI::App app{"wflops: achieved weight-FLOP/s (tau) of transformer and MoE training on NVIDIA GPUs"};
  app.require_subcommand(1);
  int exit_code = wflops::kExitOk;
  wflops::cli::add_run_command(app, exit_code);
  wflops::cli::add_list_command(app, exit_code);
  wflops::cli::add_peaks_command(app, exit_code);
  wflops::cli::add_compare_command(app, exit_code);
  wflops::cli::add_params_command(app, exit_code);
  wflops::cli::add_budget_command(app, exit_code);
  wflops::cli::add_plan_command(app, exit_code);
  wflops::cli::add_attention_share_command(app, exit_code);
  wflops::cli::add_seed_table_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const wflops::UserError& e) {
    fmt::print(stderr, "wflops: error: {}\n", e.what());
    return wflops::kExitError;
  } catch (const std::exception& e) {
    fmt::print(stderr, "wflops: internal error: {}\n", e.what());
    return wflops::kExitError;
  }
  return exit_code;
}
