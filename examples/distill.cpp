// mint-distill: distils the embedded teacher (or --teacher) into a student on a synthetic data set written by
// save_synthetic_dataset (e.g. by mint-invert), offline protocol, then prints the student's top-1 accuracy on
// the real Fashion-MNIST test set (all classes, and --classes if given). `mint-distill --help` lists the options.
//
// Without --student, the student is a new ViT of the given shape (the teacher's image size and patch size),
// initialised as mint-train-teacher does. --probe 1 trains the head only (linear probing). Every input is read
// and every option checked before the distillation starts.
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <mint/mint.hpp>

#include "cli.hpp"

namespace {

struct Args {
  std::string data, teacher = MINT_DEFAULT_MODEL, student, test = "/usr/share/datasets/fashion-mnist", out;
  int dim = 32, depth = 2, heads = 2, mlp = 64, threads = 0;
  std::int64_t epochs = 10, batch = 128;
  float lr = 0.1f, tau = 20.0f;
  bool flip = false, probe = false, reinit_head = true;
  std::uint64_t seed = 0;
  std::vector<int> classes;
};

void add_options(mint::cli::Command& c, Args& a) {
  c.existing("--data", a.data, "synthetic data set (save_synthetic_dataset, e.g. mint-invert's)")->required();
  c.existing("--teacher", a.teacher, "teacher ViT safetensors");
  c.existing("--student", a.student, "start from this student ViT instead of a new one");
  c.flag01("--reinit-head", a.reinit_head, "with --student: re-initialise its head");
  c.number("--dim", a.dim, "new student: width", 1, 4096);
  c.number("--depth", a.depth, "new student: blocks", 1, 64);
  c.number("--heads", a.heads, "new student: attention heads (divides --dim)", 1, 256);
  c.number("--mlp", a.mlp, "new student: MLP hidden width", 1, 16384);
  c.number("--epochs", a.epochs, "epochs over the synthetic set", 1, 100000);
  c.number("--batch", a.batch, "images per step", 1, 65536);
  c.number("--lr", a.lr, "SGD learning rate", 1e-9, 1e3);
  c.number("--tau", a.tau, "distillation temperature", 1e-3, 1e3);
  c.flag01("--flip", a.flip, "random horizontal flips");
  c.flag01("--probe", a.probe, "train the head only (linear probing)");
  c.number("--seed", a.seed, "seed (student init, shuffling, flips)", 0, std::numeric_limits<std::uint64_t>::max());
  c.numbers("--classes", a.classes, "also report accuracy on these classes (comma-separated)", 0, 1 << 20);
  c.existing("--test", a.test, "Fashion-MNIST idx.gz folder");
  c.text("--out", a.out, "write the student here (safetensors)");
  c.number("--threads", a.threads, "OpenMP threads (0: all)", 0, 1024);
}

int run(const mint::cli::Command& c, const Args& a) {
  mint::check(!c.given("--reinit-head") || !a.student.empty(), "--reinit-head applies to --student only");
  for (const char* o : {"--dim", "--depth", "--heads", "--mlp"})
    mint::check(!c.given(o) || a.student.empty(), o, " shapes a new student; --student ", a.student,
                " brings its own shape");
  if (!a.out.empty()) mint::cli::check_writable_file(a.out, "--out");
  if (a.threads > 0) mint::cpu::set_num_threads(a.threads);

  auto teacher = mint::ViT<>::load(a.teacher);
  mint::ViT<> student = [&] {
    if (!a.student.empty()) return mint::tasks::load_student(a.student, a.reinit_head, a.seed);
    mint::ViTConfig cfg = teacher.config();
    cfg.dim = a.dim, cfg.depth = a.depth, cfg.heads = a.heads, cfg.mlp_hidden = a.mlp;
    cfg.distilled = false;
    mint::check(a.dim % a.heads == 0, "--heads ", a.heads, " must divide --dim ", a.dim);
    return mint::tasks::make_student(cfg, a.seed);
  }();
  for (int k : a.classes)
    mint::check(k < teacher.config().classes, "--classes: ", k, " is not a class of the teacher (",
                teacher.config().classes, " classes)");
  const auto data = mint::load_synthetic_dataset(a.data);
  mint::check(!data.empty(), "--data: '", a.data, "' holds no images");
  const auto test = mint::tasks::load_fashion_mnist(a.test, false);
  mint::check(test.size() > 0, "--test: '", a.test, "' holds no test images");

  mint::tasks::DistillOptions opt;
  opt.temperature = a.tau;
  opt.sgd.lr = a.lr;
  opt.batch = a.batch;
  opt.flip = a.flip;
  opt.seed = a.seed;
  if (a.probe) opt.trainable = [](const std::string& n) { return n.rfind("head", 0) == 0; };
  std::printf("distilling %s into a student (dim %d, depth %d) on %zu synthetic images from %s: %lld epochs, batch "
              "%lld, SGD lr %g, tau %g%s\n",
              a.teacher.c_str(), student.config().dim, student.config().depth, data.size(), a.data.c_str(),
              static_cast<long long>(a.epochs), static_cast<long long>(opt.batch), static_cast<double>(opt.sgd.lr),
              static_cast<double>(opt.temperature), opt.trainable ? ", head only" : "");
  const auto steps_per_epoch = static_cast<std::int64_t>((data.size() + static_cast<std::size_t>(opt.batch) - 1) /
                                                         static_cast<std::size_t>(opt.batch));
  double epoch_loss = 0.0;
  const auto log = mint::tasks::distill_offline(teacher, student, data, a.epochs, opt,
                                                [&](std::int64_t step, const mint::tasks::DistillStepStats& s) {
                                                  epoch_loss += s.loss;
                                                  if ((step + 1) % steps_per_epoch == 0) {
                                                    std::printf("epoch %lld  KD loss %.4f\n",
                                                                static_cast<long long>((step + 1) / steps_per_epoch),
                                                                epoch_loss / static_cast<double>(steps_per_epoch));
                                                    std::fflush(stdout);
                                                    epoch_loss = 0.0;
                                                  }
                                                });
  std::printf("student test top-1: %.2f%% (%lld images, %.1f s distillation)\n",
              100.0 * mint::tasks::accuracy(student, test).value(), static_cast<long long>(test.size()), log.seconds);
  if (!a.classes.empty()) {
    const auto acc = mint::tasks::accuracy(student, test, {.classes = a.classes});
    std::string list;
    for (int k : a.classes) list += (list.empty() ? "" : ",") + std::to_string(k);
    std::printf("student top-1 on classes %s: %.2f%% (%lld images)\n", list.c_str(), 100.0 * acc.value(),
                static_cast<long long>(acc.total));
  }
  if (!a.out.empty()) {
    mint::io::write_atomically(a.out, [&](const std::string& tmp) {
      student.save(tmp, {{"mint.distilled_from", a.teacher}, {"mint.synthetic_data", a.data}});
    });
    std::printf("wrote %s\n", a.out.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-distill", "Distils the teacher into a student on a synthetic data set.");
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
