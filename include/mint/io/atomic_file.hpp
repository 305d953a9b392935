// mint/io/atomic_file.hpp -- the one atomic writer every file mint writes goes through (datasets, shards,
// manifests, reports, PNGs, checkpoints, module files, caches). The content is written to a temporary file in the
// target's folder, flushed and fsync'ed, renamed over the target (rename is atomic within a file system), and the
// folder is fsync'ed so the rename itself survives a crash. A reader therefore sees the previous complete file or
// the new complete file, never a truncated one, whenever the writer is killed (SIGKILL included).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

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

}  // namespace mint::io
