// `mbz score`: how many bits per byte the model needs for files, as compression with the
// same chunk size would code them with the model method: ideal code lengths of the model's
// tables over the stream io/ makes of each file, plus its transform parameters at 8 bits a
// byte, without the container's overhead or the choice of other methods. Per file and per
// modality, in bits per byte of the file and, for images and audio, per subpixel or sample.
// Beside them, the same files' size under `zstd -19` (libzstd, each file on its own).
#include "model/exact_codec.h"
#include "model/score.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include <zstd.h>

#include "cli/commands.h"
#include "cli/json.h"
#include "cli/model_registry.h"
#include "cli/output_file.h"
#include "codec/error.h"
#include "codec/parallel.h"
#include "io/transform.h"

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
  // Closed on every path out, errors included.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> owner(file == stdin ? nullptr : file,
                                                        &std::fclose);
  std::vector<uint8_t> data;
  FileReader reader(file, path == "-" ? "stdin" : path);
  std::vector<uint8_t> block(1 << 20);
  for (size_t n; (n = reader.read(block)) > 0;)
    data.insert(data.end(), block.begin(), block.begin() + n);
  return data;
}

// One chunk of a file to score: its bytes and the file it counts for.
struct ScoreChunk {
  std::span<const uint8_t> bytes;
  size_t file;
};

// Ideal code lengths in bits, per file, of `chunks` under `model`: chunks in lockstep in
// batches of `batch` (the coder's rounds; a neural model computes each batch's tables in
// one forward pass per window, through lookahead), the batches shared out over threads.
std::vector<double> model_bits(const ModelFactory& factory, std::span<const ScoreChunk> chunks,
                               size_t files, uint8_t modality, size_t batch, unsigned threads,
                               std::vector<std::unique_ptr<BatchByteModel>>& models) {
  const size_t groups = (chunks.size() + batch - 1) / batch;
  std::vector<double> chunk_bits(chunks.size(), 0.0);
  parallel_for(threads, groups, [&](unsigned slot, size_t g) {
    if (!models[slot]) models[slot] = factory.create(batch);
    BatchByteModel& model = *models[slot];
    const size_t first = g * batch, n = std::min(batch, chunks.size() - first);
    std::vector<std::span<const uint8_t>> streams;
    std::vector<uint32_t> ids;
    for (size_t k = 0; k < n; ++k) {
      streams.push_back(chunks[first + k].bytes);
      if (!streams.back().empty()) ids.push_back(static_cast<uint32_t>(k));
    }
    model.set_modality(modality);
    model.reset(n);
    model.lookahead(streams);
    std::vector<Cdf> tables(n);
    std::vector<uint8_t> bytes(n);
    for (size_t pos = 0; !ids.empty(); ++pos) {
      model.predict(ids, {tables.data(), ids.size()});
      for (size_t j = 0; j < ids.size(); ++j) {
        bytes[j] = streams[ids[j]][pos];
        chunk_bits[first + ids[j]] += kTotalBits - std::log2(double(tables[j].freq(bytes[j])));
      }
      model.update(ids, {bytes.data(), ids.size()});
      size_t kept = 0;
      for (uint32_t k : ids)
        if (pos + 1 < streams[k].size()) ids[kept++] = k;
      ids.resize(kept);
    }
  });
  std::vector<double> bits(files, 0.0);
  for (size_t c = 0; c < chunks.size(); ++c) bits[chunks[c].file] += chunk_bits[c];
  return bits;
}

// Bytes of `data` compressed by `zstd -19` in one frame with its checksum, as the zstd
// command writes a file.
uint64_t zstd19_size(std::span<const uint8_t> data) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  if (!cctx) throw Error(ErrorCode::kUnsupportedFeature, "zstd: cannot make a compression context");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 19);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::vector<uint8_t> out(ZSTD_compressBound(data.size()));
  const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) throw Error(ErrorCode::kUnsupportedFeature, ZSTD_getErrorName(n));
  return n;
}

}  // namespace

namespace {

// Bits and units summed over files, for one modality or for all.
struct Sum {
  uint64_t files = 0, bytes = 0, subpixels = 0, samples = 0;
  double bits = 0;
  uint64_t zstd_bytes = 0;  // the files under zstd -19; 0: not measured (--no-zstd)

