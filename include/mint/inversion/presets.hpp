// mint/inversion/presets.hpp -- the named methods in two forms. The paper-literal DMI / SMI / PRI (inverter.hpp)
// follow the printed equations (SMI Eq. 2 TV, the masked update of Sec. 4.2). DMIOfficial / SMIOfficial /
// PRIOfficial follow SMI's official code (Egg-Hu/SMI synthesis/smi.py with test_kt.py's settings): TVOfficial
// (get_image_prior_losses, tv2 = 1e-4), JitterFlipOfficial (jitter_and_flip + jitter_and_flip_index, no jitter
// around prune steps), Adam on the whole canvas, the per-channel clip (clip_images), no clip of the initial noise,
// and the last image (best_inputs aliases `inputs`). PRIOfficial is PRI's schedule run with those forms (PRI has
// no code of its own here). docs/inversion.md has the table, policy by policy, with the lines they follow.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/inverter.hpp"

namespace mint {

// The official form of the method whose schedule is Sch, with prior P (the code's TVOfficial unless a lever adds a
// term, as OfficialWithBN below).
template <class M, class Sch, class P = TVOfficial>
using OfficialInverter = Inverter<M, ClassObjective, P, HighAttention, Sch, JitterFlipOfficial>;
template <class M>
using DMIOfficial = OfficialInverter<M, Dense>;
template <class M>
using SMIOfficial = OfficialInverter<M, ProgressivePrune>;
template <class M>
using PRIOfficial = OfficialInverter<M, Rebirth>;

// The lever smi.py has and test_kt.py leaves off (bn = 0): the official TV plus a borrowed CNN's BN-statistics
// prior (bn_prior.hpp, BorrowedBNPrior), e.g. OfficialInverter<ViT<>, Dense, OfficialWithBN>; an ablation row, not
// a default.
using OfficialWithBN = Sum<TVOfficial, BorrowedBNPrior>;

enum class PresetForm { Paper, Official };

// "paper" or "official"; anything else is an error that lists both.
inline PresetForm preset_form(const std::string& name) {
  if (name == "paper") return PresetForm::Paper;
  check(name == "official", "preset '", name, "' is not known: use paper or official");
  return PresetForm::Official;
}
inline const char* preset_name(PresetForm f) { return f == PresetForm::Paper ? "paper" : "official"; }

// Sets in `o` what a preset fixes, for a model whose input normalisation is `norm` (one entry per channel, or one
// for all), and leaves T, lr, the seed and the scalar pixel range (used by grids) as the caller set them. Both
// forms: Adam betas (0.5, 0.99), eps 1e-8 (smi.py) and the per-channel clip (clip_images). The official form also
// leaves the initial noise unclipped, steps the whole canvas and keeps the last image, as smi.py does; the paper
// form clips the noise, steps the active patches only and keeps the last image (mint's defaults).
// requires: norm valid (checked here, naming it).
inline void apply_preset(InversionOptions& o, PresetForm form, const Normalization& norm) {
  norm.validate("preset: normalisation");
  o.beta1 = 0.5f, o.beta2 = 0.99f, o.eps = 1e-8f;
  o.normalization = norm;
  const bool official = form == PresetForm::Official;
  o.clip_initial = !official;       // smi.py: inputs = torch.randn(...), clipped only after the first step
  o.step_whole_canvas = official;   // smi.py: torch.optim.Adam([inputs], ...) holds every pixel
  o.kept_image = KeptImage::Last;   // smi.py: best_inputs = inputs.data aliases inputs, so the last image
}

// A preset's whole options: apply_preset on T = 4000, lr 0.25 (smi.py / test_kt.py: iterations, lr_g).
inline InversionOptions preset_options(PresetForm form, const Normalization& norm) {
  InversionOptions o;
  o.iterations = 4000;
  o.lr = 0.25f;
  apply_preset(o, form, norm);
  return o;
}

// A method's schedule: Dense (DMI), ProgressivePrune (SMI) or Rebirth (PRI).
using MethodSchedule = std::variant<Dense, ProgressivePrune, Rebirth>;

// Runs the official-code form of the method whose schedule is given (DMIOfficial, SMIOfficial or PRIOfficial) on
// `model`, TV weight `tv` (smi.py's tv2), with `opt` (normally preset_options(PresetForm::Official, ...)).
// This is what `mint-invert --preset official` calls. With `bn` the prior is OfficialWithBN (TVOfficial{tv} + *bn:
// smi.py's `bn` lever); without, TVOfficial alone.
template <Model M>
InversionResult run_official(M& model, const MethodSchedule& schedule, const std::vector<int>& labels,
                             const InversionOptions& opt, float tv = 1e-4f,
                             const std::function<void(const IterationStats&)>& on_iteration = {},
                             const std::optional<BorrowedBNPrior>& bn = std::nullopt) {
  return std::visit(
      [&](const auto& sch) {
        using Sch = std::decay_t<decltype(sch)>;
        if (bn) {
          OfficialInverter<M, Sch, OfficialWithBN> inv(model, {}, OfficialWithBN(TVOfficial{tv}, *bn), {}, sch, {},
                                                       opt);
          return inv.run(labels, on_iteration);
        }
        OfficialInverter<M, Sch> inv(model, {}, TVOfficial{tv}, {}, sch, {}, opt);
        return inv.run(labels, on_iteration);
      },
      schedule);
}

}  // namespace mint
