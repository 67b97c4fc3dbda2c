// Files and whole-file helpers shared by the bench programs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace mbz::bench {

inline std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `arg` itself, or every regular file under it in sorted path order.
inline std::vector<std::filesystem::path> files_under(const std::filesystem::path& arg) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(arg)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(arg))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(arg);
  }
  return files;
}

// Bytes of `command PATH`'s standard output (run through the shell, the path
// single-quoted); 0 when it cannot run.
inline uint64_t output_size(const std::string& command, const std::filesystem::path& path) {
  std::string quoted = "'";
  for (char c : path.string()) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  FILE* pipe = popen((command + " " + quoted + " | wc -c").c_str(), "r");
  if (pipe == nullptr) return 0;
  unsigned long long size = 0;
  if (std::fscanf(pipe, "%llu", &size) != 1) size = 0;
  pclose(pipe);
  return size;
}

}  // namespace mbz::bench
