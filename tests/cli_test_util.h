// Shared by the CLI tests: inputs, files, and running the built `mbz` binary as a
// subprocess in a fresh directory, capturing stdout, stderr and the wait status.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codec/archive.h"
#include "codec/order2_model.h"

extern char** environ;

namespace mbz::cli_test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kModelName = "order2-v1";
// The bundled model (model/bundled.h): what compress and score use without --model.
constexpr const char* kDefaultModelName = "mbz-medium-1.mbzq";

// ---- Inputs -------------------------------------------------------------------------------

inline std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

inline std::string text_bytes(size_t n, uint32_t seed) {
  static const char* kWords[] = {"the ",   "archive ", "model ", "byte ", "of ", "and ",
                                 "chunk ", "range ",   "coder ", "is ",   "a ",  ".\n"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += kWords[rng() % std::size(kWords)];
  s.resize(n);
  return s;
}

// Independent bytes, mostly 'a': little for LZ matching to find, much for a context model.
inline std::string skewed_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, 'a');
  for (char& c : s)
    if (rng() % 8 == 0) c = static_cast<char>('b' + rng() % 4);
  return s;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A valid archive made by the codec itself, for tests that break it on purpose.
inline std::string make_archive(const std::string& data, int chunk_log) {
  static const mbz::Order2Factory model;
  mbz::Header header;
  header.chunk_log = chunk_log;
  header.original_size = data.size();
  header.model = model.identity();
  const auto bytes = mbz::compress_buffer(
      {reinterpret_cast<const uint8_t*>(data.data()), data.size()}, header, model, {});
  return {bytes.begin(), bytes.end()};
}

inline uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// ---- Running mbz --------------------------------------------------------------------------

struct Result {
  int status = -1;  // as waitpid gives it
  std::string out, err;
  // The exit status, or -1 when a signal ended the process.
  int code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

inline std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "status " << r.code() << ", stderr:\n" << r.err;
}

class CliTest : public testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // a child that never reads its stdin must not kill the test
    std::string dir = (fs::temp_directory_path() / "mbz_cli_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr) << std::strerror(errno);
    root_ = dir;
    work_ = root_ / "work";
    fs::create_directory(work_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  fs::path at(const std::string& name) const { return work_ / name; }
  void put(const std::string& name, const std::string& bytes) const { write_file(at(name), bytes); }
  std::string get(const std::string& name) const { return read_file(at(name)); }

  // The names in the work directory, sorted: shows stray temporary files and outputs.
  std::set<std::string> names() const {
    std::set<std::string> found;
    for (const auto& entry : fs::directory_iterator(work_)) found.insert(entry.path().filename());
    return found;
  }

  // Starts `mbz ARGS` through /bin/sh in the work directory (so ARGS may hold redirections)
  // with the given descriptors as its stdin, stdout and stderr. The shell execs mbz, so
  // the pid is mbz's and its wait status is mbz's own.
  pid_t start(const std::string& args, int in, int out, int err) {
    const std::string script =
        "cd " + quote(work_.string()) + " && exec " + quote(MBZ_BINARY) + " " + args;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    posix_spawn_file_actions_adddup2(&actions, err, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE}) sigaddset(&defaults, sig);
    sigemptyset(&empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    EXPECT_EQ(rc, 0) << "posix_spawn: " << std::strerror(rc);
    return rc == 0 ? pid : -1;
  }

  // Waits for `pid`; kills it (and fails the test) after `limit`.
  static int finish(pid_t pid, seconds limit = seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = -1;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << "mbz did not finish within " << limit.count() << " s";
        return -1;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    return status;
  }

  int open_capture(const char* name) const {
    return open((root_ / name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }

  // Runs `mbz ARGS`; `input` reaches it through a pipe, as from `cat input | mbz ...`.
  Result mbz(const std::string& args, const std::string& input = {}) {
    int pipe_fds[2];
    EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    const int out = open_capture("stdout"), err = open_capture("stderr");
    const pid_t pid = start(args, pipe_fds[0], out, err);
    close(pipe_fds[0]);
    close(out);
    close(err);
    std::thread feeder([fd = pipe_fds[1], &input] {
      for (size_t done = 0; done < input.size();) {
        const ssize_t n = write(fd, input.data() + done, input.size() - done);
        if (n <= 0) break;  // mbz stopped reading
        done += static_cast<size_t>(n);
      }
      close(fd);
    });
    Result run;
    if (pid > 0) run.status = finish(pid);
    feeder.join();
    run.out = read_file(root_ / "stdout");
    run.err = read_file(root_ / "stderr");
    return run;
  }

  fs::path root_, work_;
};

}  // namespace mbz::cli_test
