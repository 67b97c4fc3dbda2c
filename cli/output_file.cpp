#include "cli/output_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "codec/error.h"

namespace mbz::cli {
namespace {

// The temporary file being written, for the signal handler. One output is open at a time.
char g_temp_path[4096];
volatile sig_atomic_t g_temp_active = 0;

// A shared memory region to remove (mbz train --gpus), named as shm_open names it.
char g_shm_path[256];
volatile sig_atomic_t g_shm_active = 0;

extern "C" void on_fatal_signal(int sig) {
  if (g_temp_active) unlink(g_temp_path);  // async-signal-safe
  if (g_shm_active) unlink(g_shm_path);    // shm_unlink, as glibc implements it
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string io_message(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

void install_signal_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, on_fatal_signal);
  signal(SIGPIPE, SIG_IGN);  // a closed pipe becomes a write error, which cleans up too
}

void remove_on_signal_shm(const std::string& name) {
  g_shm_active = 0;
  if (name.empty() || name.size() + 9 >= sizeof g_shm_path) return;
  std::strcpy(g_shm_path, "/dev/shm");
  std::strcat(g_shm_path, name.c_str());
  g_shm_active = 1;
}

OutputFile::OutputFile(const std::string& path, bool force) : path_(path) {
  if (path == "-") {
    file_ = stdout;
    writer_ = std::make_unique<FileWriter>(stdout, "stdout");
    return;
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::kIoOpen, path + ": is a directory");
    if (!S_ISREG(st.st_mode)) {
      // A device or a pipe (-o /dev/null): written through, never replaced by a file.
      file_ = std::fopen(path.c_str(), "wb");
      if (!file_) throw Error(ErrorCode::kIoOpen, io_message(path, "cannot open"));
      writer_ = std::make_unique<FileWriter>(file_, path);
      direct_ = true;
      return;
    }
    if (!force) throw Error(ErrorCode::kIoExists, path + ": already exists; use -f to overwrite");
    // A symbolic link to a file: replace the file it points to, and keep the link.
    struct stat link;
    if (lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      char* target = realpath(path.c_str(), nullptr);
      if (!target) throw Error(ErrorCode::kIoOpen, io_message(path, "cannot resolve link"));
      target_ = target;
      std::free(target);
    }
  }
  force_ = force;
  if (target_.empty()) target_ = path;
  temp_ = target_ + ".mbz-tmpXXXXXX";
  if (temp_.size() >= sizeof g_temp_path) throw Error(ErrorCode::kIoOpen, path + ": path too long");
  // mkstemp fills in the handler's own copy, which is armed first: a signal that comes
  // while the file is being created still finds its name.
  std::memcpy(g_temp_path, temp_.c_str(), temp_.size() + 1);
  g_temp_active = 1;
  const int fd = mkstemp(g_temp_path);
  if (fd < 0) {
    g_temp_active = 0;
    throw Error(ErrorCode::kIoOpen, io_message(path, "cannot create"));
  }
  temp_ = g_temp_path;
  const mode_t mask = umask(0);  // mkstemp makes 0600; give the file the usual mode
  umask(mask);
  fchmod(fd, 0644 & ~mask);
  file_ = fdopen(fd, "wb");
  if (!file_) {
    const std::string message = io_message(path, "cannot open");
    close(fd);
    unlink(temp_.c_str());  // the destructor does not run for a constructor that throws
    g_temp_active = 0;
    throw Error(ErrorCode::kIoOpen, message);
  }
  writer_ = std::make_unique<FileWriter>(file_, path);
}

OutputFile::~OutputFile() {
  if (file_ == stdout || committed_) return;
  if (direct_) {
    std::fclose(file_);
    return;
  }
  unlink(temp_.c_str());  // before disarming the handler, so that no signal can leave it
  g_temp_active = 0;
  if (file_) std::fclose(file_);
}

void OutputFile::commit() {
  writer_->flush();
  if (file_ == stdout) return;
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) throw Error(ErrorCode::kIoWrite, io_message(path_, "write failed"));
  if (direct_) {
    committed_ = true;
    return;
  }
  // Without -f, a file that appeared at the output path meanwhile is not replaced either.
  const int moved =
      force_ ? std::rename(temp_.c_str(), target_.c_str())
             : renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE);
  if (moved != 0 && errno == EEXIST)
    throw Error(ErrorCode::kIoExists, path_ + ": appeared while writing; use -f to overwrite");
  if (moved != 0) throw Error(ErrorCode::kIoWrite, io_message(path_, "cannot rename into place"));
  committed_ = true;
  g_temp_active = 0;
}

std::FILE* open_input(const std::string& path) {
  if (path == "-") return stdin;
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    throw Error(ErrorCode::kIoOpen, io_message(path, "cannot open"));
  if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::kIoOpen, path + ": is a directory");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw Error(ErrorCode::kIoOpen, io_message(path, "cannot open"));
  return file;
}

std::optional<uint64_t> regular_file_size(std::FILE* file) {
  struct stat st;
  if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  // Standard input may be a file that something already read partway.
  const off_t at = lseek(fileno(file), 0, SEEK_CUR);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  return at > 0 && static_cast<uint64_t>(at) <= size ? size - static_cast<uint64_t>(at) : size;
}

bool is_terminal(std::FILE* file) {
  return isatty(fileno(file)) != 0;
}

}  // namespace mbz::cli
