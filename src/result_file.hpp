// Where results go: results/<gpu-slug>-<yyyymmdd-hhmmss>.json, never overwriting a file that
// exists, and written atomically (temporary file + rename) so a reader never sees half a file.
#pragma once
#include <ctime>
#include <filesystem>
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

}  // namespace wflops
