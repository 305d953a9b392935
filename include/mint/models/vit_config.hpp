// mint/models/vit_config.hpp -- the shape of a timm ViT / DeiT, and the table of known timm architectures.
//
// Everything but the head count can be read from a checkpoint's tensor shapes. The head count cannot (qkv is
// [3D, D] for any head count), so it comes from, in this order: an explicit option, a known architecture
// name, the checkpoint's "mint.num_heads" metadata (files mint writes carry it), or the known-architecture
// table matched on the whole shape (dim, depth, patch, img_size, distilled); a table guess that is ambiguous is
// an error (known_match). mint/models/model_source.hpp puts a model's config files in front of these.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/shape.hpp"

namespace mint {

struct ViTConfig {
  int img_size = 224;
  int patch = 16;
  int in_chans = 3;
  int dim = 192;
  int depth = 12;
  int heads = 3;
  int mlp_hidden = 768;
  int classes = 1000;
  bool distilled = false;  // DeiT distilled: dist_token + head_dist, logits = (head(cls) + head_dist(dist)) / 2
  float eps = 1e-6f;       // LayerNorm eps (timm ViTs: 1e-6)

  [[nodiscard]] int grid() const { return img_size / patch; }
  [[nodiscard]] int num_patches() const { return grid() * grid(); }
  [[nodiscard]] int extra_tokens() const { return distilled ? 2 : 1; }

  // ensures: every size is >= 1, the patch grid is whole, and every parameter's element count (hence
  // num_patches() and the model's total) fits in int64, so nothing sized from this config overflows.
  void validate() const {
    check(dim >= 1 && depth >= 1 && in_chans >= 1 && classes >= 1 && mlp_hidden >= 1, "ViTConfig: dim ", dim,
          ", depth ", depth, ", in_chans ", in_chans, ", classes ", classes, ", mlp_hidden ", mlp_hidden,
          " must all be positive");
    check(patch >= 1 && img_size >= patch && img_size % patch == 0, "ViTConfig: img_size ", img_size,
          " is not a positive multiple of patch ", patch);
    check(heads >= 1 && dim % heads == 0, "ViTConfig: dim ", dim, " is not divisible by ", heads, " heads");
    check(std::isfinite(eps) && eps > 0.0f, "ViTConfig: LayerNorm eps must be finite and > 0, got ", eps);
    const std::int64_t g = grid(), d = dim;
    check(g * g + extra_tokens() <= std::numeric_limits<int>::max(), "ViTConfig: a ", g, " x ", g,
          " patch grid (img_size ", img_size, " / patch ", patch, ") has more tokens than an int counts");
    // Patch embedding d*c*p*p, blocks depth*(4d + 2h)*d (+ biases), position embedding and heads (each < 2^62).
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    std::int64_t pe = 0, block = 0, blocks = 0, rest = 0;
    const bool fits = detail::checked_mul(d * in_chans, std::int64_t{patch} * patch, pe) &&
                      detail::checked_mul(4 * d + 2 * std::int64_t{mlp_hidden} + 16, d, block) &&
                      detail::checked_mul(depth, block, blocks) &&
                      detail::checked_mul(g * g + extra_tokens() + 2 * std::int64_t{classes} + 16, d, rest) &&
                      blocks <= kMax - rest && blocks + rest <= kMax - pe;
    check(fits, "ViTConfig: dim ", dim, ", depth ", depth, ", patch ", patch, ", mlp_hidden ", mlp_hidden,
          ": the parameter count overflows int64");
  }
};

struct KnownViT {
  const char* name;
  int img_size, patch, dim, depth, heads;
  bool distilled;
};

// timm's names. Classes and MLP width are read from the checkpoint.
inline const std::vector<KnownViT>& known_vits() {
  static const std::vector<KnownViT> table{
      {"deit_tiny_patch16_224", 224, 16, 192, 12, 3, false},
      {"deit_small_patch16_224", 224, 16, 384, 12, 6, false},
      {"deit_base_patch16_224", 224, 16, 768, 12, 12, false},
      {"deit_tiny_distilled_patch16_224", 224, 16, 192, 12, 3, true},
      {"deit_small_distilled_patch16_224", 224, 16, 384, 12, 6, true},
      {"deit_base_distilled_patch16_224", 224, 16, 768, 12, 12, true},
      {"vit_tiny_patch16_224", 224, 16, 192, 12, 3, false},
      {"vit_small_patch16_224", 224, 16, 384, 12, 6, false},
      {"vit_base_patch16_224", 224, 16, 768, 12, 12, false},
      {"vit_large_patch16_224", 224, 16, 1024, 24, 16, false},
      {"vit_small_patch32_224", 224, 32, 384, 12, 6, false},
      {"vit_base_patch32_224", 224, 32, 768, 12, 12, false},
      {"vit_large_patch32_224", 224, 32, 1024, 24, 16, false},
  };
  return table;
}

inline const KnownViT& known_vit(const std::string& name) {
  std::string names;
  for (const auto& k : known_vits()) {
    if (name == k.name) return k;
    names += std::string(names.empty() ? "" : ", ") + k.name;
  }
  throw Error("unknown ViT architecture '" + name + "'; known: " + names);
}

// The table's answer for a checkpoint of shape `c` (heads ignored): the names of the entries whose whole shape
// (dim, depth, patch, img_size, distilled) matches, and their common head count. The table is a guess, so it
// must be unambiguous: throws naming `source` and the candidates when no entry matches the whole shape (an entry
// matching only dim and depth is a different model whose head count would be a guess) or when the matching
// entries disagree on the head count.
struct KnownMatch {
  int heads = 0;
  std::vector<std::string> names;
};
inline KnownMatch known_match(const ViTConfig& c, const std::string& source) {
  KnownMatch m;
  std::string partial;
  for (const auto& k : known_vits()) {
    if (k.dim != c.dim || k.depth != c.depth) continue;
    if (k.patch != c.patch || k.img_size != c.img_size || k.distilled != c.distilled) {
      partial += std::string(partial.empty() ? "" : ", ") + k.name;
      continue;
    }
    if (!m.names.empty() && m.heads != k.heads)
      throw Error(detail::concat("ViT (", source, "): the known-architecture table is ambiguous for dim ", c.dim,
                                 ", depth ", c.depth, ": ", m.names.front(), " has ", m.heads, " heads, ", k.name, " ",
                                 k.heads, "; pass the head count (ViTLoadOptions.heads, --heads) or the architecture "
                                 "(--arch)"));
    m.heads = k.heads;
    m.names.emplace_back(k.name);
  }
  check(!m.names.empty(), "ViT (", source, "): cannot infer the number of attention heads for dim ", c.dim, ", depth ",
        c.depth, ", patch ", c.patch, ", img ", c.img_size, c.distilled ? ", distilled" : "",
        partial.empty() ? std::string(": no known architecture has this width and depth")
                        : ": only dim and depth match " + partial + ", so their head count would be a guess",
        "; pass ViTLoadOptions{.heads = ...} (--heads) or a known .arch name (--arch)");
  return m;
}

}  // namespace mint
