// The activation names shared by the elementwise kernels, the cuBLASLt epilogues and the
// benchmark names (elementwise_common.cuh).
#include "common/elementwise_common.cuh"

namespace wflops::kernels {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
  }
  return "unknown";
}

}  // namespace wflops::kernels
