// mint/tasks/april.hpp -- APRIL (Lu et al., "APRIL: Finding the Achilles' heel on privacy for vision
// transformers", CVPR 2022): what the gradient of a LEARNED position embedding gives away (docs/gradvit.md).
//
// A timm ViT embeds patch p of image b as z_bp = W x_bp + c + pos_p (W: patch_embed.proj.weight flattened to
// [D, F], F = C*P*P; pos: pos_embed, a parameter). Hence dL/dpos_p = sum_b dL/dz_bp and
// dL/dW = sum_b sum_p dL/dz_bp x_bp^T. At batch 1 the first is dL/dz_p itself, so
//
//     dL/dW = Gpos^T X,   Gpos = dL/dpos (patch rows, [N, D]),   X = the image's patches [N, F],
//
// a linear system with D equations per pixel column and N unknowns: when D >= N and Gpos has rank N the input
// is recovered exactly in closed form (APRIL Sec. 4.1, "closed-form APRIL"), X = argmin ||Gpos^T X - dL/dW||.
// mint solves it in double with Eigen's SVD (the rank and conditioning are reported; a rank below N is an
// error, not a silent least-squares guess). Beyond batch 1 the sum over b mixes the images and the system no
// longer determines them; APRIL's optimisation variant (Sec. 4.2) then adds a cosine term on the
// position-embedding gradient to the gradient-matching loss: position_embedding_match() builds that term as a
// GradientMatch over pos_embed only, for gradvit::AttackOptions::extra_match.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/SVD>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/nn/tokens.hpp"
#include "mint/tasks/gradvit.hpp"

namespace mint::tasks::april {

struct ClosedFormResult {
  Tensor<Cpu> image;         // [1, C, H, W], the recovered input in the model's (normalised) input space
  int rank = 0;              // numerical rank of Gpos (must be N)
  double condition = 0.0;    // sigma_max / sigma_min of Gpos
  double residual = 0.0;     // ||Gpos^T X - dL/dW|| / ||dL/dW||: 0 up to rounding when the batch is one image
};

// requires: grads holds "pos_embed" [1, E + N, D], "patch_embed.proj.weight" [D, C, P, P] of one gradient
//           (any scale: batch-mean or sum); extra_tokens = E (1 for a class token, 2 with a distillation
//           token); image_size = H = W with (H / P)^2 = N.
// ensures:  the least-squares X of dL/dW = Gpos^T X written back as an image; exact (up to float rounding) when
//           the gradient is of ONE image, D >= N and Gpos has full rank N. Throws, naming the sizes, when D < N
//           (underdetermined: APRIL needs dim >= patches) or Gpos is rank-deficient.
inline ClosedFormResult closed_form(const gradvit::GradMap& grads, int extra_tokens, int image_size) {
  auto need = [&](const char* key) -> const Tensor<Cpu>& {
    auto it = grads.find(key);
    check(it != grads.end(), "april::closed_form: the gradient has no '", key,
          "' (APRIL needs a learned position embedding and the patch embedding)");
    return it->second;
  };
  const auto& gw = need("patch_embed.proj.weight");
  const auto& gp = need("pos_embed");
  check(gw.rank() == 4 && gw.dim(2) == gw.dim(3), "april::closed_form: patch_embed.proj.weight gradient has shape ",
        gw.shape().str(), ", expected [D, C, P, P]");
  const std::int64_t d = gw.dim(0), c = gw.dim(1), p = gw.dim(2), f = c * p * p;
  check(image_size > 0 && image_size % p == 0, "april::closed_form: image size ", image_size,
        " is not a multiple of the patch size ", p);
  const std::int64_t g = image_size / p, n = g * g;
  check(extra_tokens >= 0, "april::closed_form: extra_tokens must be >= 0, got ", extra_tokens);
  check(gp.rank() == 3 && gp.dim(0) == 1 && gp.dim(1) == extra_tokens + n && gp.dim(2) == d,
        "april::closed_form: pos_embed gradient has shape ", gp.shape().str(), ", expected [1, ", extra_tokens + n,
        ", ", d, "] (", extra_tokens, " extra tokens + ", n, " patches of ", p, " px, dim ", d, ")");
  check(d >= n, "april::closed_form: dim ", d, " < ", n, " patches: dL/dW = Gpos^T X has fewer equations than "
        "unknowns per pixel, so the closed form does not determine the image (APRIL needs dim >= patches)");
  // A = Gpos^T [D, N], B = dL/dW [D, F]; solve A X = B
  Eigen::MatrixXd a(d, n), b(d, f);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < d; ++k) a(k, i) = gp[(extra_tokens + i) * d + k];
  for (std::int64_t k = 0; k < d; ++k)
    for (std::int64_t j = 0; j < f; ++j) b(k, j) = gw[k * f + j];
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const auto& s = svd.singularValues();
  check(s.size() > 0 && s(0) > 0.0, "april::closed_form: the position-embedding gradient is zero");
  // rank at the usual tolerance: sigma_i > max(D, N) * u_double * sigma_max
  svd.setThreshold(static_cast<double>(std::max(d, n)) * Eigen::NumTraits<double>::epsilon());
  ClosedFormResult out;
  out.rank = static_cast<int>(svd.rank());
  check(out.rank == n, "april::closed_form: the position-embedding gradient has rank ", out.rank, " < ", n,
        " patches, so the image is not determined");
  out.condition = s(0) / s(s.size() - 1);
  const Eigen::MatrixXd x = svd.solve(b);  // [N, F]
  const double bn = b.norm();
  out.residual = bn > 0.0 ? (a * x - b).norm() / bn : 0.0;
  auto patches = Tensor<Cpu>::empty(Shape{1, n, f});
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < f; ++j) patches[i * f + j] = static_cast<float>(x(i, j));
  out.image = Tensor<Cpu>::zeros(Shape{1, c, image_size, image_size});
  nn::patchify_backward(patches, p, out.image);  // the patches written back to their pixels
  return out;
}

// APRIL's optimisation term (Sec. 4.2): 1 - cos(dL/dpos(x^), dL/dpos*) with weight `weight`, as a
// GradientMatch over pos_embed only (labels as the main match). Add it to an attack with
// gradvit::AttackOptions::extra_match; it follows the schedule's Gamma(t) like the main term.
// requires: target holds "pos_embed".
inline gradvit::GradientMatch position_embedding_match(const gradvit::GradMap& target, std::vector<int> labels,
                                                       float weight) {
  check(target.count("pos_embed") == 1, "april::position_embedding_match: the gradient has no 'pos_embed'");
  check(weight > 0.0f && std::isfinite(weight), "april::position_embedding_match: weight must be > 0, got ", weight);
  return gradvit::GradientMatch(target, std::move(labels),
                                {.distance = gradvit::MatchDistance::Cosine,
                                 .filter = [](const std::string& name) { return name == "pos_embed"; },
                                 .weight = weight});
}

}  // namespace mint::tasks::april
