// GradViT's resumable attack (AttackCheckpoint, AttackState, save_attack_state / load_attack_state): a run
// stopped after iteration t and resumed from its saved state returns the same bytes as the run that was never
// stopped (images, consensus, every loss), in memory and through the file; a state that does not fit the run,
// or a file that is not one, is refused naming what is wrong.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cstring>

#include "mint/tasks/gradvit.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;

namespace gradvit_resume_test {

bool same_bytes(const Tensor<>& a, const Tensor<>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

struct Setup {
  Tensor<> x = Tensor<>::empty(Shape{2, 1, 28, 28});
  std::vector<int> y;
  gv::AttackOptions opt;
  Setup() {
    const auto& data = test::test_images();
    std::copy(data.images.data(), data.images.data() + x.numel(), x.data());
    y = {data.labels[0], data.labels[1]};
    const float lo = (0.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd,
                hi = (1.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd;
    // two seeds with registration every 4 iterations (consensus recomputed at t = 1, 5, 9): a resume after t = 5
    // or 10 must carry x_C over, since the next iteration pulls without recomputing it
    opt = {.iterations = 12, .tv = 1e-3f, .seeds = 2, .registration = 0.5f, .register_every = 4, .seed = 3,
           .pixel_lo = lo, .pixel_hi = hi};
  }
  // the teacher's gradient of the two images, matched by the total cosine
  [[nodiscard]] gv::GradientMatch match() const {
    return {gv::parameter_gradients(test::teacher(), x, y), y, {.distance = gv::MatchDistance::Cosine}};
  }
};

}  // namespace gradvit_resume_test

using gradvit_resume_test::same_bytes;

TEST_CASE("GradViT attack: a resumed run gives the uninterrupted run's bytes", "[gradvit][attack][resume]") {
  auto& model = test::teacher();
  const gradvit_resume_test::Setup su;
  const gv::GradientMatch match = su.match();
  std::vector<gv::AttackState> saved;
  const auto straight = gv::attack(model, match, su.x.shape(), su.opt, {},
                                   {.every = 5, .save = [&](const gv::AttackState& s) { saved.push_back(s); }});
  REQUIRE(saved.size() == 2);  // after t = 5 and 10 (none after the last iteration)
  REQUIRE((saved[0].t == 5 && saved[1].t == 10));
  REQUIRE(saved[0].consensus.data() != nullptr);

  // the checkpoint callback does not change the run
  const auto plain = gv::attack(model, match, su.x.shape(), su.opt);
  REQUIRE(same_bytes(plain.images, straight.images));

  const auto check_resumed = [&](const gv::AttackResult& r) {
    REQUIRE(same_bytes(r.images, straight.images));
    REQUIRE(same_bytes(r.consensus, straight.consensus));
    REQUIRE(r.loss == straight.loss);  // every iteration's loss, the resumed ones from the state
    REQUIRE(r.distance == straight.distance);
    REQUIRE(r.best_seed == straight.best_seed);
  };
  SECTION("from memory, after t = 5") {
    check_resumed(gv::attack(model, match, su.x.shape(), su.opt, {}, {.resume = &saved[0]}));
  }
  SECTION("through the file, after t = 10, saving again on the way") {
    testing::TempDir dir;
    const std::string path = dir.str() + "/state.safetensors";
    gv::save_attack_state(path, saved[1], R"({"batch":2,"seed":3})", {{"seconds", "1.5"}});
    std::map<std::string, std::string> extra;
    const auto loaded = gv::load_attack_state(path, R"({"batch":2,"seed":3})", &extra);
    REQUIRE(extra.at("seconds") == "1.5");
    REQUIRE(loaded.loss == saved[1].loss);  // doubles survive the JSON text exactly
    int later = 0;
    check_resumed(gv::attack(model, match, su.x.shape(), su.opt, {},
                             {.every = 1, .save = [&](const gv::AttackState&) { ++later; }, .resume = &loaded}));
    REQUIRE(later == 1);  // t = 11 (t = 12 is the last)
  }
}

TEST_CASE("GradViT attack: states that do not fit the run are refused", "[gradvit][attack][resume]") {
  auto& model = test::teacher();
  const gradvit_resume_test::Setup su;
  const gv::GradientMatch match = su.match();
  std::vector<gv::AttackState> saved;
  gv::AttackOptions opt = su.opt;
  opt.iterations = 6;
  (void)gv::attack(model, match, su.x.shape(), opt, {},
                   {.every = 5, .save = [&](const gv::AttackState& s) { saved.push_back(s); }});
  REQUIRE(saved.size() == 1);
  const auto refused = [&](gv::AttackState st, const gv::AttackOptions& o, const std::string& text) {
    REQUIRE_THROWS_WITH(gv::attack(model, match, su.x.shape(), o, {}, {.resume = &st}), Catch::Contains(text));
  };
  gv::AttackOptions shorter = opt;
  shorter.iterations = 5;
  refused(saved[0], shorter, "is after iteration 5, not in [1, 5)");
  gv::AttackOptions one_seed = opt;
  one_seed.seeds = 1;
  one_seed.registration = 0.0f;
  refused(saved[0], one_seed, "not one per seed (1)");
  auto st = saved[0];
  st.loss.pop_back();
  refused(st, opt, "has 4 losses for 5 iterations");
  st = saved[0];
  st.x[1] = Tensor<>::zeros(Shape{2, 1, 14, 28});
  refused(st, opt, "(seed 1)");
  st = saved[0];
  st.x[0] = st.x[0].clone();
  st.x[0][7] = 50.0f;  // the clip range is about [-0.8, 2.0]
  refused(st, opt, "pixel [7] = 50 is outside");
  st = saved[0];
  st.v[0] = st.v[0].clone();
  st.v[0][3] = -1.0f;
  refused(st, opt, "second moment [3] = -1 is not a finite value >= 0");
  st = saved[0];
  st.consensus = Tensor<>{};  // t = 6 pulls towards the x_C computed at t = 5
  refused(st, opt, "consensus");
  REQUIRE_THROWS_WITH(gv::attack(model, match, su.x.shape(), opt, {}, {.every = 2}),
                      Catch::Contains("needs every >= 0 and a save function"));

  testing::TempDir dir;
  const std::string path = dir.str() + "/state.safetensors";
  gv::save_attack_state(path, saved[0], R"({"batch":2,"lr":"0.1"})");
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, R"({"batch":2,"lr":"0.05"})"),
                      Catch::Contains("first difference: lr: saved \"0.1\", now \"0.05\""));
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, "plain text"), Catch::Contains("not JSON objects"));
  io::save_safetensors(path, {{"x.0", saved[0].x[0]}}, {{"format", "something else"}});
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, "{}"), Catch::Contains("is not a GradViT attack state (format"));
  io::save_safetensors(path, {{"x.0", saved[0].x[0]}},
                       {{"format", gv::kAttackStateFormat}, {"fingerprint", "{}"}, {"t", "1"}, {"seeds", "1"},
                        {"loss", "[0.5]"}});
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, "{}"), Catch::Contains("m.0"));
  io::save_safetensors(path, {{"x.0", saved[0].x[0]}},
                       {{"format", gv::kAttackStateFormat}, {"fingerprint", "{}"}, {"t", "2"}, {"seeds", "1"},
                        {"loss", "[0.5]"}});
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, "{}"), Catch::Contains("a JSON array of 2 numbers"));
  io::save_safetensors(path, {{"x.0", saved[0].x[0]}},
                       {{"format", gv::kAttackStateFormat}, {"fingerprint", "{}"}, {"t", "-3"}, {"seeds", "1"},
                        {"loss", "[]"}});
  REQUIRE_THROWS_WITH(gv::load_attack_state(path, "{}"), Catch::Contains("metadata t = '-3' is not an integer"));
}
