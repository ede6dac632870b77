// cuDNN 9, loaded at run time with dlopen. wflops does not link cuDNN: the GPU machines may lack
// it, and every other benchmark must run without it. Only the types and enums come from the
// toolkit's headers (cudnn_graph.h); the functions are resolved from libcudnn.so.9 on first use.
#pragma once
#include <cudnn_graph.h>

#include <cstddef>
#include <string>

namespace wflops::cudnn {

// The functions of the cuDNN graph (backend) API that wflops calls.
struct Api {
  std::size_t (*get_version)() = nullptr;
  const char* (*get_error_string)(cudnnStatus_t) = nullptr;
  void (*get_last_error_string)(char*, std::size_t) = nullptr;  // null on libraries without it
  cudnnStatus_t (*create)(cudnnHandle_t*) = nullptr;
  cudnnStatus_t (*destroy)(cudnnHandle_t) = nullptr;
  cudnnStatus_t (*set_stream)(cudnnHandle_t, cudaStream_t) = nullptr;
  cudnnStatus_t (*create_descriptor)(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t*) = nullptr;
  cudnnStatus_t (*destroy_descriptor)(cudnnBackendDescriptor_t) = nullptr;
  cudnnStatus_t (*set_attribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t, cudnnBackendAttributeType_t,
                                 int64_t, const void*) = nullptr;
  cudnnStatus_t (*get_attribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t, cudnnBackendAttributeType_t,
                                 int64_t, int64_t*, void*) = nullptr;
  cudnnStatus_t (*finalize)(cudnnBackendDescriptor_t) = nullptr;
  cudnnStatus_t (*execute)(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t) = nullptr;
};

// The loaded API; throws std::runtime_error("cuDNN not available: ...") naming the library or
// the symbol that is missing. Loads once; a failure is remembered and rethrown with the same text.
const Api& api();

// "" when cuDNN loads, else the reason api() would throw.
std::string unavailable_reason();

// cudnnGetVersion() as "9.19.0" and as the number (91900); throws like api().
std::string version_string();
std::size_t version();

// "CUDNN_STATUS_NOT_SUPPORTED (3000)" with, when the library keeps one, its last error message.
std::string status_text(cudnnStatus_t status);

// Throws std::runtime_error("cuDNN: <call> failed: <status_text>") unless status is success.
void check(cudnnStatus_t status, const char* call);

}  // namespace wflops::cudnn
