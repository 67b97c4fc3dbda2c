// `mbz score`: how many bits per byte the model needs for files, as compression with the
// same chunk size would code them with the model method (ideal code lengths of the
// model's tables, without the container's overhead or the choice of other methods).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/json.h"
#include "cli/model_registry.h"
#include "cli/output_file.h"
#include "codec/error.h"
#include "codec/parallel.h"

namespace mbz::cli {
namespace {

namespace fs = std::filesystem;

// Every regular file under the paths, directories walked in sorted order.
std::vector<std::string> collect_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (path != "-" && fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(path, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec)) found.push_back(it->path().string());
      if (ec) throw Error(ErrorCode::kIoRead, path + ": cannot list directory: " + ec.message());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(path);
    }
  }
  return files;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::FILE* file = open_input(path);
  std::vector<uint8_t> data;
  FileReader reader(file, path == "-" ? "stdin" : path);
  std::vector<uint8_t> block(1 << 20);
  for (size_t n; (n = reader.read(block)) > 0;)
    data.insert(data.end(), block.begin(), block.begin() + n);
  if (file != stdin) std::fclose(file);
  return data;
}

// Ideal code length in bits of `data` under `model`, chunk by chunk.
double model_bits(const ModelFactory& factory, std::span<const uint8_t> data, size_t chunk,
                  unsigned threads, std::vector<std::unique_ptr<BatchByteModel>>& models) {
  const size_t n = (data.size() + chunk - 1) / chunk;
  std::vector<double> bits(n, 0.0);
  parallel_for(threads, n, [&](unsigned slot, size_t k) {
    if (!models[slot]) models[slot] = factory.create(1);
    BatchByteModel& model = *models[slot];
    const std::span<const uint8_t> part =
        data.subspan(k * chunk, std::min(chunk, data.size() - k * chunk));
    const uint32_t id = 0;
    Cdf table;
    model.reset(1);
    double sum = 0;
    for (uint8_t byte : part) {
      model.predict({&id, 1}, {&table, 1});
      sum += kTotalBits - std::log2(static_cast<double>(table.freq(byte)));
      model.update({&id, 1}, {&byte, 1});
    }
    bits[k] = sum;
  });
  double total = 0;
  for (double b : bits) total += b;
  return total;
}

}  // namespace

int run_score(const Options& o) {
  const ModelFactory& model = o.model.empty() ? default_model() : model_by_name(o.model);
  const unsigned threads =
      o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<BatchByteModel>> models(threads);
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty()) inputs.push_back("-");

  Json json;
  json.begin_object();
  json.key("model")
      .begin_object()
      .field("name", model.identity().name)
      .field("id", model.identity().id_hex())
      .end_object();
  json.key("files").begin_array();
  if (!o.json) std::printf("%12s %10s  %s\n", "bytes", "bits/byte", "file");
  int status = 0;
  uint64_t total_bytes = 0;
  double total_bits = 0;
  for (const std::string& file : collect_files(inputs)) {
    try {
      const std::vector<uint8_t> data = read_all(file);
      const double bits = model_bits(model, data, o.chunk_size, threads, models);
      const double bpb = data.empty() ? 0.0 : bits / data.size();
      total_bytes += data.size();
      total_bits += bits;
      if (o.json)
        json.begin_object()
            .field("file", file)
            .field("bytes", uint64_t{data.size()})
            .field("bits_per_byte", bpb)
            .end_object();
      else
        std::printf("%12zu %10.4f  %s\n", data.size(), bpb, file.c_str());
    } catch (const Error& e) {
      std::fprintf(stderr, "mbz: %s: %s\n", band_name(e.band()), e.what());
      if (status == 0) status = static_cast<int>(e.band());
    }
  }
  const double total_bpb = total_bytes ? total_bits / total_bytes : 0.0;
  json.end_array();
  json.key("total")
      .begin_object()
      .field("bytes", total_bytes)
      .field("bits_per_byte", total_bpb)
      .end_object();
  json.end_object();
  if (o.json)
    std::printf("%s\n", json.str().c_str());
  else
    std::printf("%12llu %10.4f  total (model %s)\n", static_cast<unsigned long long>(total_bytes),
                total_bpb, model.identity().name.c_str());
  return status;
}

}  // namespace mbz::cli
