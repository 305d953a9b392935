// mint/tasks/synthesis.hpp and the sharded-folder reader of mint/inversion/sparse_image.hpp, with a stand-in for
// the inverter (images drawn from the batch seed), so each case runs in milliseconds. The end-to-end checks with
// the real engine, MPI and signals are tests/scale/synthesize_cli.sh.
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "mint/core/rng.hpp"
#include "mint/tasks/synthesis.hpp"
#include "test_util.hpp"

// Helpers and test cases in one namespace of their own: the unity build compiles 8 test files as one.
namespace mint_synthesis_test {

namespace fs = std::filesystem;
using mint::tasks::ShardManifest;
using mint::tasks::SynthesisPlan;

using mint::testing::TempDir;

// Two images per trajectory, 1 x 4 x 4 pixels from Philox(seed), 4 patches, the first or the last two kept.
mint::tasks::BatchOutput fake_invert(const std::vector<int>& labels, std::uint64_t seed, const std::function<void()>&) {
  mint::tasks::BatchOutput out;
  for (std::size_t i = 0; i < labels.size(); ++i)
    for (int k = 0; k < 2; ++k) {
      mint::SparseImage s{mint::Tensor<>::empty(mint::Shape{1, 4, 4}), mint::Tensor<>::zeros(mint::Shape{4}), labels[i],
                          k + 1, 0.25f * static_cast<float>(k + 1)};
      mint::fill_normal(s.pixels, seed, static_cast<std::uint32_t>(2 * i + static_cast<std::size_t>(k)), 0.0f, 1.0f);
      s.mask[2 * k] = s.mask[2 * k + 1] = 1.0f;
      out.images.push_back(std::move(s));
    }
  out.gemm_flops = 1000.0 * static_cast<double>(labels.size());
  return out;
}

ShardManifest job(int slice = 0, int slices = 1, int iterations = 8) {
  ShardManifest m;
  m.options = {{"method", "fake"}, {"iterations", iterations}, {"seed", 3}};
  m.plan = SynthesisPlan::for_images(14, 2, 2, 3);  // 7 trajectories, 4 batches (2, 2, 2, 1)
  m.dense_flops_per_image = 2000.0;
  m.slice_index = slice, m.slice_count = slices;
  return m;
}

// Runs every batch still to do in dir, recording each in the manifest.
void run_all(const std::string& dir, ShardManifest& m) {
  for (auto j : m.todo()) m.shards[j] = mint::tasks::run_batch(dir, m, 3, j, fake_invert);
  m.write(dir);
}

using mint::testing::read_all;

void flip_byte(const fs::path& p, std::size_t at) {
  std::string b = read_all(p);
  b[at] = static_cast<char>(b[at] ^ 0x10);
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
}


TEST_CASE("batch_seed is a pure function of (seed, batch), distinct across batches and seeds", "[synthesis]") {
  std::set<std::uint64_t> seen;
  for (std::int64_t j = 0; j < 1000; ++j) {
    CHECK(mint::tasks::batch_seed(5, j) == mint::tasks::batch_seed(5, j));
    seen.insert(mint::tasks::batch_seed(5, j));
    seen.insert(mint::tasks::batch_seed(6, j));
  }
  CHECK(seen.size() == 2000);
}

TEST_CASE("the plan: labels cycle over the classes, batches cover the trajectories once, slices partition",
          "[synthesis]") {
  const auto p = SynthesisPlan::for_images(50, 4, 3, 10);  // 13 trajectories (52 images), 5 batches
  REQUIRE(p.trajectories == 13);
  REQUIRE(p.batches() == 5);
  CHECK(p.images() == 52);
  std::vector<int> all;
  for (std::int64_t j = 0; j < p.batches(); ++j) {
    const auto l = p.labels(j);
    CHECK(l.size() == (j < 4 ? 3u : 1u));
    all.insert(all.end(), l.begin(), l.end());
  }
  REQUIRE(all.size() == 13);
  for (std::size_t g = 0; g < all.size(); ++g) CHECK(all[g] == static_cast<int>(g % 10));
  std::vector<int> covered(5, 0);
  for (int i = 0; i < 3; ++i)
    for (auto j : p.slice(i, 3)) covered[static_cast<std::size_t>(j)] += 1;
  CHECK(covered == std::vector<int>(5, 1));
  const auto pc = SynthesisPlan::for_per_class(5, 4, 3, 10);  // 2 trajectories of each class
  CHECK(pc.trajectories == 20);
  REQUIRE_THROWS_WITH(SynthesisPlan::for_images(0, 4, 3, 10), Catch::Contains("--images"));
  REQUIRE_THROWS_WITH(p.slice(3, 3), Catch::Contains("--shard 3/3"));
  REQUIRE_THROWS_WITH(p.labels(5), Catch::Contains("batch 5"));
}

TEST_CASE("a sharded folder reads back in batch order and a corrupted shard is refused by its hash", "[synthesis]") {
  TempDir dir;
  auto m = job();
  run_all(dir.str(), m);
  REQUIRE(m.complete());
  const auto back = ShardManifest::read((dir.path / "manifest.json").string());
  CHECK(back.to_json() == m.to_json());

  const auto images = mint::load_synthetic_dataset(dir.str());
  REQUIRE(images.size() == 14);
  std::size_t at = 0;
  for (std::int64_t j = 0; j < m.plan.batches(); ++j) {
    const auto want = fake_invert(m.plan.labels(j), mint::tasks::batch_seed(3, j), [] {}).images;
    for (const auto& w : want) {
      const auto& got = images[at++];
      CHECK(got.label == w.label);
      CHECK(got.iteration == w.iteration);
      CHECK(got.confidence == w.confidence);
      MINT_REQUIRE_CLOSE(mint::testing::compare(got.pixels, w.pixels, {0.0, 0.0}, "pixels"));  // stored as F32: exact
      MINT_REQUIRE_CLOSE(mint::testing::compare(got.mask, w.mask, {0.0, 0.0}, "mask"));
    }
  }
  const mint::SyntheticShardReader reader(dir.str());
  CHECK(reader.images() == 14);
  flip_byte(dir.path / mint::shard_file_name(2), 200);
  CHECK(reader.read(1).size() == 4);
  REQUIRE_THROWS_WITH(reader.read(2), Catch::Contains("shard-000002.safetensors") && Catch::Contains("SHA-256"));
  REQUIRE_THROWS_WITH(mint::load_synthetic_dataset(dir.str()), Catch::Contains("corrupted or truncated"));

  m.shards.erase(3);  // a manifest that misses a batch is not a data set yet
  m.write(dir.str());
  REQUIRE_THROWS_WITH(mint::load_synthetic_dataset(dir.str()), Catch::Contains("not complete"));
}

TEST_CASE("resume keeps verified shards, redoes bad or missing ones and refuses other options", "[synthesis]") {
  TempDir dir, ref;
  auto r = job();
  run_all(ref.str(), r);
  auto m = job();
  REQUIRE_THROWS_WITH(mint::tasks::prepare_resume(dir.str(), m, true), Catch::Contains("nothing to resume"));
  CHECK_FALSE(mint::tasks::prepare_resume(dir.str(), m, false).had_manifest);
  m.shards[0] = mint::tasks::run_batch(dir.str(), m, 3, 0, fake_invert);
  m.shards[1] = mint::tasks::run_batch(dir.str(), m, 3, 1, fake_invert);
  m.shards[2] = mint::tasks::run_batch(dir.str(), m, 3, 2, fake_invert);
  m.write(dir.str());                                        // batches 0-2 recorded, 3 not yet: a killed run
  fs::resize_file(dir.path / mint::shard_file_name(0), 50);  // truncated
  fs::remove(dir.path / mint::shard_file_name(2));           // lost

  auto again = job();
  const auto rep = mint::tasks::prepare_resume(dir.str(), again, false);
  CHECK(rep.had_manifest);
  REQUIRE(rep.redone.size() == 2);
  CHECK_THAT(rep.redone[0], Catch::Contains("shard-000000") && Catch::Contains("will be redone"));
  CHECK_THAT(rep.redone[1], Catch::Contains("missing"));
  CHECK(again.todo() == std::vector<std::int64_t>{0, 2, 3});
  run_all(dir.str(), again);
  CHECK(read_all(dir.path / "manifest.json") == read_all(ref.path / "manifest.json"));
  for (std::int64_t j = 0; j < 4; ++j)
    CHECK(read_all(dir.path / mint::shard_file_name(j)) == read_all(ref.path / mint::shard_file_name(j)));

  auto other = job(0, 1, 9);
  REQUIRE_THROWS_WITH(mint::tasks::prepare_resume(dir.str(), other, false), Catch::Contains("--iterations (8 vs 9)"));
  auto sliced = job(1, 2);  // another manifest name: a fresh slice in the same folder is allowed
  CHECK_FALSE(mint::tasks::prepare_resume(dir.str(), sliced, false).had_manifest);
}

TEST_CASE("merge: slices become the single run's manifest, gaps, conflicts and bad shards are refused", "[synthesis]") {
  TempDir a, b, out, ref;
  auto r = job();
  run_all(ref.str(), r);
  auto s0 = job(0, 2), s1 = job(1, 2);
  run_all(a.str(), s0);
  REQUIRE_THROWS_WITH(mint::tasks::merge_manifests(out.str(), {a.str()}),
                      Catch::Contains("2 of 4 batches are in no manifest (1, 3"));
  run_all(b.str(), s1);
  const auto merged = mint::tasks::merge_manifests(out.str(), {a.str(), b.str()});
  CHECK(merged.complete());
  CHECK(read_all(out.path / "manifest.json") == read_all(ref.path / "manifest.json"));
  for (std::int64_t j = 0; j < 4; ++j)
    CHECK(read_all(out.path / mint::shard_file_name(j)) == read_all(ref.path / mint::shard_file_name(j)));

  TempDir c, out2;
  auto s1_other = job(1, 2, 9);
  run_all(c.str(), s1_other);
  REQUIRE_THROWS_WITH(mint::tasks::merge_manifests(out2.str(), {a.str(), c.str()}), Catch::Contains("--iterations"));
  flip_byte(b.path / mint::shard_file_name(3), 120);
  REQUIRE_THROWS_WITH(mint::tasks::merge_manifests(out2.str(), {a.str(), b.str()}),
                      Catch::Contains("shard-000003") && Catch::Contains("corrupted or truncated"));
}

// Found by fuzz/fuzz_manifest.cpp: a wrongly typed "format" escaped as a JSON library exception (a crash in a CLI
// that catches mint::Error); every malformed manifest must be a mint::Error naming the file.
TEST_CASE("a manifest with wrongly typed or inconsistent fields is a clear error", "[synthesis][hostile]") {
  TempDir dir;
  auto refused = [&](const std::string& text, const std::string& why) {
    const std::string path = dir.str() + "/manifest.json";
    std::ofstream(path) << text;
    REQUIRE_THROWS_WITH(mint::tasks::ShardManifest::read(path),
                        Catch::Matchers::Contains("manifest '" + path + "'") && Catch::Matchers::Contains(why));
  };
  refused(R"({"format": {}})", "type must be string");
  refused(R"({"format": "mint.synthetic_shards", "version": "1"})", "type must be number");
  refused(R"({"format": "mint.synthetic_shards", "version": 1, "options": {}, "dense_gemm_flops_per_image": 1,
              "plan": {"trajectories": 1, "batch": 1, "classes": 1, "images_per_trajectory": 1},
              "slice": {"index": 2, "count": 2}, "shards": []})",
          "invalid slice 2 of 2");
}

}  // namespace mint_synthesis_test
