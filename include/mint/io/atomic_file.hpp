// mint/io/atomic_file.hpp -- the one atomic writer every file mint writes goes through (datasets, shards,
// manifests, reports, PNGs, checkpoints, module files, caches). The content is written to a temporary file in the
// target's folder, flushed and fsync'ed, renamed over the target (rename is atomic within a file system), and the
// folder is fsync'ed so the rename itself survives a crash. A reader therefore sees the previous complete file or
// the new complete file, never a truncated one, whenever the writer is killed (SIGKILL included).
// AtomicFolder does the same for a run's whole output folder: the files are written into a fresh folder beside
// the target and swapped in with Linux renameat2(RENAME_EXCHANGE), so the outputs are committed together or not
// at all (a reader sees the previous complete set or the new one, never a mix).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"

namespace mint::io {

namespace detail {

inline void fsync_path(const std::string& path, bool directory, const std::string& target) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  check(fd >= 0, "write_atomically: cannot open '", path, "' to sync it for '", target, "': ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  check(rc == 0, "write_atomically: fsync of '", path, "' failed for '", target, "': ", std::strerror(err));
}

// A name in the target's folder that no other writer (thread or process) uses at the same time.
inline std::string temporary_name(const std::filesystem::path& target) {
  static std::atomic<unsigned long> counter{0};
  return (target.parent_path() / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                                  std::to_string(counter.fetch_add(1))))
      .string();
}

}  // namespace detail

// Calls write(tmp_path), which must create and fully write the file tmp_path (any writer that takes a path: stb,
// an ofstream, save_safetensors' own stream), then makes it `path` atomically. If `write` throws, or the file it
// leaves cannot be synced or renamed, the temporary file is removed, `path` is left as it was and mint::Error (or
// write's exception) propagates. requires: path's folder exists and is writable.
template <class Write>
void write_atomically(const std::string& path, Write&& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  check(!target.filename().empty(), "write_atomically: '", path, "' names no file");
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  check(fs::is_directory(folder, ec), "write_atomically: failed to write '", path,
        "': cannot open a file in its folder '", folder.string(), "', which does not exist");
  const std::string tmp = detail::temporary_name(folder / target.filename());
  try {
    std::forward<Write>(write)(tmp);
    check(fs::is_regular_file(tmp, ec), "write_atomically: the writer for '", path, "' created no file");
    detail::fsync_path(tmp, false, path);
    fs::rename(tmp, target, ec);
    check(!ec, "write_atomically: cannot rename '", tmp, "' to '", path, "': ", ec.message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  detail::fsync_path(folder.string(), true, path);
}

// The bytes of `content` as the file `path`, atomically (see above).
inline void write_file_atomically(const std::string& path, std::string_view content) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.is_open(), "write_atomically: cannot open '", tmp, "' for writing (for '", path, "')");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    check(static_cast<bool>(out), "write_atomically: failed writing '", path, "' (disk full or I/O error?)");
  });
}

// A run's output folder, committed as a whole. The constructor checks everything a commit needs before any long
// work starts (the target is absent, an empty folder or a folder an earlier AtomicFolder committed; its parent can
// be created and written) and creates a fresh staging folder beside the target; the run writes its files into
// path(name) (each through write_atomically); commit() swaps the staging folder in with one
// renameat2(RENAME_EXCHANGE) and removes the previous outputs. Without commit() (an exception, a kill) the target
// is untouched; the destructor removes the staging folder, and a later AtomicFolder for the same target removes
// staging folders that killed processes left behind. A folder that holds anything else is refused, never replaced.
class AtomicFolder {
 public:
  // The file every committed folder holds; its presence is what allows the next commit to replace the folder.
  static constexpr const char* kMarker = ".mint-output";

