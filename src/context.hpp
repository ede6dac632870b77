// The context block of a result file: which GPU, clocks, versions and peaks a result was measured
// with, so two files from different machines can be compared honestly (docs/conventions.md, "Context").
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "device_description.hpp"
#include "model/peaks.hpp"

namespace wflops {

struct RunInfo {
  std::string host;       // host name of the machine that ran
  std::string suite;      // "quick", "full", ... or "" for a filter-only run
  std::string l2_policy;  // how small problems were kept from being timed out of L2
};

// Typed JSON (numbers as numbers, unknown values as null); "interrupted" starts true and is set
// false only when a run finishes, so a file cut short says so.
nlohmann::json make_context(const DeviceDescription& dev, const Peaks& peaks, const RunInfo& run);

// The same keys as strings, for Google Benchmark's AddCustomContext (its own JSON output).
std::vector<std::pair<std::string, std::string>> context_as_strings(const nlohmann::json& context);

}  // namespace wflops
