// The context mixer on real files: each file is coded on its own with cm::encode (no
// external table), decoded and compared, and the sizes and times are summed. One row per
// argument (a file, or a directory taken recursively, as corpora/BASELINES.md has one row
// per kind), then the total. With --xz, `xz -9e` compresses the same files for a column
// side by side.
//
//   build/bench/cm_bench [--xz] [--per-file] [--context-bits N] PATH...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bench/bench_files.h"
#include "codec/cm/cm_codec.h"
#include "codec/error.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Totals {
  size_t files = 0;
  uint64_t bytes = 0, coded = 0, xz = 0;
  double encode_s = 0, decode_s = 0;

  void add(const Totals& t) {
    files += t.files;
    bytes += t.bytes;
    coded += t.coded;
    xz += t.xz;
    encode_s += t.encode_s;
    decode_s += t.decode_s;
  }
};

// Size of `xz -9e` output for the file.
uint64_t xz_size(const fs::path& path) { return mbz::bench::output_size("xz -9e -c --", path); }

void print_row(const std::string& name, const Totals& t, bool with_xz) {
  const double bpb = t.bytes ? 8.0 * t.coded / t.bytes : 0;
  std::printf("| %s | %zu | %llu | %llu | %.3f |", name.c_str(), t.files,
              static_cast<unsigned long long>(t.bytes), static_cast<unsigned long long>(t.coded),
              bpb);
  if (with_xz) std::printf(" %.3f |", t.bytes ? 8.0 * t.xz / t.bytes : 0);
  std::printf(" %.2f | %.2f |\n", t.bytes / 1e6 / std::max(t.encode_s, 1e-9),
              t.bytes / 1e6 / std::max(t.decode_s, 1e-9));
}

}  // namespace

int main(int argc, char** argv) {
  bool with_xz = false, per_file = false;
  mbz::cm::Config max;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--xz") {
      with_xz = true;
    } else if (arg == "--per-file") {
      per_file = true;
    } else if (arg == "--context-bits" && i + 1 < argc) {
      max.context_bits = std::atoi(argv[++i]);
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr, "usage: cm_bench [--xz] [--per-file] [--context-bits N] PATH...\n");
    return 2;
  }

  std::printf("| path | files | bytes | cm bytes | cm bits/byte |%s cm MB/s enc | cm MB/s dec |\n",
              with_xz ? " xz -9e bits/byte |" : "");
  std::printf("|---|---:|---:|---:|---:|%s---:|---:|\n", with_xz ? "---:|" : "");
  Totals all;
  try {
    for (const auto& path : paths) {
      Totals row;
      for (const auto& file : mbz::bench::files_under(path)) {
        const auto data = mbz::bench::read_file(file);
        Totals t;
        t.files = 1;
        t.bytes = data.size();
        const auto t0 = Clock::now();
        const auto payload = mbz::cm::encode(data, nullptr, max);
        const auto t1 = Clock::now();
        const auto decoded = mbz::cm::decode(payload, data.size(), nullptr, max);
        const auto t2 = Clock::now();
        if (decoded != data) {
          std::fprintf(stderr, "cm_bench: %s does not decode to its bytes\n", file.c_str());
          return 1;
        }
        t.coded = payload.size();
        t.encode_s = std::chrono::duration<double>(t1 - t0).count();
        t.decode_s = std::chrono::duration<double>(t2 - t1).count();
        if (with_xz) t.xz = xz_size(file);
        if (per_file) print_row(file.string(), t, with_xz);
        row.add(t);
      }
      print_row(path, row, with_xz);
      all.add(row);
    }
  } catch (const mbz::Error& e) {
    std::fprintf(stderr, "cm_bench: %s\n", e.what());
    return 1;
  }
  if (paths.size() > 1) print_row("**total**", all, with_xz);
}
