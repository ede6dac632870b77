#include "cuda/rotated_inputs.hpp"

#include <fmt/core.h>

#include <stdexcept>
#include <utility>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/harness.hpp"

namespace wflops {

RotatedInputs::Id RotatedInputs::add(std::string name, DType dtype, std::size_t elements, Fill fill) {
  if (sets_ > 0) throw std::logic_error(fmt::format("input {} declared after the inputs were allocated", name));
  const std::size_t bytes = elements * dtype_bytes(dtype);
  inputs_.push_back({std::move(name), dtype, elements, fill, set_bytes_});
  data_bytes_ += bytes;
  set_bytes_ += align_up(bytes);
  return Id{inputs_.size() - 1};
}

const RotatedInputs::Input& RotatedInputs::input(Id id) const {
  if (id.index >= inputs_.size()) throw std::logic_error(fmt::format("no input number {}", id.index));
  return inputs_[id.index];
}

std::size_t RotatedInputs::bytes(Id id) const {
  const Input& in = input(id);
  return in.elements * dtype_bytes(in.dtype);
}

std::size_t RotatedInputs::stride(Id id) const { return align_up(bytes(id)); }

std::size_t RotatedInputs::offset(Id id, int set) const {
  const std::size_t s = static_cast<std::size_t>(set);
  return layout_ == Layout::by_input ? stride(id) * s : set_bytes_ * s + input(id).in_set;
}

double RotatedInputs::device_bytes(int sets) const {
  return static_cast<double>(sets) * static_cast<double>(set_bytes_);
}

void RotatedInputs::allocate(int sets) {
  if (sets < 1) throw std::invalid_argument(fmt::format("{} input sets: at least one is needed", sets));
  const std::size_t n = static_cast<std::size_t>(sets);
  std::vector<DeviceBuffer> memory;
  if (layout_ == Layout::by_input) {
    for (std::size_t i = 0; i < inputs_.size(); ++i) memory.emplace_back(stride(Id{i}) * n);
  } else {
    memory.emplace_back(set_bytes_ * n);
  }
  memory_ = std::move(memory);
  sets_ = sets;
}

void RotatedInputs::fill(int set, cudaStream_t stream) const {
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    const Input& in = inputs_[i];
    if (in.fill != Fill::random) continue;
    CUDA_CHECK(kernels::fill_random(in.dtype, ptr(Id{i}, set), in.elements, fresh_seed(), stream));
  }
}

void RotatedInputs::fill_all(cudaStream_t stream) const {
  for (int s = 0; s < sets_; ++s) fill(s, stream);
}

void* RotatedInputs::ptr(Id id, int set) const {
  const Input& in = input(id);
  if (set < 0 || set >= sets_) {
    throw std::logic_error(fmt::format("input {}: set {} of {} allocated", in.name, set, sets_));
  }
  const DeviceBuffer& memory = memory_[layout_ == Layout::by_input ? id.index : 0];
  return memory.as<char>() + offset(id, set);
}

}  // namespace wflops
