// Must NOT compile: a type without rank() used as the PatchSelector. The build of this file is a CTest that
// passes only when the compiler's error names the PatchSelector concept (tests/CMakeLists.txt).
#include "mint/inversion/inverter.hpp"
#include "mint/models/vit.hpp"

struct NotASelector {
  int pick() const { return 0; }
};

int main() {
  mint::ViT<> model(mint::ViTConfig{});
  mint::Inverter<mint::ViT<>, mint::ClassObjective, mint::TV, NotASelector, mint::Dense> inv(model);
  (void)inv;
}
