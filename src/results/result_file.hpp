// Where results go: results/<gpu-slug>-<yyyymmdd-hhmmss>.json, never overwriting a file that
// exists, and written atomically (temporary file + rename) so a reader never sees half a file;
// read back and amended when a run goes on in a fresh process after a benchmark took one down.
#pragma once
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

namespace wflops {

// "<slug>-<yyyymmdd-hhmmss>.json" for the given local time.
std::string result_file_name(std::string_view gpu_slug, const std::tm& local_time);

// Creates a new, empty result file in `dir` (made if missing) named after the slug and time;
// when that name is taken, "-2", "-3", ... are appended before ".json". Returns its path.
std::filesystem::path create_result_file(const std::filesystem::path& dir, std::string_view gpu_slug,
                                         const std::tm& local_time);

// Creates `path` exclusively; throws UserError when it exists already (earlier results are never
// overwritten) or cannot be created.
void create_result_file_at(const std::filesystem::path& path);

// Replaces the content of `path` with `content` through a temporary file and a rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

// The JSON document a result file holds, as written (no validation beyond parsing). Throws
// UserError when the file cannot be read or is not JSON.
nlohmann::json read_result_document(const std::filesystem::path& path);

// Writes `doc` to `path` atomically, as `wflops run` writes its result files.
void write_result_document(const std::filesystem::path& path, const nlohmann::json& doc);

// The run names of the benchmarks a result document holds (finished, or recorded as an error).
std::set<std::string> benchmark_run_names(const nlohmann::json& doc);

// Replaces every entry of benchmark `run_name` in `doc` (none, or the repetitions of a benchmark
// cut short) by one entry that records `message` as its error, in Google Benchmark's own shape.
void record_benchmark_error(nlohmann::json& doc, const std::string& run_name, const std::string& message);

}  // namespace wflops
