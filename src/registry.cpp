#include "registry.hpp"

#include <algorithm>
#include <utility>

namespace wflops {

std::string benchmark_name(const std::string& family, const std::string& impl, const std::string& dtype,
                           const std::string& shape) {
  return family + "/" + impl + "/" + dtype + "/" + shape;
}

BenchSpec::BenchSpec(std::string family_word, std::string impl_word, DType measured_dtype, std::string shape_keys,
                     std::string name_dtype)
    : name(benchmark_name(family_word, impl_word,
                          name_dtype.empty() ? std::string(dtype_name(measured_dtype)) : name_dtype, shape_keys)),
      family(std::move(family_word)),
      impl(std::move(impl_word)),
      dtype(measured_dtype),
      shape(std::move(shape_keys)) {}

std::string Registry::add(BenchSpec spec) {
  std::string name = spec.name;
  // find() answers with a const pointer; the spec is this registry's own to update.
  BenchSpec* known = const_cast<BenchSpec*>(find(name));
  if (!known) {
    specs_.push_back(std::move(spec));
    return name;
  }
  known->suites.insert(spec.suites.begin(), spec.suites.end());
  if (known->label.empty()) {
    known->label = spec.label;
  } else if (!spec.label.empty() && known->label.find(spec.label) == std::string::npos) {
    known->label += "; " + spec.label;
  }
  return name;
}

const BenchSpec* Registry::find(const std::string& name) const {
  auto it = std::find_if(specs_.begin(), specs_.end(), [&](const BenchSpec& s) { return s.name == name; });
  return it == specs_.end() ? nullptr : &*it;
}

std::vector<const BenchSpec*> Registry::suite(const std::string& name) const {
  std::vector<const BenchSpec*> out;
  for (const BenchSpec& s : specs_) {
    if (name == "full" || s.suites.count(name)) out.push_back(&s);
  }
  return out;
}

std::set<std::string> Registry::suite_names() const {
  std::set<std::string> names = {"full"};
  for (const BenchSpec& s : specs_) names.insert(s.suites.begin(), s.suites.end());
  return names;
}

std::string Registry::suite_list() const {
  std::string out;
  for (const std::string& s : suite_names()) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace wflops
