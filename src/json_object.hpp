// A JSON object written as alternating keys and values, in the order the documentation lists the
// keys: object_of("ms", r.ms, "kind", "gemm") is {"kind": "gemm", "ms": ...}. One rule for every
// key: an optional number that is absent is null, never a misleading 0 (docs/result-format.md).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>

namespace wflops {

inline nlohmann::json json_value(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
template <class V>
nlohmann::json json_value(const V& v) {
  return nlohmann::json(v);
}

// Sets j[key] = value for each key and value that follow j.
inline void add_fields(nlohmann::json&) {}
template <class V, class... Rest>
void add_fields(nlohmann::json& j, const char* key, const V& value, const Rest&... rest) {
  j[key] = json_value(value);
  add_fields(j, rest...);
}

template <class... KeysAndValues>
nlohmann::json object_of(const KeysAndValues&... keys_and_values) {
  nlohmann::json j = nlohmann::json::object();
  add_fields(j, keys_and_values...);
  return j;
}

}  // namespace wflops
