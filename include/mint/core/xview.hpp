// mint/core/xview.hpp -- numpy-like host views of CPU tensors through xtensor, without copying.
// The compute tensor stays mint's own (so it can live on a GPU); xtensor is the user-facing lens for slicing,
// inspecting and writing tests: `auto v = mint::xview(t); v(0, 3, 2) = 1.f; xt::sum(v)()`.
#pragma once

#include <vector>

#include <xtensor/xadapt.hpp>

#include "mint/core/tensor.hpp"

namespace mint {

inline auto xview(Tensor<Cpu>& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}

inline auto xview(const Tensor<Cpu>& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}

}  // namespace mint
