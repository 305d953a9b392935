// fuzz/fuzz_input.hpp -- what the libFuzzer targets (fuzz/fuzz_<name>.cpp) share: the input as a file, for the
// loaders that take a path, and the one outcome a malformed input may have.
//
// The file is an in-memory file (memfd_create) reached through /proc/self/fd/N: the loaders open it like any
// path, and nothing touches the disk, so a run does tens of thousands of inputs per second.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mint/core/error.hpp"

namespace mint::fuzz {

// requires: called from one thread. ensures: the returned path reads exactly data[0, size).
inline const std::string& as_file(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("mint_fuzz_input", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) std::abort();
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<std::size_t>(n);
  }
  return path;
}

// Runs f(); a mint::Error (a clear refusal) is the expected outcome of a bad input. Anything else escaping --
// std::bad_alloc, a std::stoi exception, a JSON library exception -- reaches libFuzzer as a crash: a finding.
template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const mint::Error&) {
  }
}

}  // namespace mint::fuzz
