// mint-attack-gradients: GradViT's gradient-inversion attack on the embedded Fashion-MNIST ViT teacher
// (docs/gradvit.md). A batch of real test images is the client's hidden data; the attacker sees the batch-mean
// cross-entropy gradient of every parameter (or of the matched subset), recovers or is given the labels, and
// optimises noise to match the gradient. Writes DIR/NAME.png (originals on top, the matched recoveries below,
// then the consensus of the seeds) and DIR/NAME.json (every option, PSNR / SSIM / FFT2D per image after the
// optimal assignment, label recovery, time).
//
//   (`mint-attack-gradients --help` lists the options)
//   mint-attack-gradients [--batch 8] [--first 0] [--iterations 400] [--seeds 1]
//       [--labels true|eq2|bias|repeats|uniform]
//       [--method gradvit|april-closed-form] [--april 0]
//       [--distance l2|cos] [--alpha-grad 1] [--schedule 0|1] [--alpha-image 0] [--patch 0] [--registration 0]
//       [--tv 1e-4] [--l2 0] [--lr 0.1] [--filter all|attn|mlp|blocks:A-B|no-blocks:A-B] [--seed 0]
//       [--register-every 50] [--register-from 0] [--model PATH] [--prior PATH] [--data DIR] [--out DIR] [--name attack] [--log-every 0]
//       [--checkpoint-every 500] [--resume] [--subspace 0] [--subspace-images 60000]
// A long attack saves its state (every seed's images and Adam moments, the consensus, the losses) to
// DIR/NAME.state.safetensors every --checkpoint-every iterations; the same command run again continues from it
// and gives the bytes the uninterrupted run would have (--resume: require the state). The state is removed once
// NAME.png and NAME.json are written.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <mint/io/sha256.hpp>
#include <mint/mint.hpp>
#include <mint/tasks/april.hpp>
#include <mint/tasks/gradvit.hpp>
#include <mint/tasks/label_recovery.hpp>

#include "cli.hpp"
#include "training_common.hpp"

