// examples/cli.hpp -- the one command line and main every mint CLI shares, on CLI11 (Debian's libcli11-dev).
//
//   mint::cli::Command cmd("mint-foo", "what it does");
//   cmd.number("--batch", a.batch, "images per batch", 1, 4096);      // one line per option
//   cmd.choice("--selector", a.selector, "patch ranking", mint::selectors().names());
//   return mint::cli::main(cmd, argc, argv, [&] { return run(a); });
//
// main() parses argv: --help prints the generated help (exit 0); an unknown option, a value that is not a number
// of the option's type, a number outside its range (NaN and infinities included) or an unknown name is an error
// naming the option, printed to stderr with exit code 2. Any exception from the run is printed the same way with
// exit code 2. A CLI whose run polls stop_flag() calls stop_gracefully(): SIGINT / SIGTERM then set the flag
// instead of ending the program (a second one ends it as usual), and the run returns interrupted_exit_code().
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <mint/core/error.hpp>
#include <mint/io/atomic_file.hpp>
#include <mint/io/image.hpp>

namespace mint::cli {

namespace detail {
inline std::atomic<bool> g_stop{false};
inline volatile sig_atomic_t g_signal = 0;
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag is set from a signal handler");

inline void on_stop_signal(int sig) {
  g_signal = sig;
  g_stop.store(true, std::memory_order_relaxed);
}

// s quoted for a POSIX shell, unchanged when it needs no quoting.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The whole of `text` as a T (std::from_chars: no sign for unsigned types, no trailing characters, no overflow),
// finite and within [lo, hi]; otherwise the reason, else "".
template <class T>
std::string check_number(const std::string& text, T lo, T hi) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  const char* what = std::is_integral_v<T> ? "a whole number" : "a number";
  std::ostringstream range;
  range << "[" << +lo << ", " << +hi << "]";
  if (ec == std::errc::result_out_of_range) return "'" + text + "' is outside " + range.str();
  if (ec != std::errc() || p != end)
    return "expects " + std::string(what) + " in " + range.str() + ", got '" + text + "'";
  if constexpr (std::is_floating_point_v<T>)
    if (!std::isfinite(v)) return "expects a finite number in " + range.str() + ", got '" + text + "'";
  if (v < lo || v > hi) return "'" + text + "' is outside " + range.str();
  return "";
}
}  // namespace detail

// Set once SIGINT or SIGTERM arrived (after main() installed the handlers for a Command that stops gracefully).
inline const std::atomic<bool>* stop_flag() { return &detail::g_stop; }
// 128 + the signal that stopped the run (130 for SIGINT, 143 for SIGTERM), as a shell reports a killed command.
inline int interrupted_exit_code() { return 128 + static_cast<int>(detail::g_signal); }

// One CLI's options. Every add-function is one line per option; values given twice take the last one.
class Command {
 public:
  Command(std::string program, const std::string& description)
      : program_(std::move(program)), app_(description, program_) {
    app_.option_defaults()->always_capture_default();
    app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app_.get_formatter()->column_width(34);
  }
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;

  [[nodiscard]] const std::string& program() const { return program_; }
  [[nodiscard]] CLI::App& app() { return app_; }

  // A number (integer or floating point) in [lo, hi].
  template <class T, class L, class H>
  CLI::Option* number(const std::string& name, T& value, const std::string& help, L lo, H hi) {
    return app_.add_option(name, value, help)->check(in_range<T>(lo, hi));
  }
  // A comma-separated list of numbers, each in [lo, hi] (--prune 50,100,200).
  template <class T, class L, class H>
  CLI::Option* numbers(const std::string& name, std::vector<T>& value, const std::string& help, L lo, H hi) {
    return app_.add_option(name, value, help)
        ->check(in_range<T>(lo, hi))
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  // 0 or 1.
  CLI::Option* flag01(const std::string& name, bool& value, const std::string& help) {
    return app_.add_option(name, value, help)->check(CLI::IsMember({"0", "1"}));
  }
  // Free text (a name, a tag).
  CLI::Option* text(const std::string& name, std::string& value, const std::string& help) {
    return app_.add_option(name, value, help);
  }
  // A file or folder that must exist.
  CLI::Option* existing(const std::string& name, std::string& value, const std::string& help) {
    return app_.add_option(name, value, help)->check(CLI::ExistingPath);
  }
  // One of `names` (a policy table's names(), e.g. mint::selectors().names()).
  CLI::Option* choice(const std::string& name, std::string& value, const std::string& help,
                      const std::vector<std::string>& names) {
    return app_.add_option(name, value, help)->check(CLI::IsMember(names));
  }

  // The run polls stop_flag() (e.g. through InversionOptions::stop); without this, signals act as usual.
  void stop_gracefully() { graceful_ = true; }

  // Whether the user gave option `name` (--v) on the command line.
  [[nodiscard]] bool given(const std::string& name) const { return app_.count(name) > 0; }
  // The command line as typed, shell-quoted (for reports and recipes).
  [[nodiscard]] const std::string& command_line() const { return command_line_; }

 private:
  template <class T, class L, class H>
  static CLI::Validator in_range(L lo, H hi) {
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    std::ostringstream desc;
    desc << "in [" << +l << ", " << +h << "]";
    return CLI::Validator([l, h](std::string& s) { return detail::check_number<T>(s, l, h); }, desc.str());
  }

  friend int main(Command& cmd, int argc, char** argv, const std::function<int()>& run);
  std::string program_, command_line_;
  CLI::App app_;
  bool graceful_ = false;
};

// Parses argv with `cmd`, installs the SIGINT/SIGTERM handlers if it stops gracefully, and calls run(); see the
// file comment.
inline int main(Command& cmd, int argc, char** argv, const std::function<int()>& run) {
  for (int i = 0; i < argc; ++i) cmd.command_line_ += (i ? " " : "") + detail::shell_quote(argv[i]);
  try {
    cmd.app_.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(cmd.app_.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s\n(%s --help lists the options)\n", cmd.program().c_str(), e.what(),
                 cmd.program().c_str());
    return 2;
  }
  if (cmd.graceful_) {
    struct sigaction sa{};
    sa.sa_handler = detail::on_stop_signal;
    sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the program at once
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "\n%s: error: %s\n", cmd.program().c_str(), e.what());
    return 2;
  }
}

// The JSON document in `path`; a missing or malformed file is an error naming `what` (the option) and the file.
inline nlohmann::json read_json(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  check(in.is_open(), what, ": cannot open '", path, "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": '" + path + "' is not valid JSON: " + e.what());
  }
}

// Checks, before any long work, that the file `path` (given by option `what`) can be written later: its folder
// exists and is writable, and the path is not a folder.
inline void check_writable_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  const fs::path p(path), folder = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  check(!p.filename().empty() && !fs::is_directory(p), what, ": '", path, "' is a folder, not a file name");
  check(fs::is_directory(folder), what, ": the folder of '", path, "' does not exist");
  check(::access(folder.c_str(), W_OK | X_OK) == 0, what, ": the folder of '", path, "' is not writable");
}

// Atomic writes of the file kinds the CLIs produce (io/atomic_file.hpp): JSON (pretty), text, PNG.
inline void write_json(const std::string& path, const nlohmann::json& j) {
  io::write_file_atomically(path, j.dump(2) + "\n");
}
inline void write_png(const std::string& path, const Tensor<Cpu>& image_chw, io::PixelRange r = {}) {
  io::write_atomically(path, [&](const std::string& tmp) { io::write_png(tmp, image_chw, r); });
}

}  // namespace mint::cli