  void add(const Sum& s) {
    files += s.files, bytes += s.bytes, subpixels += s.subpixels, samples += s.samples;
    bits += s.bits, zstd_bytes += s.zstd_bytes;
  }
  // bits per byte of the input file, and per subpixel or sample where those exist; then
  // zstd -19's size and its bits per byte of the file
  void to_json(Json& json, bool count_files = true) const {
    if (count_files) json.field("files", files);
    json.field("bytes", bytes).field("bits_per_byte", bytes ? bits / bytes : 0.0);
    if (subpixels) json.field("bits_per_subpixel", bits / subpixels);
    if (samples) json.field("bits_per_sample", bits / samples);
    if (zstd_bytes) json.field("zstd19_bytes", zstd_bytes).field("zstd19_bits_per_byte", zstd_bpb());
  }
  double zstd_bpb() const { return bytes ? 8.0 * zstd_bytes / bytes : 0.0; }
  // zstd -19's bits per byte as a column, "-" when not measured
  std::string zstd_column() const {
    char buf[32] = "         -";
    if (zstd_bytes) std::snprintf(buf, sizeof buf, "%10.4f", zstd_bpb());
    return buf;
  }
  std::string units() const {
    char buf[64] = "";
    if (subpixels)
      std::snprintf(buf, sizeof buf, "  [%.4f bits/subpixel]", bits / subpixels);
    else if (samples)
      std::snprintf(buf, sizeof buf, "  [%.4f bits/sample]", bits / samples);
    return buf;
  }
};

}  // namespace

// A --model that names a file (or the first part of a split one) is a float checkpoint,
// unless it is an exact model file: that codes like the built-in models.
bool is_checkpoint(const std::string& name) {
  std::error_code ec;
  return fs::is_regular_file(name, ec) || fs::is_regular_file(name + ".000", ec);
}

