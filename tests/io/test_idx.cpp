// idx: the real Fashion-MNIST test set (gzip, as Debian ships it), raw and gzip files written here, and a
// clear mint::Error for missing, truncated and malformed files.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <zlib.h>

#include "mint/io/idx.hpp"

using mint::Shape;
using mint::testing::TempFile;
using mint::io::read_idx;

namespace {

const std::string kFashion = MINT_FASHION_MNIST_DIR;


// An idx header for unsigned bytes with the given dims, followed by `data`.
std::vector<std::uint8_t> make_idx(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data,
                                   std::uint8_t type = 0x08) {
  std::vector<std::uint8_t> out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_raw(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<std::uint8_t> iota_bytes(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 37 + 5);
  return v;
}

}  // namespace

TEST_CASE("read_idx reads the Fashion-MNIST t10k files", "[io][idx][fashion]") {
  const auto images = read_idx(kFashion + "/t10k-images-idx3-ubyte.gz");
  REQUIRE(images.dims == std::vector<std::int64_t>{10000, 28, 28});
  REQUIRE(images.data.size() == 10000u * 28 * 28);
  const auto labels = read_idx(kFashion + "/t10k-labels-idx1-ubyte.gz");
  REQUIRE(labels.dims == std::vector<std::int64_t>{10000});
  // The test split is balanced: 1000 images of each of the 10 classes.
  std::array<int, 10> counts{};
  for (auto l : labels.data) {
    REQUIRE(l < 10);
    ++counts[l];
  }
  for (int c = 0; c < 10; ++c) REQUIRE(counts[static_cast<std::size_t>(c)] == 1000);
  // The published order of the first labels (ankle boot, pullover, trouser, trouser, shirt, ...).
  REQUIRE(std::vector<std::uint8_t>(labels.data.begin(), labels.data.begin() + 10) ==
          std::vector<std::uint8_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
}

TEST_CASE("read_idx reads the Fashion-MNIST train labels", "[io][idx][fashion]") {
  const auto labels = read_idx(kFashion + "/train-labels-idx1-ubyte.gz");
  REQUIRE(labels.dims == std::vector<std::int64_t>{60000});
  std::array<int, 10> counts{};
  for (auto l : labels.data) ++counts[l];
  for (int c = 0; c < 10; ++c) REQUIRE(counts[static_cast<std::size_t>(c)] == 6000);
}

TEST_CASE("load_mnist_like gives [N,1,28,28] images in [0,1] and labels in 0..9", "[io][idx][fashion]") {
  const auto ds = mint::io::load_mnist_like(kFashion + "/t10k-images-idx3-ubyte.gz",
                                            kFashion + "/t10k-labels-idx1-ubyte.gz");
  REQUIRE(ds.images.shape() == Shape{10000, 1, 28, 28});
  REQUIRE(ds.labels.size() == 10000u);
  float lo = 1.f, hi = 0.f;
  for (std::int64_t i = 0; i < ds.images.numel(); ++i) {
    lo = std::min(lo, ds.images[i]);
    hi = std::max(hi, ds.images[i]);
  }
  REQUIRE(lo == 0.f);
  REQUIRE(hi == 1.f);
  for (int l : ds.labels) REQUIRE((l >= 0 && l <= 9));
  REQUIRE(ds.labels[0] == 9);

  const auto first = mint::io::load_mnist_like(kFashion + "/t10k-images-idx3-ubyte.gz",
                                               kFashion + "/t10k-labels-idx1-ubyte.gz", 5);
  REQUIRE(first.images.shape() == Shape{5, 1, 28, 28});
  REQUIRE(first.labels == std::vector<int>(ds.labels.begin(), ds.labels.begin() + 5));
  for (std::int64_t i = 0; i < first.images.numel(); ++i) REQUIRE(first.images[i] == ds.images[i]);
}

TEST_CASE("read_idx reads raw and gzip files alike", "[io][idx]") {
  const auto data = iota_bytes(3 * 2 * 5);
  const auto bytes = make_idx({3, 2, 5}, data);
  TempFile raw(".idx"), gz(".idx.gz");
  write_raw(raw.str(), bytes);
  write_gz(gz.str(), bytes);
  for (const auto* f : {&raw, &gz}) {
    const auto a = read_idx(f->str());
    REQUIRE(a.dims == std::vector<std::int64_t>{3, 2, 5});
    REQUIRE(a.data == data);
  }
  // Byte 255 becomes exactly 1.0.
  TempFile img(".idx"), lab(".idx");
  write_raw(img.str(), make_idx({2, 1, 2}, {0, 255, 51, 102}));
  write_raw(lab.str(), make_idx({2}, {3, 7}));
  const auto ds = mint::io::load_mnist_like(img.str(), lab.str(), 10);  // limit above N keeps all N
  REQUIRE(ds.images.shape() == Shape{2, 1, 1, 2});
  REQUIRE(ds.images[0] == 0.f);
  REQUIRE(ds.images[1] == 1.f);
  REQUIRE(ds.images[2] == 0.2f);
  REQUIRE(ds.labels == std::vector<int>{3, 7});
}

TEST_CASE("read_idx errors name the file and the problem", "[io][idx]") {
  TempFile f(".idx");
  const std::string p = f.str();

  REQUIRE_THROWS_WITH(read_idx(p + ".missing"), Catch::Contains(p + ".missing") && Catch::Contains("cannot open"));

  write_raw(p, make_idx({3, 2, 2}, iota_bytes(10)));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains(p) && Catch::Contains("truncated") &&
                                       Catch::Contains("expected 12") && Catch::Contains("got 10"));

  write_raw(p, make_idx({3, 2, 2}, iota_bytes(13)));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("expected 12") && Catch::Contains("got 13"));

