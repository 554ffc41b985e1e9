#include "attnrec/model/layers.hpp"

#include <cmath>

namespace attnrec {

torch::Tensor activate(ActivationKind kind, const torch::Tensor& x) {
  switch (kind) {
    case ActivationKind::relu:
      return torch::relu(x);
    case ActivationKind::gelu:
      return torch::gelu(x);
    case ActivationKind::tanh:
      return torch::tanh(x);
    case ActivationKind::sigmoid:
      return torch::sigmoid(x);
  }
  TORCH_CHECK(false, "activation: unknown kind");
}

torch::Tensor sinusoidal_table(std::int64_t rows, std::int64_t dim) {
  using torch::indexing::Slice;
  const auto pos = torch::arange(rows, torch::kFloat32).unsqueeze(1);
  const auto i = torch::arange(0, dim, 2, torch::kFloat32);
  const auto angle = pos * torch::exp(-std::log(10000.0) * i / static_cast<double>(dim));
  auto table = torch::zeros({rows, dim});
  table.index_put_({Slice(), Slice(0, dim, 2)}, torch::sin(angle));
  table.index_put_({Slice(), Slice(1, dim, 2)}, torch::cos(angle).narrow(1, 0, dim / 2));
  return table;
}

}  // namespace attnrec
