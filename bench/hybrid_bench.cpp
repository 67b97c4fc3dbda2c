// The segment methods of format 2 on real files, for each lane count: every file is one
// segment (as `mbz compress` makes it for files below 16 MiB), coded in one pass by the
// model, cm and hybrid coders (codec/segment_coder.h) with no method given up early,
// the cm or hybrid payload decoded again and compared. Prints one row per lane count
// with each method's bits per byte, the archive's choice per file ("best", as the writer
// picks, zstd and stored included) and the speeds, then zstd -19 and xz -9e on the same
// files, run now.
//
//   build/bench/hybrid_bench [--model bundled|order2|none] [--lanes 1,4,16] [--limit BYTES]
//                            [--no-decode] PATH...
//
// --limit takes the files of each PATH in order until their bytes reach it (the neural
// model is slow), so that several PATHs give a mix.
// Speeds are per thread: the pass runs on one thread, the model's own threads aside.
#include <zstd.h>

#include "bench/bench_files.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "codec/error.h"
#include "codec/order2_model.h"
#include "codec/segment_coder.h"
#include "model/bundled.h"
#include "model/exact_codec.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using mbz::ChunkMethod;


std::vector<fs::path> files_of(const std::vector<std::string>& args, uint64_t limit) {
  std::vector<fs::path> files;
  for (const auto& arg : args) {
    uint64_t total = 0;
    std::vector<fs::path> found;
    if (fs::is_directory(arg)) {
      for (const auto& e : fs::recursive_directory_iterator(arg))
        if (e.is_regular_file() && e.file_size() > 0) found.push_back(e.path());
      std::sort(found.begin(), found.end());
    } else {
      found.push_back(arg);
    }
    for (const auto& f : found) {
      if (limit && total >= limit) break;
      files.push_back(f);
      total += fs::file_size(f);
    }
  }
  return files;
}

double bpb(uint64_t coded, uint64_t bytes) {
  return bytes ? 8.0 * coded / bytes : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "none";
  std::vector<uint32_t> lane_counts = {1};
  uint64_t limit = 0;
  bool decode = true;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) {
      model_name = argv[++i];
    } else if (arg == "--lanes" && i + 1 < argc) {
      lane_counts.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');)
        lane_counts.push_back(static_cast<uint32_t>(std::stoul(item)));
    } else if (arg == "--limit" && i + 1 < argc) {
      limit = std::stoull(argv[++i]);
    } else if (arg == "--no-decode") {
      decode = false;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr,
                 "usage: hybrid_bench [--model bundled|order2|none] [--lanes 1,4,16] "
                 "[--limit BYTES] [--no-decode] PATH...\n");
    return 2;
  }
  try {
    std::unique_ptr<mbz::ModelFactory> factory;
    if (model_name == "bundled")
      factory = mbz::model::load_exact_model(mbz::model::bundled_model_bytes(),
                                             mbz::model::kBundledModelName);
    else if (model_name == "order2")
      factory = std::make_unique<mbz::Order2Factory>();
    else if (model_name != "none")
      factory = mbz::model::load_exact_model(model_name);

    const std::vector<fs::path> files = files_of(paths, limit);
    std::vector<std::vector<uint8_t>> data;
    uint64_t bytes = 0;
    for (const auto& f : files) {
      data.push_back(mbz::bench::read_file(f));
      bytes += data.back().size();
    }
    std::vector<uint64_t> zstd(files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      std::vector<uint8_t> z(ZSTD_compressBound(data[i].size()));
      zstd[i] = ZSTD_compress(z.data(), z.size(), data[i].data(), data[i].size(), 19);
    }
    std::printf("%zu files, %llu bytes; model: %s\n\n", files.size(),
                static_cast<unsigned long long>(bytes), model_name.c_str());
    std::printf(
        "| lanes | cm bits/byte | model bits/byte | hybrid bits/byte | best bits/byte | "
        "encode KB/s (all methods) | decode KB/s (%s) |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        factory ? "hybrid" : "cm");
    for (uint32_t lanes : lane_counts) {
      std::unique_ptr<mbz::BatchByteModel> model;
      if (factory) {
        model = factory->create(lanes);
        model->set_modality(1);  // text: these benchmarks run on the text splits
      }
      const mbz::SegmentSetup setup{lanes, {}};
      uint64_t size[mbz::kMethodCount] = {}, best = 0;
      double encode_s = 0, decode_s = 0;
      for (size_t i = 0; i < files.size(); ++i) {
        const auto t0 = Clock::now();
        const mbz::SegmentPayloads out =
            mbz::encode_segment(data[i], setup, model.get(), {true, true, true}, SIZE_MAX);
        encode_s += std::chrono::duration<double>(Clock::now() - t0).count();
        uint64_t file_best = std::min<uint64_t>(data[i].size(), zstd[i]);
        for (int m = 2; m < mbz::kMethodCount; ++m) {
          // A method given up on incompressible data counts as stored.
          const uint64_t s = out.coded[m] ? out.payload[m].size() : data[i].size();
          size[m] += s;
          if (factory || m == static_cast<int>(ChunkMethod::kCm))
            file_best = std::min(file_best, s);
        }
        best += file_best;
        const auto method = factory ? ChunkMethod::kHybrid : ChunkMethod::kCm;
        if (decode && out.coded[static_cast<int>(method)]) {
          std::vector<uint8_t> back(data[i].size());
          const auto t1 = Clock::now();
          mbz::decode_segment(method, out.payload[static_cast<int>(method)], back, setup,
                              model.get());
          decode_s += std::chrono::duration<double>(Clock::now() - t1).count();
          if (back != data[i]) {
            std::fprintf(stderr, "hybrid_bench: %s does not decode to its bytes\n",
                         files[i].c_str());
            return 1;
          }
        }
      }
      const auto m = [&](ChunkMethod method) { return size[static_cast<int>(method)]; };
      std::printf(
          "| %u | %.3f | %s | %s | %.3f | %.1f | %s |\n", lanes, bpb(m(ChunkMethod::kCm), bytes),
          factory ? std::to_string(bpb(m(ChunkMethod::kModel), bytes)).substr(0, 5).c_str() : "-",
          factory ? std::to_string(bpb(m(ChunkMethod::kHybrid), bytes)).substr(0, 5).c_str() : "-",
          bpb(best, bytes), bytes / 1e3 / std::max(encode_s, 1e-9),
          decode ? std::to_string(bytes / 1e3 / std::max(decode_s, 1e-9)).substr(0, 6).c_str()
                 : "-");
      std::fflush(stdout);
    }
    uint64_t xz = 0, zstd_total = 0;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < files.size(); ++i) xz += mbz::bench::output_size("xz -9e -c --", files[i]);
    const double xz_s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (uint64_t z : zstd) zstd_total += z;
    std::printf(
        "\n| tool | bits/byte |\n|---|---:|\n| zstd -19 | %.3f |\n| xz -9e | %.3f "
        "(%.0f KB/s) |\n",
        bpb(zstd_total, bytes), bpb(xz, bytes), bytes / 1e3 / std::max(xz_s, 1e-9));
  } catch (const mbz::Error& e) {
    std::fprintf(stderr, "hybrid_bench: %s\n", e.what());
    return 1;
  }
}
