// mint/core/error.hpp -- the one exception type mint throws, and the checks that build its messages.
// Every message names what was being done and the offending values (shapes, keys, offsets), so a user
// can fix the input without a debugger.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mint {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
[[nodiscard]] std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// Throws mint::Error with the streamed message parts when `cond` is false.
template <class... Args>
void check(bool cond, Args&&... msg) {
  if (!cond) throw Error(detail::concat(std::forward<Args>(msg)...));
}

}  // namespace mint
