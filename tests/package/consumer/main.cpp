// Uses the umbrella header: builds a tensor, fills it from the RNG, prints a value.
#include <cstdio>

#include <mint/mint.hpp>

int main() {
  mint::Tensor<mint::Cpu> t(mint::Shape{2, 3});
  mint::fill_uniform(t, 42, 0, -1.0f, 1.0f);
  std::printf("mint consumer ok: %s first=%f\n", t.shape().str().c_str(), static_cast<double>(t[0]));
  return t.numel() == 6 ? 0 : 1;
}
