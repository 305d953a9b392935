// mint/core/normalization.hpp -- a model's input normalisation, per channel: x_model = (x_unit - mean_c) / std_c,
// x_unit in [0, 1] (timm's pretrained_cfg `mean` / `std`; the embedded teacher's recipe). It gives the valid range
// of every channel in model space, [-mean_c / std_c, (1 - mean_c) / std_c], which the inversion engine clips to and
// the grids and datasets denormalise with. One scalar mean/std is the C = 1 case.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/error.hpp"

namespace mint {

// The numbers of "0.5" or "0.485,0.456,0.406" (how mint records a per-channel normalisation in safetensors
// metadata): each item wholly a number (std::from_chars), at most 64 items. Throws mint::Error starting with `what`
// and quoting the text otherwise.
inline std::vector<float> parse_float_list(const std::string& text, const std::string& what) {
  std::vector<float> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    float v = 0.0f;
    const auto [p, ec] = std::from_chars(text.data() + start, text.data() + end, v);
    check(ec == std::errc() && p == text.data() + end && end > start && out.size() < 64, what, " = '",
          text.substr(0, 80), "' is not a comma-separated list of numbers (at most 64)");
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

struct Normalization {
  std::vector<float> mean{0.0f}, std{1.0f};  // one entry per input channel

  // requires: mean.size() == std.size() >= 1, every mean finite, every std finite and > 0. Throws mint::Error
  // naming `what` and the offending channel.
  void validate(const std::string& what = "Normalization") const {
    check(!mean.empty() && mean.size() == std.size(), what, ": mean and std need one entry per channel, got ",
          mean.size(), " and ", std.size());
    for (std::size_t c = 0; c < mean.size(); ++c) {
      check(std::isfinite(mean[c]), what, ": mean[", c, "] = ", mean[c], " is not finite");
      check(std::isfinite(std[c]) && std[c] > 0.0f, what, ": std[", c, "] = ", std[c], " must be finite and > 0");
    }
  }
  [[nodiscard]] std::int64_t channels() const { return static_cast<std::int64_t>(mean.size()); }
  // The model-space value of unit intensity 0 (lo) and 1 (hi) in channel c.
  [[nodiscard]] float lo(std::int64_t c) const { return (0.0f - at(mean, c)) / at(std, c); }
  [[nodiscard]] float hi(std::int64_t c) const { return (1.0f - at(mean, c)) / at(std, c); }
  [[nodiscard]] float to_unit(float x, std::int64_t c) const { return x * at(std, c) + at(mean, c); }
  [[nodiscard]] float to_model(float u, std::int64_t c) const { return (u - at(mean, c)) / at(std, c); }
  // Channel c's map from this normalisation's model space to `to`'s (both read the same unit intensities):
  // x_to = scale * x + shift, scale = std_c / to.std_c, shift = (mean_c - to.mean_c) / to.std_c. A model-space
  // gradient maps back as d x = scale * d x_to.
  struct ChannelMap {
    float scale = 1.0f, shift = 0.0f;
  };
  [[nodiscard]] ChannelMap map_to(const Normalization& to, std::int64_t c) const {
    return {at(std, c) / at(to.std, c), (at(mean, c) - at(to.mean, c)) / at(to.std, c)};
  }
  [[nodiscard]] bool operator==(const Normalization&) const = default;
  // The same normalisation for `c` channels: a one-channel normalisation broadcasts, otherwise the counts must match.
  [[nodiscard]] Normalization for_channels(std::int64_t c, const std::string& what = "Normalization") const {
    if (channels() == c) return *this;
    check(channels() == 1 && c >= 1, what, ": the normalisation has ", channels(), " channels, the model ", c);
    return {std::vector<float>(static_cast<std::size_t>(c), mean[0]),
            std::vector<float>(static_cast<std::size_t>(c), std[0])};
  }

 private:
  static float at(const std::vector<float>& v, std::int64_t c) {
    check(c >= 0 && c < static_cast<std::int64_t>(v.size()), "Normalization: channel ", c, " out of range [0, ",
          v.size(), ")");
    return v[static_cast<std::size_t>(c)];
  }
};

}  // namespace mint
