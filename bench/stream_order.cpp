// Which byte order helps a byte model most: bits per byte of the classical model (order2-v1,
// the whole stream as one chunk) on a file's own bytes versus on the streams io/ can make
// of it. Images: pixels in raster order and in T x T tiles for T = 4, 8, 16. Audio: the
// 16-bit PCM samples, little-endian, channels interleaved. Prints one row per file and a
// total per column, over the files that have that column.
//   stream_order FILE...
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "codec/error.h"
#include "codec/order2_model.h"
#include "io/audio.h"
#include "io/detect.h"
#include "io/image.h"
#include "io/pcm.h"
#include "io/tiles.h"

namespace {

double bits_of(std::span<const uint8_t> stream) {
  static mbz::Order2Model model;
  model.reset();
  mbz::Cdf cdf;
  double bits = 0;
  for (uint8_t b : stream) {
    model.predict(cdf);
    bits += mbz::kTotalBits - std::log2(static_cast<double>(cdf.freq(b)));
    model.update(b);
  }
  return bits;
}

struct Total {
  double bits = 0;
  uint64_t bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> columns = {"file bytes", "raster",   "tiles 4",
                                            "tiles 8",    "tiles 16", "samples"};
  std::map<std::string, Total> totals;
  std::printf("%-40s", "file");
  for (const auto& c : columns) std::printf(" %10s", c.c_str());
  std::printf("   (bits per byte, order2-v1)\n");
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::vector<uint8_t> file{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
    std::map<std::string, std::vector<uint8_t>> streams;
    streams["file bytes"] = file;
    try {
      const mbz::io::Modality modality = mbz::io::detect(file);
      if (modality == mbz::io::Modality::kImage) {
        const mbz::io::Image image = mbz::io::decode_image(file);
        streams["raster"] = image.pixels;
        for (uint32_t t : {4u, 8u, 16u}) {
          const mbz::io::TileGeometry g{image.width, image.height, image.channels, t};
          streams["tiles " + std::to_string(t)] = mbz::io::tiles_from_raster(g, image.pixels);
        }
      } else if (modality == mbz::io::Modality::kAudio) {
        streams["samples"] = mbz::io::samples_to_bytes(mbz::io::decode_audio(file).pcm.samples);
      }
    } catch (const mbz::Error& e) {
      std::fprintf(stderr, "%s: %s (file bytes only)\n", argv[i], e.what());
    }
    std::string name = argv[i];
    if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
    std::printf("%-40s", name.c_str());
    for (const auto& c : columns) {
      auto it = streams.find(c);
      if (it == streams.end() || it->second.empty()) {
        std::printf(" %10s", "-");
        continue;
      }
      const double bits = bits_of(it->second);
      std::printf(" %10.4f", bits / it->second.size());
      totals[c].bits += bits;
      totals[c].bytes += it->second.size();
    }
    std::printf("\n");
  }
  std::printf("%-40s", "total");
  for (const auto& c : columns)
    if (totals[c].bytes)
      std::printf(" %10.4f", totals[c].bits / totals[c].bytes);
    else
      std::printf(" %10s", "-");
  std::printf("\n%-40s", "total coded KiB");
  for (const auto& c : columns)
    if (totals[c].bytes)
      std::printf(" %10.1f", totals[c].bits / 8 / 1024);
    else
      std::printf(" %10s", "-");
  std::printf("\n%-40s", "total input KiB");
  for (const auto& c : columns)
    if (totals[c].bytes)
      std::printf(" %10.1f", totals[c].bytes / 1024.0);
    else
      std::printf(" %10s", "-");
  std::printf("\n");
}
