// wflops: measures the achieved weight-FLOP/s of the operations of transformer and MoE training.
#include <fmt/core.h>

#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.hpp"
#include "cuda/harness.hpp"
#include "errors.hpp"
#include "wflops/version.hpp"

namespace {

// "run, list, peaks, ..." in the order the subcommands were added.
std::string subcommand_list(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  return names;
}

// The first argument, when it is meant as a subcommand (not an option) but names none.
bool unknown_subcommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return false;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == argv[1]) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  wflops::prefer_eager_module_loading();  // before anything initialises CUDA (see harness.hpp)
  CLI::App app{"wflops: achieved weight-FLOP/s (tau) of transformer and MoE training on NVIDIA GPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("wflops {} (commit {})", wflops::kVersion, wflops::kGitCommit),
                       "Print the version and commit, then exit");
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
  wflops::cli::add_breakdown_command(app, exit_code);
  if (unknown_subcommand(app, argc, argv)) {
    fmt::print(stderr, "wflops: error: unknown subcommand '{}' (subcommands: {})\n", argv[1], subcommand_list(app));
    return wflops::kExitError;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end the parse with a "success" error: CLI11 prints them.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    // Every real parse error is one line and exit code 1, whatever CLI11's own code for it.
    std::string what = e.what();
    if (what == "A subcommand is required") {
      what = fmt::format("a subcommand is required ({}; wflops --help describes them)", subcommand_list(app));
    }
    fmt::print(stderr, "wflops: error: {}\n", what);
    return wflops::kExitError;
  } catch (const wflops::UserError& e) {
    fmt::print(stderr, "wflops: error: {}\n", e.what());
    return wflops::kExitError;
  } catch (const std::exception& e) {
    fmt::print(stderr, "wflops: internal error: {}\n", e.what());
    return wflops::kExitError;
  }
  return exit_code;
}
