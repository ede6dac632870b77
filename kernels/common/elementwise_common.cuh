// Shared by the elementwise kernels of the MLP step (bias, activation, residual, bias gradient,
// cast, optimizer): the activation functions both the kernels and the CPU references use, so
// the unfused kernels, the cuBLASLt epilogues and the references compute one function.
#pragma once

namespace wflops::kernels {

// GELU is the tanh approximation, the one cuBLASLt's GELU epilogues compute:
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// ReLU's derivative at exactly 0 is 0 (cuBLASLt's DRELU keeps a bit for h > 0; so do we).
enum class Activation { none, relu, gelu };

const char* activation_name(Activation a);  // "none", "relu", "gelu" (bias_activation.cu)

}  // namespace wflops::kernels
