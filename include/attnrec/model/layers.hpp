#pragma once
/// \file Small building blocks shared by the model's modules.

#include <torch/torch.h>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// `kind` applied elementwise to `x`.
torch::Tensor activate(ActivationKind kind, const torch::Tensor& x);

/// The sinusoidal position table [rows, dim] of "Attention is all you need": sin at even
/// columns, cos at odd ones, wavelengths from 2 pi to 10000 * 2 pi.
torch::Tensor sinusoidal_table(std::int64_t rows, std::int64_t dim);

}  // namespace attnrec
