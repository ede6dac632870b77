// The subcommands of the `wflops` program. Each add_* function adds one subcommand to the app;
// its callback does the work and stores the program's exit code in `exit_code`. A callback
// reports a user mistake by throwing wflops::UserError (printed as one line, exit code 1).
#pragma once
#include <CLI/CLI.hpp>

namespace wflops::cli {

void add_run_command(CLI::App& app, int& exit_code);              // cmd_run.cpp
void add_list_command(CLI::App& app, int& exit_code);             // cmd_list.cpp
void add_peaks_command(CLI::App& app, int& exit_code);            // cmd_peaks.cpp
void add_compare_command(CLI::App& app, int& exit_code);          // cmd_compare.cpp
void add_params_command(CLI::App& app, int& exit_code);           // cmd_params.cpp
void add_budget_command(CLI::App& app, int& exit_code);           // cmd_budget.cpp
void add_plan_command(CLI::App& app, int& exit_code);             // cmd_plan.cpp
void add_attention_share_command(CLI::App& app, int& exit_code);  // cmd_attention_share.cpp
void add_seed_table_command(CLI::App& app, int& exit_code);       // cmd_seed_table.cpp
void add_breakdown_command(CLI::App& app, int& exit_code);        // cmd_breakdown.cpp

}  // namespace wflops::cli