namespace {

const char* kDescription =
    "GradViT: recovers a batch of real test images from the teacher's shared gradient (docs/gradvit.md).\n"
    "  The hidden batch is Fashion-MNIST test images first .. first+batch-1. --labels true gives the attack the true\n"
    "  labels; eq2 / bias recover them from the head's gradient (eq2 needs batch <= classes; bias must find batch\n"
    "  distinct classes). --alpha-image > 0 turns on the BN prior of the CNN --prior; with --schedule 1 the matching\n"
    "  weight halves and the image prior starts at iteration T/2 (Eq. 5-6). --method april-closed-form solves APRIL's\n"
    "  linear system (batch 1, learned position embedding) instead of optimising; --april W adds APRIL's\n"
    "  position-embedding term to the optimisation. --subspace K optimises each image's coordinates in the top-K\n"
    "  principal components of the first --subspace-images Fashion-MNIST TRAINING images (public data of the\n"
    "  victim's distribution; the hidden batch is from the test split) instead of its pixels.";

struct Args {
  int batch = 8, first = 0, iterations = 400, seeds = 1, register_every = 50, log_every = 0, checkpoint_every = 500;
  bool schedule = false, resume = false, signed_gradient = false, cosine_lr = true;
  float register_from = 0.0f, alpha_grad = 1.0f, alpha_image = 0.0f, patch = 0.0f, registration = 0.0f, tv = 1e-4f,
        l2 = 0.0f, lr = 0.1f;
  std::uint64_t seed = 0;
  float april = 0.0f, start_std = 0.0f;
  int subspace = 0, subspace_images = 60000;
  std::string method = "gradvit", init = "noise";
  std::string labels_mode = "true", distance = "cos", filter = "all", model_path = MINT_DEFAULT_MODEL,
              prior_path = MINT_DEFAULT_CNN, data_dir = "/usr/share/datasets/fashion-mnist", out = "out/attack",
              name = "attack";
};

void add_options(mint::cli::Command& c, Args& a) {
  c.number("--batch", a.batch, "hidden batch size", 1, 10000);
  c.number("--first", a.first, "first test image of the batch", 0, 9999);
  c.number("--iterations", a.iterations, "attack iterations", 1, 10'000'000);
  c.number("--seeds", a.seeds, "restarts from different noise", 1, 1000);
  c.choice("--labels", a.labels_mode,
           "labels: true, or recovered by eq2 / bias (sets) / repeats (bias impact rule) / uniform (bias, p = 1/C)",
           {"true", "eq2", "bias", "repeats", "uniform"});
  c.choice("--method", a.method, "gradvit (optimisation) or april-closed-form (batch 1, no iterations)",
           {"gradvit", "april-closed-form"});
  c.number("--april", a.april, "weight of APRIL's position-embedding cosine term (0: off)", 0, 1e6);
  c.choice("--distance", a.distance,
           "gradient distance: l2 (Eq. 3), cos (total cosine), layer-cos (mean per-tensor cosine)",
           {"l2", "cos", "layer-cos"});
  c.number("--alpha-grad", a.alpha_grad, "gradient-matching weight", 0, 1e6);
  c.flag01("--schedule", a.schedule, "Eq. 5-6 loss schedule");
  c.number("--alpha-image", a.alpha_image, "BN image-prior weight (needs --prior)", 0, 1e6);
  c.number("--patch", a.patch, "patch-prior weight", 0, 1e6);
  c.number("--registration", a.registration, "registration pull weight", 0, 1e6);
  c.number("--tv", a.tv, "total-variation weight", 0, 1e6);
  c.number("--l2", a.l2, "L2 weight", 0, 1e6);
  c.number("--lr", a.lr, "Adam learning rate", 1e-9, 1e3);
  c.flag01("--cosine-lr", a.cosine_lr, "decay the learning rate by a cosine to 0 (0: constant)");
  c.flag01("--signed", a.signed_gradient, "feed Adam the sign of the gradient (Inverting Gradients)");
  c.choice("--init", a.init,
           "start: noise (seeded Gaussian), mean (the dataset-mean image), class-mean (each image at the mean of "
           "the public training images of its label) or truth (the hidden batch: an oracle diagnostic of where "
           "the objective's minimiser lies, not an attack)",
           {"noise", "mean", "class-mean", "truth"});
  c.number("--start-std", a.start_std,
           "with --init mean|class-mean|truth: seed s starts there plus N(0, std^2) noise (pixels, or subspace "
           "coordinates), so that several seeds differ",
           0, 1e3);
  c.text("--filter", a.filter, "matched parameters: all|attn|mlp|blocks:A-B|no-blocks:A-B");
  c.number("--seed", a.seed, "seed", 0, std::numeric_limits<std::uint64_t>::max());
  c.number("--register-every", a.register_every, "iterations between registrations", 1, 10'000'000);
  c.number("--register-from", a.register_from, "share of T after which registration starts", 0, 1);
  c.existing("--model", a.model_path, "the attacked ViT");
  c.existing("--prior", a.prior_path, "CNN for the BN image prior");
  c.existing("--data", a.data_dir, "Fashion-MNIST idx.gz folder");
  c.text("--out", a.out, "output folder (NAME.png and NAME.json go there)");
  c.text("--name", a.name, "output file name stem");
  c.number("--log-every", a.log_every, "log PSNR every N iterations (0: never)", 0, 10'000'000);
  c.number("--checkpoint-every", a.checkpoint_every,
           "save the attack's state to OUT/NAME.state.safetensors every N iterations (0: never)", 0, 10'000'000);
  c.number("--subspace", a.subspace,
           "optimise the top-K principal components of public training images (0: the pixels)", 0, 4096);
  c.number("--subspace-images", a.subspace_images, "training images the subspace is fitted on", 2, 60000);
  c.app().add_flag("--resume", a.resume, "require OUT/NAME.state.safetensors (the same command resumes from it "
                   "by default when it exists)");
}

namespace gv = mint::tasks::gradvit;

gv::ParamFilter parse_filter(const std::string& f) {
  if (f == "all") return gv::all_parameters();
  if (f == "attn") return gv::attention_parameters();
  if (f == "mlp") return gv::mlp_parameters();
  for (const std::string pre : {"blocks:", "no-blocks:"})
    if (f.rfind(pre, 0) == 0) {
      int a = -1, b = -1;
      mint::check(std::sscanf(f.c_str() + pre.size(), "%d-%d", &a, &b) == 2 && a >= 0 && b >= a,
                  "--filter ", f, ": expected ", pre, "A-B with 0 <= A <= B");
      auto in = gv::block_parameters(a, b);
      return pre == "blocks:" ? in : gv::except(in);
    }
  throw mint::Error("--filter '" + f + "' is not all, attn, mlp, blocks:A-B or no-blocks:A-B");
}

// normalised -> [0, 1] pixels (every image here is already inside the valid range, so the clip changes nothing)
mint::Tensor<> to_pixels(const mint::Tensor<>& x) {
  return mint::tasks::denormalize01(x, mint::tasks::kFashionMnistMean, mint::tasks::kFashionMnistStd);
}

nlohmann::json metrics(const mint::Tensor<>& rec01, const mint::Tensor<>& orig01, mint::Tensor<>* matched) {
  std::vector<int> order;
  auto m = mint::tasks::match_images(rec01, orig01, &order);
  const auto p = mint::tasks::psnr(m, orig01, 1.0f), s = mint::tasks::ssim(m, orig01, 1.0f), f = mint::tasks::fft2d(m, orig01);
  auto mean = [](const std::vector<double>& v) {
    double a = 0;
    for (double x : v) a += x;
    return a / static_cast<double>(v.size());
  };
  if (matched) *matched = m;
  return {{"psnr", mean(p)}, {"ssim", mean(s)}, {"fft2d", mean(f)}, {"psnr_per_image", p}, {"ssim_per_image", s},
          {"fft2d_per_image", f}, {"assignment", order}};
}

// The options that shape the attack, as the report and the state's fingerprint record them.
nlohmann::json options_json(const Args& a) {
  using mint::examples::dec;
  return {{"distance", a.distance}, {"filter", a.filter}, {"iterations", a.iterations}, {"seeds", a.seeds},
          {"lr", dec(a.lr)}, {"alpha_grad", dec(a.alpha_grad)}, {"schedule", a.schedule},
          {"alpha_image", dec(a.alpha_image)}, {"prior", a.alpha_image > 0.0f ? a.prior_path : ""},
          {"patch", dec(a.patch)}, {"registration", dec(a.registration)}, {"register_every", a.register_every},
          {"register_from", dec(a.register_from)}, {"tv", dec(a.tv)}, {"l2", dec(a.l2)}, {"april", dec(a.april)},
          {"seed", a.seed}, {"method", a.method}, {"labels", a.labels_mode}, {"signed", a.signed_gradient},
          {"init", a.init}, {"start_std", dec(a.start_std)}, {"cosine_lr", a.cosine_lr}, {"subspace", a.subspace},
          {"subspace_images", a.subspace > 0 ? a.subspace_images : 0}};
}

int run(const mint::cli::Command& c, const Args& args) {
  using namespace mint;
  // the options by name (references, not a structured binding: clang cannot capture those in the lambdas below)
  const int &batch = args.batch, &first = args.first, &iterations = args.iterations, &seeds = args.seeds,
            &register_every = args.register_every, &log_every = args.log_every;
  const bool& schedule = args.schedule;
  const float &register_from = args.register_from, &alpha_grad = args.alpha_grad, &alpha_image = args.alpha_image,
              &patch = args.patch, &registration = args.registration, &tv = args.tv, &l2 = args.l2, &lr = args.lr;
  const std::uint64_t& seed = args.seed;
  const std::string &labels_mode = args.labels_mode, &distance = args.distance, &filter = args.filter,
                    &model_path = args.model_path, &prior_path = args.prior_path, &data_dir = args.data_dir,
                    &out = args.out, &name = args.name;
  check(first + batch <= 10000, "--first ", first, " + --batch ", batch, " exceeds the 10000 test images");
  check(!c.given("--prior") || alpha_image > 0.0f, "--prior is used only with --alpha-image > 0");
  check(registration == 0.0f || seeds > 1, "--registration pulls the seeds together: it needs --seeds > 1");
  check(register_from < 1.0f, "--register-from ", register_from, " must be < 1 (a share of the iterations)");
  check(!name.empty() && name.find('/') == std::string::npos, "--name '", name, "' must be a plain file name");
  check(args.method == "gradvit" || batch == 1, "--method april-closed-form recovers batch 1 only, got --batch ",
        batch);
  check(args.start_std == 0.0f || args.init != "noise", "--start-std adds noise to a start: it needs --init mean, "
        "class-mean or truth");
  check(!c.given("--subspace-images") || args.subspace > 0, "--subspace-images is used only with --subspace > 0");
  check(args.method == "gradvit" || args.subspace == 0, "--method april-closed-form does not optimise: drop --subspace");
  check(args.method == "gradvit" || !c.given("--iterations"),
        "--method april-closed-form does not iterate: drop --iterations");
  const auto param_filter = parse_filter(filter);
  std::filesystem::create_directories(out);
  cli::check_writable_file(out + "/" + name + ".png", "--out");

  auto model = ViT<>::load(model_path);
  const auto& cfg = model.config();
  const auto data = tasks::load_fashion_mnist(data_dir, false, first + batch);
  check(data.size() == first + batch, "--data: the test set has only ", data.size(), " images");
  const std::int64_t per = data.images.numel() / data.size();
  auto xstar = Tensor<>::empty(Shape{batch, data.images.dim(1), data.images.dim(2), data.images.dim(3)});
  std::copy(data.images.data() + first * per, data.images.data() + (first + batch) * per, xstar.data());
  const std::vector<int> ystar(data.labels.begin() + first, data.labels.end());

  // the client's shared gradient, and what the attacker can read from the head
  const auto gstar = gv::parameter_gradients(model, xstar, ystar);
  const auto bias = gv::labels_from_bias_sign(gstar.at("head.bias"));
  // the evaluator's view of what the shared gradient holds of each image: the norm of its own gradient (the batch's
  // is their mean); an image whose norm is orders below the others' is all but absent from G*
  std::vector<double> per_image_norm;
  for (int b = 0; b < batch; ++b) {
    auto xb = Tensor<>::empty(Shape{1, xstar.dim(1), xstar.dim(2), xstar.dim(3)});
    std::copy(xstar.data() + b * per, xstar.data() + (b + 1) * per, xb.data());
    double n2 = 0.0;
    for (const auto& [pname, g] : gv::parameter_gradients(model, xb, {ystar[static_cast<std::size_t>(b)]}))
      for (std::int64_t i = 0; i < g.numel(); ++i) n2 += double{g[i]} * g[i];
    per_image_norm.push_back(std::sqrt(n2));
  }
  std::vector<int> eq2;
  if (batch <= cfg.classes) eq2 = gv::recover_labels_eq2(gstar.at("head.weight"), batch);
  std::vector<int> labels = ystar;
  if (labels_mode == "eq2") {
    check(!eq2.empty(), "--labels eq2 needs batch <= ", cfg.classes, " classes");
    labels = eq2;
  } else if (labels_mode == "bias") {
    check(static_cast<int>(bias.size()) == batch, "--labels bias found ", bias.size(),
          " classes for a batch of ", batch);
    labels = bias;
  } else if (labels_mode == "repeats") {
    labels = tasks::labels::labels_with_repeats(gstar.at("head.bias"), batch);
  } else if (labels_mode == "uniform") {
    labels = tasks::labels::labels_from_bias_and_probs(gstar.at("head.bias"), batch,
                                                       std::vector<double>(static_cast<std::size_t>(cfg.classes),
                                                                           1.0 / cfg.classes));
  }

  gv::GradientMatch match(gstar, labels,
                          {.distance = distance == "l2"    ? gv::MatchDistance::L2
                                       : distance == "cos" ? gv::MatchDistance::Cosine
                                                           : gv::MatchDistance::LayerCosine,
                           .filter = param_filter});
  std::optional<gv::GradientMatch> april_match;
  if (args.april > 0.0f) april_match.emplace(tasks::april::position_embedding_match(gstar, labels, args.april));
  std::optional<ResNet<>> prior;
  const float lo = (0.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd,
              hi = (1.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd;
  gv::AttackOptions opt{.iterations = iterations, .lr = lr, .cosine_lr = args.cosine_lr, .tv = tv, .l2 = l2,
                        .patch = patch, .patch_size = cfg.patch,
                        .schedule = {.enabled = schedule, .alpha_grad = alpha_grad, .alpha_image = alpha_image},
                        .seeds = seeds, .registration = registration, .register_every = register_every,
                        .register_from = register_from,
                        .signed_gradient = args.signed_gradient, .seed = seed, .pixel_lo = lo, .pixel_hi = hi,
                        .extra_match = april_match ? &*april_match : nullptr};
  opt.start_std = args.start_std;
  auto mean_start = Tensor<>::full(xstar.shape(), 0.0f);  // the dataset-mean pixel is 0 in normalised units
  if (args.init == "mean") opt.start = &mean_start;
  if (args.init == "truth") opt.start = &xstar;
  // The attacker's public data: the training split (the hidden batch is from the test split). The class-mean image
  // of each label used is a reference (what labels and public data give without the gradient's pixel information)
  // and a start; the first --subspace-images images are the subspace prior's.
  const auto pub = tasks::load_fashion_mnist(data_dir, true);
  auto class_mean = Tensor<>::zeros(xstar.shape());
  for (int b = 0; b < batch; ++b) {
    const int label = labels[static_cast<std::size_t>(b)];
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < pub.size(); ++i)
      if (pub.labels[static_cast<std::size_t>(i)] == label) {
        ++count;
        for (std::int64_t j = 0; j < per; ++j) class_mean[b * per + j] += pub.images[i * per + j];
      }
    check(count > 0, "--data: no training image has label ", label);
    for (std::int64_t j = 0; j < per; ++j) class_mean[b * per + j] /= static_cast<float>(count);
  }
  if (args.init == "class-mean") opt.start = &class_mean;
  std::optional<tasks::ImageSubspace> subspace;
  nlohmann::json subspace_report;
  if (args.subspace > 0) {
    const auto ts = std::chrono::steady_clock::now();
    check(pub.size() >= args.subspace_images, "--subspace-images ", args.subspace_images,
          ": the training set has only ", pub.size(), " images");
    auto fit_on = Tensor<>::empty(Shape{args.subspace_images, xstar.dim(1), xstar.dim(2), xstar.dim(3)});
    std::copy(pub.images.data(), pub.images.data() + fit_on.numel(), fit_on.data());
    subspace.emplace(tasks::fit_image_subspace(fit_on, args.subspace));
    opt.subspace = &*subspace;
    // the best the prior allows: the hidden batch projected onto the subspace (the evaluator's knowledge)
    auto proj = subspace->decode(subspace->encode(xstar));
    for (std::int64_t i = 0; i < proj.numel(); ++i) proj[i] = std::clamp(proj[i], lo, hi);
    subspace_report = {{"k", args.subspace}, {"images", args.subspace_images}, {"explained", subspace->explained},
                       {"fit_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count()},
                       {"projection_of_hidden_batch", metrics(to_pixels(proj), to_pixels(xstar), nullptr)}};
    std::printf("mint-attack-gradients: subspace prior: %d components of %d training images (%.1f %% of the "
                "variance); the hidden batch projected onto it: %.2f dB\n",
                args.subspace, args.subspace_images, 100.0 * subspace->explained,
                subspace_report["projection_of_hidden_batch"]["psnr"].get<double>());
  }
  if (alpha_image > 0.0f) {
    prior.emplace(ResNet<>::load(prior_path));
    prior->eval();
    opt.image_prior.model = &*prior;
  }

  // What makes a saved state this run's: every option, the model's bytes, the hidden batch and the labels used.
  const std::string state_path = out + "/" + name + ".state.safetensors";
  nlohmann::json run_id = options_json(args);
  run_id.update({{"model_sha256", io::sha256_file(model_path)}, {"first", first}, {"batch", batch},
                 {"labels_used", labels}});
  const std::string fingerprint = run_id.dump();
  std::optional<gv::AttackState> resumed;
  double seconds_before = 0.0;
  check(!args.resume || std::filesystem::exists(state_path), "--resume: '", state_path,
        "' does not exist: nothing to resume (leave out --resume to start)");
  check(!args.resume || args.method == "gradvit", "--resume: --method ", args.method, " does not iterate");
  if (args.method == "gradvit" && std::filesystem::exists(state_path)) {
    std::map<std::string, std::string> extra;
    resumed = gv::load_attack_state(state_path, fingerprint, &extra);
    check(resumed->t < iterations, "'", state_path, "' is after iteration ", resumed->t, " of ", iterations);
    seconds_before = extra.count("seconds") ? std::stod(extra.at("seconds")) : 0.0;
    std::printf("mint-attack-gradients: resuming after iteration %d of %d from %s\n", resumed->t, iterations,
                state_path.c_str());
  }

  const auto orig01 = to_pixels(xstar);
  std::printf("mint-attack-gradients: batch %d (test images %d..%d, labels", batch, first, first + batch - 1);
  for (int y : ystar) std::printf(" %d", y);
  std::printf("), %zu of %zu parameter tensors matched, %d iterations x %d seed(s)\n", match.matched().size(),
              gstar.size(), iterations, seeds);
  const auto t0 = std::chrono::steady_clock::now();
  gv::AttackResult res;
  nlohmann::json closed_form;
  if (args.method == "april-closed-form") {
    auto cf = tasks::april::closed_form(gstar, static_cast<int>(cfg.extra_tokens()), static_cast<int>(xstar.dim(2)));
    for (std::int64_t i = 0; i < cf.image.numel(); ++i) cf.image[i] = std::clamp(cf.image[i], lo, hi);
    res.images = cf.image;
    res.consensus = cf.image.clone();
    res.loss = {0.0};
    res.distance = {match.evaluate(model, cf.image).distance};
    closed_form = {{"rank", cf.rank}, {"condition", cf.condition}, {"residual", cf.residual}};
  } else {
    const auto elapsed = [&] {
      return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const gv::AttackCheckpoint ckpt{
        .every = args.checkpoint_every,
        .save = [&](const gv::AttackState& st) {
          gv::save_attack_state(state_path, st, fingerprint, {{"seconds", std::to_string(elapsed())}});
        },
        .resume = resumed ? &*resumed : nullptr};
    res = gv::attack(model, match, xstar.shape(), opt, [&](int t, double loss, const Tensor<>& x) {
      if (log_every > 0 && (t % log_every == 0 || t == iterations)) {
        const auto m = metrics(to_pixels(x), orig01, nullptr);
        std::printf("  t %5d  loss %.4e  seed-0 PSNR %.2f dB\n", t, loss, m["psnr"].get<double>());
        std::fflush(stdout);
      }
    }, ckpt);
  }
  const double secs =
      seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  Tensor<> matched, matched_c;
  const auto m = metrics(to_pixels(res.images), orig01, &matched);
  const auto mc = metrics(to_pixels(res.consensus), orig01, &matched_c);
  // grid: originals | recovered (best seed, matched) | consensus (matched, only with several seeds)
  const int rows = seeds > 1 ? 3 : 2;
  auto grid = Tensor<>::empty(Shape{rows * batch, xstar.dim(1), xstar.dim(2), xstar.dim(3)});
  std::copy(orig01.data(), orig01.data() + orig01.numel(), grid.data());
  std::copy(matched.data(), matched.data() + matched.numel(), grid.data() + orig01.numel());
  if (rows == 3) std::copy(matched_c.data(), matched_c.data() + matched_c.numel(), grid.data() + 2 * orig01.numel());
  cli::write_png(out + "/" + name + ".png", io::image_grid(grid, batch, 1));

  // references an attack must beat: the constant dataset-mean image and the clipped initial noise of seed 0
  auto mean_img = Tensor<>::empty(xstar.shape());
  mean_img.fill(tasks::kFashionMnistMean);
  // as gradvit::attack draws seed 0's start: pixels, or the subspace coordinates
  auto noise = Tensor<>::empty(subspace ? Shape{batch, subspace->k()} : xstar.shape());
  fill_normal(noise, opt.seed, 0, 0.0f, opt.init_std);
  if (subspace) noise = subspace->decode(noise);
  for (std::int64_t i = 0; i < noise.numel(); ++i) noise[i] = std::clamp(noise[i], lo, hi);
  const auto m_mean = metrics(mean_img, orig01, nullptr), m_noise = metrics(to_pixels(noise), orig01, nullptr);
  const auto m_class = metrics(to_pixels(class_mean), orig01, nullptr);

  std::set<int> present(ystar.begin(), ystar.end());
  auto hits = [&](const std::vector<int>& v) {
    int h = 0;
    for (int c : v) h += static_cast<int>(present.count(c));
    return h;
  };
  nlohmann::json opts = options_json(args);
  opts["matched_tensors"] = match.matched().size();
  nlohmann::json rep = {
      {"command", c.command_line()},
      {"model", model_path},
      {"batch", batch},
      {"test_images", {first, first + batch - 1}},
      {"true_labels", ystar},
      {"labels_mode", labels_mode},
      {"labels_used", labels},
      {"hidden_gradient_norm_per_image", per_image_norm},
      {"labels_correct", tasks::labels::multiset_overlap(labels, ystar)},
      {"method", args.method},
      {"april_closed_form", closed_form},
      {"label_recovery",
       {{"eq2", eq2}, {"eq2_present", hits(eq2)}, {"bias_sign", bias}, {"bias_sign_present", hits(bias)},
        {"distinct_true", present.size()}}},
      {"options", opts},
      {"recovered", m},
      {"consensus", mc},
      {"reference_mean_image", {{"psnr", m_mean["psnr"]}, {"ssim", m_mean["ssim"]}, {"fft2d", m_mean["fft2d"]}}},
      {"subspace", subspace_report},
      {"reference_class_mean_image", {{"psnr", m_class["psnr"]}, {"ssim", m_class["ssim"]}, {"fft2d", m_class["fft2d"]},
                                      {"psnr_per_image", m_class["psnr_per_image"]}}},
      {"reference_init_noise", {{"psnr", m_noise["psnr"]}, {"ssim", m_noise["ssim"]}, {"fft2d", m_noise["fft2d"]}}},
      {"best_seed", res.best_seed},
      {"final_distance", res.distance},
      {"final_loss", res.loss.back()},
      {"seconds", secs},
      {"resumed_after", resumed ? resumed->t : 0},
      {"threads", cpu::num_threads()},
  };
  cli::write_json(out + "/" + name + ".json", rep);
  std::filesystem::remove(state_path);  // the run's outputs are written: nothing is left to resume
  std::printf("  PSNR %.2f dB  SSIM %.3f  FFT2D %.4f  (consensus: %.2f dB; mean image %.2f dB, class means %.2f dB)  "
              "in %.1f s -> %s/%s.{png,json}\n",
              m["psnr"].get<double>(), m["ssim"].get<double>(), m["fft2d"].get<double>(), mc["psnr"].get<double>(),
              m_mean["psnr"].get<double>(), m_class["psnr"].get<double>(), secs, out.c_str(), name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-attack-gradients", kDescription);
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
