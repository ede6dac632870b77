#include "registry.hpp"

#include <algorithm>

namespace wflops {

void Registry::add(BenchSpec spec) {
  auto it = std::find_if(specs_.begin(), specs_.end(), [&](const BenchSpec& s) { return s.name == spec.name; });
  if (it == specs_.end()) {
    specs_.push_back(std::move(spec));
    return;
  }
  it->suites.insert(spec.suites.begin(), spec.suites.end());
  if (it->label.empty()) {
    it->label = spec.label;
  } else if (!spec.label.empty() && it->label.find(spec.label) == std::string::npos) {
    it->label += "; " + spec.label;
  }
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
