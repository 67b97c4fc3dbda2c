// Where results go: a file written under a temporary name and renamed into place only when
// complete, or standard output. An existing file is replaced only when asked (-f); an
// unfinished output is removed on error (destructor) and on SIGINT/SIGTERM/SIGHUP (the
// signal handler), so no partial file is ever left behind.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "codec/stream.h"

namespace mbz::cli {

// Installs the handlers that remove the unfinished output on a fatal signal.
void install_signal_handlers();
// Also removes the POSIX shared memory `name` ("/mbz-...") on a fatal signal; "" forgets it.
void remove_on_signal_shm(const std::string& name);

class OutputFile {
 public:
  // "-" is standard output. Throws kIoExists if `path` exists and !force.
  OutputFile(const std::string& path, bool force);
  ~OutputFile();  // removes the temporary file unless commit() ran
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Writer& writer() { return *writer_; }
  bool is_stdout() const { return file_ == stdout; }
  // True for a device or pipe written through (-o /dev/null): --rm must not apply.
  bool is_direct() const { return direct_; }
  // Flushes, closes and renames into place.
  void commit();

 private:
  std::string path_, temp_;
  std::string target_;   // where the temporary file is renamed to: path_, or its link's target
  bool force_ = false;   // replace a file that exists at commit time
  bool direct_ = false;  // a device or pipe, written through without a temporary file
  std::FILE* file_ = nullptr;
  std::unique_ptr<FileWriter> writer_;
  bool committed_ = false;
};

// Opens an input ("-" is standard input); the caller closes non-stdin files with fclose.
std::FILE* open_input(const std::string& path);
// The size of a regular file, or nullopt for pipes and terminals.
std::optional<uint64_t> regular_file_size(std::FILE* file);
bool is_terminal(std::FILE* file);

}  // namespace mbz::cli