  // requires: `target` names a folder (not "/" or "."). Throws mint::Error naming the target when it is a file, a
  // folder with other content, or its parent cannot be created or written. `own_names`: the files the caller
  // writes; a folder without the marker that holds nothing else (an earlier version's outputs) is replaced too.
  explicit AtomicFolder(const std::string& target, const std::vector<std::string>& own_names = {})
      : target_(target) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path t = fs::path(target).lexically_normal();
    if (t.filename().empty()) t = t.parent_path();  // "out/run/" names out/run
    const std::string name = t.filename().string();
    check(!target.empty() && !name.empty() && name != "." && name != "..", "output folder '", target,
          "': name a folder to write into, e.g. out/run1");
    const fs::path parent = t.parent_path().empty() ? fs::path(".") : t.parent_path();
    fs::create_directories(parent, ec);
    check(fs::is_directory(parent), "output folder '", target, "': cannot create its parent folder '",
          parent.string(), "'", ec ? ": " + ec.message() : std::string());
    check(::access(parent.c_str(), W_OK | X_OK) == 0, "output folder '", target, "': its parent folder '",
          parent.string(), "' is not writable");
    if (fs::exists(fs::symlink_status(t))) {
      check(fs::is_directory(fs::symlink_status(t)), "output folder '", target, "' exists and is not a folder");
      bool ours = fs::exists(t / kMarker);
      if (!ours) {
        ours = true;
        for (const auto& e : fs::directory_iterator(t, ec))
          if (std::find(own_names.begin(), own_names.end(), e.path().filename().string()) == own_names.end())
            ours = false;
      }
      check(ours, "output folder '", target, "' exists and holds files that mint did not write (no ", kMarker,
            "): it is never replaced; choose another folder or empty it");
    }
    remove_stale(parent, name);
    staging_ = detail::temporary_name(parent / name);
    check(::mkdir(staging_.c_str(), 0777) == 0, "output folder '", target, "': cannot create '", staging_,
          "': ", std::strerror(errno));
    target_ = t.string();
  }
  AtomicFolder(const AtomicFolder&) = delete;
  AtomicFolder& operator=(const AtomicFolder&) = delete;
  ~AtomicFolder() {
    std::error_code ec;
    if (!committed_) std::filesystem::remove_all(staging_, ec);
  }

  // Where the run writes its file `name` before the commit.
  [[nodiscard]] std::string path(const std::string& name) const { return staging_ + "/" + name; }
  [[nodiscard]] const std::string& target() const { return target_; }

  // Makes the staging folder the target in one step (ensures: the target holds exactly what was written, plus
  // kMarker; the previous outputs are gone). requires: not committed yet.
  void commit() {
    namespace fs = std::filesystem;
    check(!committed_, "AtomicFolder: '", target_, "' is already committed");
    write_file_atomically(path(kMarker), "written by mint; the next run into this folder replaces it as a whole\n");
    detail::fsync_path(staging_, true, target_);
    std::error_code ec;
    const bool exists = fs::exists(fs::symlink_status(target_, ec));
    if (exists) {
      check(::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0,
            "AtomicFolder: cannot swap '", staging_, "' into '", target_, "': ", std::strerror(errno));
    } else {
      check(::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) == 0,
            "AtomicFolder: cannot rename '", staging_, "' to '", target_, "': ", std::strerror(errno));
    }
    committed_ = true;
    const fs::path parent = fs::path(target_).parent_path().empty() ? fs::path(".") : fs::path(target_).parent_path();
    detail::fsync_path(parent.string(), true, target_);
    if (exists) fs::remove_all(staging_, ec);  // now the previous outputs
  }

 private:
  // Staging folders ".<name>.tmp.<pid>.<n>" of processes that no longer run (killed before commit or cleanup).
  static void remove_stale(const std::filesystem::path& parent, const std::string& name) {
    namespace fs = std::filesystem;
    const std::string prefix = "." + name + ".tmp.";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      const std::string f = e.path().filename().string();
      if (f.rfind(prefix, 0) != 0 || !e.is_directory(ec)) continue;
      const std::string rest = f.substr(prefix.size());
      const auto dot = rest.find('.');
      if (dot == std::string::npos || dot == 0 || dot > 9 || rest.find_first_not_of("0123456789.") != std::string::npos)
        continue;
      const long pid = std::stol(rest.substr(0, dot));
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
  }

  std::string target_, staging_;
  bool committed_ = false;
};

}  // namespace mint::io