  auto bad = make_idx({2}, {1, 2});
  bad[0] = 0x12;
  write_raw(p, bad);
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains(p) && Catch::Contains("bad magic") && Catch::Contains("0x12"));

  write_raw(p, make_idx({2}, {1, 2}, 0x0D));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("type code 0xd") && Catch::Contains("float"));

  write_raw(p, make_idx({}, {}));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("number of dims") && Catch::Contains("got 0"));
  write_raw(p, make_idx({1, 1, 1, 1, 1}, {7}));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("got 5"));

  write_raw(p, {0, 0, 8});
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("truncated") && Catch::Contains("got 3"));
  write_raw(p, {0, 0, 8, 3, 0, 0, 0, 1});  // three dims announced, one present
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("truncated") && Catch::Contains("expected 16 header bytes"));

  // Four dims of 2^32 - 1 multiply past 2^64.
  write_raw(p, make_idx({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {}));
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("overflow"));
}

TEST_CASE("read_idx reports a truncated gzip file", "[io][idx]") {
  TempFile full(".gz"), cut(".gz");
  write_gz(full.str(), make_idx({64, 64}, iota_bytes(64 * 64)));
  std::ifstream in(full.path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(bytes.size() / 2);
  {
    std::ofstream out(cut.path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  REQUIRE_THROWS_WITH(read_idx(cut.str()), Catch::Contains(cut.str()));
}

TEST_CASE("load_mnist_like checks that image and label counts agree", "[io][idx]") {
  TempFile img(".idx"), lab(".idx");
  write_raw(img.str(), make_idx({3, 2, 2}, iota_bytes(12)));
  write_raw(lab.str(), make_idx({2}, {0, 1}));
  REQUIRE_THROWS_WITH(mint::io::load_mnist_like(img.str(), lab.str()),
                      Catch::Contains("3 images") && Catch::Contains("2 labels") && Catch::Contains(img.str()) &&
                          Catch::Contains(lab.str()));
  // Swapped arguments: dims of the wrong form.
  write_raw(lab.str(), make_idx({3}, {0, 1, 2}));
  REQUIRE_THROWS_WITH(mint::io::load_mnist_like(lab.str(), img.str()), Catch::Contains("3 dims [N, H, W]"));
  REQUIRE_THROWS_WITH(mint::io::load_mnist_like(img.str(), lab.str(), -2), Catch::Contains("limit"));
  const auto ok = mint::io::load_mnist_like(img.str(), lab.str(), 0);
  REQUIRE(ok.images.shape() == Shape{0, 1, 2, 2});
  REQUIRE(ok.labels.empty());
}

// ---- issue 17: a gzip "bomb" and images without pixels ---------------------------------------------------------

namespace idx_hostile_test {

// The peak resident memory of this process so far, in bytes (Linux reports ru_maxrss in KiB).
std::size_t max_rss() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::size_t>(u.ru_maxrss) * 1024;
}

}  // namespace idx_hostile_test

TEST_CASE("read_idx does not inflate a gzip bomb into memory: 12 data bytes followed by 128 MiB of zeros",
          "[io][idx][hostile]") {
  TempFile gz(".idx.gz");
  {
    const auto head = make_idx({3, 2, 2}, iota_bytes(12));
    gzFile f = gzopen(gz.str().c_str(), "wb9");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size()));
    const std::vector<std::uint8_t> zeros(1 << 20, 0);
    for (int i = 0; i < 128; ++i) REQUIRE(gzwrite(f, zeros.data(), 1u << 20) == (1 << 20));
    REQUIRE(gzclose(f) == Z_OK);
  }
  REQUIRE(std::filesystem::file_size(gz.path) < (1u << 20));  // ~130 KiB on disk
  const std::size_t before = idx_hostile_test::max_rss();
  REQUIRE_THROWS_WITH(read_idx(gz.str()), Catch::Contains(gz.str()) && Catch::Contains("expected 12 data bytes") &&
                                              Catch::Contains("134217728 trailing bytes"));
  // Before, the whole 128 MiB was read into one vector first. The reader now holds the 12 announced bytes and a
  // 64 KiB scratch buffer; 32 MiB leaves room for the allocator and zlib's window. (ctest runs each test case in
  // its own process, so the high-water mark starts low.)
  CAPTURE(before, idx_hostile_test::max_rss());
  REQUIRE(idx_hostile_test::max_rss() - before < (32u << 20));
}

TEST_CASE("load_mnist_like refuses images of 0 x W or H x 0 pixels", "[io][idx][hostile]") {
  TempFile img(".idx"), lab(".idx");
  write_raw(img.str(), make_idx({2, 0, 5}, {}));
  write_raw(lab.str(), make_idx({2}, {0, 1}));
  REQUIRE_THROWS_WITH(mint::io::load_mnist_like(img.str(), lab.str()),
                      Catch::Contains(img.str()) && Catch::Contains("0 x 5 pixels"));
}
