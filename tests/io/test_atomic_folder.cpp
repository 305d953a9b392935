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

using namespace atomic_folder_test;

TEST_CASE("AtomicFolder commits a new folder with its files and the marker, nothing beside it") {
  const auto dir = scratch("new");
  write_set(dir / "run", "1");
  CHECK(slurp(dir / "run" / "a.txt") == "a-1");
  CHECK(slurp(dir / "run" / "b.txt") == "b-1");
  CHECK(fs::exists(dir / "run" / mint::io::AtomicFolder::kMarker));
  CHECK(listing(dir) == "run ");  // no staging folder left
  {
    mint::io::AtomicFolder out((dir / "slash").string() + "/");  // a trailing '/' names the same folder
    mint::io::write_file_atomically(out.path("a.txt"), "s");
    out.commit();
  }
  CHECK(slurp(dir / "slash" / "a.txt") == "s");
  CHECK(listing(dir) == "run slash ");
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder replaces a folder it committed as a whole") {
  const auto dir = scratch("replace");
  {
    mint::io::AtomicFolder out((dir / "run").string());
    mint::io::write_file_atomically(out.path("old_only.txt"), "x");
    out.commit();
  }
  write_set(dir / "run", "2");
  CHECK_FALSE(fs::exists(dir / "run" / "old_only.txt"));  // the previous set is gone, not merged
  CHECK(slurp(dir / "run" / "a.txt") == "a-2");
  CHECK(listing(dir) == "run ");  // the previous outputs were removed after the swap
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder without commit leaves the previous outputs untouched and removes its staging folder") {
  const auto dir = scratch("abort");
  write_set(dir / "run", "1");
  try {
    mint::io::AtomicFolder out((dir / "run").string());
    mint::io::write_file_atomically(out.path("a.txt"), "a-2");
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(slurp(dir / "run" / "a.txt") == "a-1");
  CHECK(slurp(dir / "run" / "b.txt") == "b-1");
  CHECK(listing(dir) == "run ");
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder refuses a folder with files mint did not write, and a file, before anything is written") {
  const auto dir = scratch("refuse");
  fs::create_directories(dir / "home");
  std::ofstream(dir / "home" / "thesis.tex") << "precious";
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "home").string()),
                    Catch::Contains("holds files that mint did not write"));
  CHECK(slurp(dir / "home" / "thesis.tex") == "precious");
  std::ofstream(dir / "plain") << "x";
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "plain").string()),
                    Catch::Contains("is not a folder"));
  CHECK(listing(dir) == "home plain ");  // no staging folder was created for either
  fs::create_directories(dir / "empty");
  CHECK_NOTHROW(write_set(dir / "empty", "1"));  // an empty folder is fine
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder replaces an unmarked folder that holds only the caller's own file names") {
  const auto dir = scratch("legacy");
  fs::create_directories(dir / "old");
  std::ofstream(dir / "old" / "report.json") << "{}";
  {
    mint::io::AtomicFolder out((dir / "old").string(), {"report.json", "images.png"});
    mint::io::write_file_atomically(out.path("report.json"), "new");
    out.commit();
  }
  CHECK(slurp(dir / "old" / "report.json") == "new");
  std::ofstream(dir / "old" / "notes.txt") << "mine";
  fs::remove(dir / "old" / mint::io::AtomicFolder::kMarker);
  CHECK_THROWS_WITH(mint::io::AtomicFolder((dir / "old").string(), {"report.json", "images.png"}),
                    Catch::Contains("holds files that mint did not write"));
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder removes the staging folders of processes that no longer run, not of live ones") {
  const auto dir = scratch("stale");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);  // a pid that ran and is gone
  const fs::path dead = dir / (".run.tmp." + std::to_string(child) + ".0");
  const fs::path live = dir / (".run.tmp." + std::to_string(::getppid()) + ".0");
  const fs::path other = dir / (".other.tmp." + std::to_string(child) + ".0");
  for (const auto& p : {dead, live, other}) fs::create_directories(p);
  write_set(dir / "run", "1");
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live));   // its owner may still commit
  CHECK(fs::exists(other));  // another target's
  fs::remove_all(dir);
}
