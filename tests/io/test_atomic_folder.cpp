// io/atomic_file.hpp, AtomicFolder: a run's outputs are committed together or not at all; a folder mint did not
// write is never replaced; staging folders of killed runs are cleaned up.
#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <mint/io/atomic_file.hpp>

namespace atomic_folder_test {

namespace fs = std::filesystem;

// A fresh empty folder for one test case.
fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("mint_atomic_folder_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The names in `dir` (sorted, one string).
std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

void write_set(const fs::path& target, const std::string& tag) {
  mint::io::AtomicFolder out(target.string());
  mint::io::write_file_atomically(out.path("a.txt"), "a-" + tag);
  mint::io::write_file_atomically(out.path("b.txt"), "b-" + tag);
  out.commit();
}

}  // namespace atomic_folder_test

namespace aft = atomic_folder_test;

TEST_CASE("AtomicFolder commits a new folder with its files and the marker, nothing beside it") {
  const auto dir = aft::scratch("new");
  aft::write_set(dir / "run", "1");
  CHECK(aft::slurp(dir / "run" / "a.txt") == "a-1");
  CHECK(aft::slurp(dir / "run" / "b.txt") == "b-1");
  CHECK(std::filesystem::exists(dir / "run" / mint::io::AtomicFolder::kMarker));
  CHECK(aft::listing(dir) == "run ");  // no staging folder left
  {
    mint::io::AtomicFolder out((dir / "slash").string() + "/");  // a trailing '/' names the same folder
    mint::io::write_file_atomically(out.path("a.txt"), "s");
    out.commit();
  }
  CHECK(aft::slurp(dir / "slash" / "a.txt") == "s");
  CHECK(aft::listing(dir) == "run slash ");
  std::filesystem::remove_all(dir);
}

TEST_CASE("AtomicFolder replaces a folder it committed as a whole") {
  const auto dir = aft::scratch("replace");
  {
    mint::io::AtomicFolder out((dir / "run").string());
    mint::io::write_file_atomically(out.path("old_only.txt"), "x");
    out.commit();
  }
  aft::write_set(dir / "run", "2");
  CHECK_FALSE(std::filesystem::exists(dir / "run" / "old_only.txt"));  // the previous set is gone, not merged
  CHECK(aft::slurp(dir / "run" / "a.txt") == "a-2");
  CHECK(aft::listing(dir) == "run ");  // the previous outputs were removed after the swap
  std::filesystem::remove_all(dir);
}

TEST_CASE("AtomicFolder without commit leaves the previous outputs untouched and removes its staging folder") {
  const auto dir = aft::scratch("abort");
  aft::write_set(dir / "run", "1");
  try {
    mint::io::AtomicFolder out((dir / "run").string());
    mint::io::write_file_atomically(out.path("a.txt"), "a-2");
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(aft::slurp(dir / "run" / "a.txt") == "a-1");
  CHECK(aft::slurp(dir / "run" / "b.txt") == "b-1");
  CHECK(aft::listing(dir) == "run ");
  std::filesystem::remove_all(dir);
}

TEST_CASE("AtomicFolder refuses a folder with files mint did not write, and a file, before anything is written") {
  const auto dir = aft::scratch("refuse");
  std::filesystem::create_directories(dir / "home");
  std::ofstream(dir / "home" / "thesis.tex") << "precious";
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "home").string()),
                    Catch::Contains("holds files that mint did not write"));
  CHECK(aft::slurp(dir / "home" / "thesis.tex") == "precious");
  std::ofstream(dir / "plain") << "x";
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "plain").string()),
                    Catch::Contains("is not a folder"));
  CHECK(aft::listing(dir) == "home plain ");  // no staging folder was created for either
  std::filesystem::create_directories(dir / "empty");
  CHECK_NOTHROW(aft::write_set(dir / "empty", "1"));  // an empty folder is fine
  std::filesystem::remove_all(dir);
}

TEST_CASE("AtomicFolder replaces an unmarked folder that holds only the caller's own file names") {
  const auto dir = aft::scratch("legacy");
  std::filesystem::create_directories(dir / "old");
  std::ofstream(dir / "old" / "report.json") << "{}";
  {
    mint::io::AtomicFolder out((dir / "old").string(), {"report.json", "images.png"});
    mint::io::write_file_atomically(out.path("report.json"), "new");
    out.commit();
  }
  CHECK(aft::slurp(dir / "old" / "report.json") == "new");
  std::ofstream(dir / "old" / "notes.txt") << "mine";
  std::filesystem::remove(dir / "old" / mint::io::AtomicFolder::kMarker);
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "old").string(), {"report.json", "images.png"}),
                    Catch::Contains("holds files that mint did not write"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("AtomicFolder removes the staging folders of processes that no longer run, not of live ones") {
  const auto dir = aft::scratch("stale");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);  // a pid that ran and is gone
  const std::filesystem::path dead = dir / (".run.tmp." + std::to_string(child) + ".0");
  const std::filesystem::path live = dir / (".run.tmp." + std::to_string(::getppid()) + ".0");
  const std::filesystem::path other = dir / (".other.tmp." + std::to_string(child) + ".0");
  for (const auto& p : {dead, live, other}) std::filesystem::create_directories(p);
  aft::write_set(dir / "run", "1");
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(live));   // its owner may still commit
  CHECK(std::filesystem::exists(other));  // another target's
  std::filesystem::remove_all(dir);
}
