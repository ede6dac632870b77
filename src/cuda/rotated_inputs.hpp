// The inputs a workload reads, replicated into sets for the harness's L2 rotation (harness.hpp):
// launch i reads set i mod sets, so that each set is evicted from L2 before it is read again. A
// workload declares each input once (name, element type, element count); this class does what
// every workload would otherwise repeat: the padding of each copy, where set s of an input lies,
// the bytes of one set and of n sets, the allocation and the random fill of every set.
//
// Two layouts, both with every copy starting on a 256-byte boundary:
//  - by_input: each input has an allocation of its own, its sets one after another;
//  - by_set: one allocation, its sets one after another, each holding every input in the order
//    declared, so that one set is one contiguous range.
// The size arithmetic needs no device, so it is tested on the CPU (tests/cpu/test_rotated_inputs.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <vector>

#include "cuda/device_buffer.hpp"
#include "dtype.hpp"

namespace wflops {

// Every copy of an input starts on this boundary (and so does a region that a workload places in a
// buffer of its own with align_up's default): what cudaMalloc itself guarantees (CUDA C++
// Programming Guide, "Device Memory Accesses": at least 256 bytes), so a pointer into a buffer is
// as aligned as the buffer.
inline constexpr std::size_t kDeviceAlignment = 256;

// `value` rounded up to a multiple of `to`.
constexpr std::size_t align_up(std::size_t value, std::size_t to = kDeviceAlignment) {
  return (value + to - 1) / to * to;
}

class RotatedInputs {
 public:
  enum class Layout { by_input, by_set };
  // random: fill() writes fresh random data (kernels/common/fill_random.cuh) into it; by_workload: the
  // workload writes it itself (e.g. a forward's output that a backward reads).
  enum class Fill { random, by_workload };
  // What add() returns: how the workload names that input afterwards. A default Id names no input
  // (using it throws), so an input a variant does not declare cannot alias another.
  struct Id {
    std::size_t index = static_cast<std::size_t>(-1);
  };

  explicit RotatedInputs(Layout layout = Layout::by_input) : layout_(layout) {}

  // Declares one input of `elements` elements of `dtype`. Inputs are declared before allocate().
  Id add(std::string name, DType dtype, std::size_t elements, Fill fill = Fill::random);

  // ---- size arithmetic (no device needed) ----
  std::size_t bytes(Id id) const;   // one copy, as declared: elements * dtype_bytes(dtype)
  std::size_t stride(Id id) const;  // one copy with its padding: align_up(bytes(id))
  // Byte offset of set `set`'s copy of `id` inside the allocation that holds it.
  std::size_t offset(Id id, int set) const;
  std::size_t data_bytes() const { return data_bytes_; }  // one set, without padding
  std::size_t set_bytes() const { return set_bytes_; }    // one set, with padding
  // Device memory of `sets` sets: sets * set_bytes() (the layouts differ in place, not in size).
  double device_bytes(int sets) const;

  // ---- device ----
  // Allocates `sets` sets (a later call replaces them). Their contents are undefined until filled.
  void allocate(int sets);
  // Fresh random data in every Fill::random input of set `set`, in the order declared.
  void fill(int set, cudaStream_t stream) const;
  // fill() of every set, set 0 first.
  void fill_all(cudaStream_t stream) const;
  int sets() const { return sets_; }
  // Set `set`'s copy of `id`; throws std::logic_error before allocate() or for a set not allocated.
  void* ptr(Id id, int set) const;
  template <typename T>
  T* as(Id id, int set) const {
    return static_cast<T*>(ptr(id, set));
  }

 private:
  struct Input {
    std::string name;
    DType dtype;
    std::size_t elements;
    Fill fill;
    std::size_t in_set;  // by_set: byte offset inside a set
  };
  const Input& input(Id id) const;

  Layout layout_;
  std::vector<Input> inputs_;
  std::size_t data_bytes_ = 0, set_bytes_ = 0;
  int sets_ = 0;
  std::vector<DeviceBuffer> memory_;  // by_input: one per input; by_set: one
};

}  // namespace wflops