int run_score(const Options& o) {
  // A float checkpoint from `mbz train` scores with the network's probabilities, in windows
  // of its context (--stride for overlapping ones); built-in models as compression would.
  std::unique_ptr<model::FloatScorer> network;
  if (!o.model.empty() && is_checkpoint(o.model) && !model::is_exact_model_file(o.model))
    network = std::make_unique<model::FloatScorer>(o.model, o.device);
  const ModelFactory& model = o.model.empty() || network ? default_model() : model_by_name(o.model);
  const std::string model_name = network ? o.model : model.identity().name;
  const unsigned threads =
      o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  const io::FlattenOptions flat_options = flatten_options(o);
  std::vector<std::unique_ptr<BatchByteModel>> models(threads);
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty()) inputs.push_back("-");

  Json json;
  json.begin_object();
  json.key("model").begin_object().field("name", model_name);
  if (network)
    json.field("kind", "float-checkpoint")
        .field("step", static_cast<uint64_t>(network->step()))
        .field("context_bytes", static_cast<uint64_t>(network->context_bytes()))
        .field("stride", static_cast<uint64_t>(o.stride))
        .field("window", static_cast<uint64_t>(network->window(o.window)))
        .field("device", o.device);
  else
    json.field("id", model.identity().id_hex());
  json.end_object();
  json.key("files").begin_array();
  if (!o.json)
    std::printf("%12s %-6s %10s %10s  %s\n", "bytes", "as", "bits/byte", "zstd -19", "file");
  int status = 0;
  std::map<std::string, Sum> by_modality;
  // Files read and flattened, waiting for their bits: they are scored in groups (of about
  // kGroupBytes for a checkpoint; a batch of chunks per thread for a built-in or exact
  // model), so that the windows of many small files share forward passes.
  struct Pending {
    std::string file;
    std::vector<uint8_t> data;  // the file, for zstd -19 (emptied once measured)
    io::Flattened flat;
    io::Units units;
    uint64_t size = 0, zstd = 0;
  };
  constexpr size_t kGroupBytes = size_t{1} << 18;  // about 10 s of the small preset on 2 cores
  std::vector<Pending> pending;
  // A model scores the chunks of many files in one batch: a group is a batch per thread.
  const size_t batch = std::max<size_t>(1, o.batch ? o.batch : model.preferred_batch());
  const size_t group_bytes =
      network ? kGroupBytes : std::max<size_t>(kGroupBytes, batch * threads * chunk_size_for(o, model));
  size_t pending_bytes = 0;
  const auto fail = [&](const Error& e) {
    std::fprintf(stderr, "mbz: %s: %s\n", band_name(e.band()), e.what());
    if (status == 0) status = static_cast<int>(e.band());
  };
  const auto flush = [&] {
    std::vector<double> bits(pending.size());
    try {
      if (!o.no_zstd)
        parallel_for(threads, pending.size(), [&](unsigned, size_t i) {
          pending[i].zstd = zstd19_size(pending[i].data);
          pending[i].data = {};
        });
      if (network) {
        std::vector<model::FloatScorer::Stream> streams;
        for (const Pending& p : pending)
          streams.push_back({p.flat.stream, static_cast<int>(p.flat.modality)});
        bits = network->bits(streams, o.stride, o.window);
      } else {
        // The chunks of every pending file, a batch of one modality at a time.
        const uint64_t chunk = chunk_size_for(o, model);
        for (uint8_t m = 0; m < 4; ++m) {
          std::vector<ScoreChunk> chunks;
          for (size_t i = 0; i < pending.size(); ++i) {
            const std::vector<uint8_t>& s = pending[i].flat.stream;
            if (static_cast<uint8_t>(pending[i].flat.modality) != m) continue;
            for (size_t at = 0; at < s.size(); at += chunk)
              chunks.push_back({std::span(s).subspan(at, std::min<size_t>(chunk, s.size() - at)), i});
          }
          if (chunks.empty()) continue;
          const std::vector<double> b = model_bits(model, chunks, pending.size(), m, batch, threads, models);
          for (size_t i = 0; i < pending.size(); ++i) bits[i] += b[i];
        }
      }
    } catch (const Error& e) {
      fail(e);
      pending.clear(), pending_bytes = 0;
      return;
    }
    for (size_t i = 0; i < pending.size(); ++i) {
      const Pending& p = pending[i];
      // The model codes the stream; the parameters are stored as they are (8 bits a byte).
      Sum one{1, p.size, p.units.subpixels, p.units.samples, bits[i] + 8.0 * p.flat.params.size(),
              p.zstd};
      const char* modality = io::modality_name(p.flat.modality);
      by_modality[modality].add(one);
      if (o.json) {
        json.begin_object().field("file", p.file).field("modality", modality);
        one.to_json(json, false);
        json.end_object();
      } else {
        std::printf("%12llu %-6s %10.4f %s  %s%s\n", static_cast<unsigned long long>(p.size),
                    modality, p.size ? one.bits / p.size : 0.0, one.zstd_column().c_str(),
                    p.file.c_str(), one.units().c_str());
      }
    }
    pending.clear(), pending_bytes = 0;
  };
  for (const std::string& file : collect_files(inputs)) {
    try {
      std::vector<uint8_t> data = read_all(file);
      io::Flattened flat = io::flatten(data, flat_options);
      const io::Units units = io::units(flat.modality, flat.params);
      pending_bytes += flat.stream.size();
      const uint64_t size = data.size();
      pending.push_back({file, o.no_zstd ? std::vector<uint8_t>{} : std::move(data), std::move(flat),
                         units, size});
    } catch (const Error& e) {
      fail(e);
    }
    if (pending_bytes >= group_bytes) flush();
  }
  flush();
  json.end_array();
  Sum all;
  json.key("modalities").begin_object();
  for (const auto& [name, sum] : by_modality) {
    all.add(sum);
    json.key(name).begin_object();
    sum.to_json(json);
    json.end_object();
    if (!o.json && by_modality.size() > 1)
      std::printf("%12llu %-6s %10.4f %s  total %s (%llu files)%s\n",
                  static_cast<unsigned long long>(sum.bytes), name.c_str(),
                  sum.bytes ? sum.bits / sum.bytes : 0.0, sum.zstd_column().c_str(), name.c_str(),
                  static_cast<unsigned long long>(sum.files), sum.units().c_str());
  }
  json.end_object();
  if (by_modality.size() > 1) all.subpixels = all.samples = 0;  // units of one modality only
  json.key("total").begin_object();
  all.to_json(json);
  json.end_object();
  json.end_object();
  if (o.json)
    std::printf("%s\n", json.str().c_str());
  else
    std::printf("%12llu %-6s %10.4f %s  total (model %s)%s\n",
                static_cast<unsigned long long>(all.bytes), "", all.bytes ? all.bits / all.bytes : 0.0,
                all.zstd_column().c_str(), model_name.c_str(), all.units().c_str());
  return status;
}

}  // namespace mbz::cli
