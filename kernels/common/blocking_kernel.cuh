// A kernel that holds a stream until the host releases it, so that a whole batch of launches
// can be enqueued first and then runs back to back: the timing measures the GPU, not the CPU's
// launch rate (the technique nvbench calls a blocking kernel). What is enqueued behind it must fit
// in the stream's queue of pending work, or the host blocks inside a launch until the timeout:
// src/batch_plan.hpp sizes held batches by their stream operations.
#pragma once
#include <cuda_runtime.h>

namespace wflops::kernels {

// Spins until *release != 0 (host-mapped memory) or `timeout_ns` passes; then sets *timed_out.
cudaError_t launch_blocking_kernel(const volatile int* release, volatile int* timed_out, unsigned long long timeout_ns,
                                   cudaStream_t stream);

}  // namespace wflops::kernels
