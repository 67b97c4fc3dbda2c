// What each part of the context mixer adds: every file is coded by cm::encode as
// `mbz compress --level 2 --pixels --samples` codes it (io/ flattens images to tiled pixels
// and audio to 16-bit samples; the layout comes from a header as the archive derives it,
// segment_setup; 16 MiB segments, tables of 2^24 and 2^22 at most, one lane), once with
// everything on and once with each component switched off (cm::Config::ablate). Without
// --ablate, every single component that applies is switched off in turn: "modality" only
// when some file has an image or audio layout, and never "table", since no external table
// is given here (the byte model's share is hybrid_bench's to measure).
//
// One row per setting; for each PATH (a file, or a directory taken recursively in sorted
// path order) the bits per unit and the change against everything on, then all PATHs
// together and the encoding time. Every unit is one byte of the coded stream: a byte of
// text, a subpixel of an image, a byte of 16-bit PCM.
//
//   build/bench/cm_ablation [--ablate NAME[,NAME...]]... [--lanes N[,N...]] [--every N]
//                           [--first N] [--check] [--per-file] PATH...
//
// --ablate NAME,NAME switches those components off together, as one row (names:
// cm::kAblateNames); repeat it for more rows. --lanes adds rows with everything on and N
// lanes. --every N takes files 0, N, 2N, .. of each PATH, --first N its first N (after
// --every). --check decodes every payload again and compares.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_files.h"
#include "codec/cm/cm_codec.h"
#include "codec/error.h"
#include "codec/format.h"
#include "codec/segment_coder.h"
#include "io/transform.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSegment = uint64_t{1} << 24;  // cli/commands.h: kDefaultSegment

std::vector<fs::path> files_of(const fs::path& arg, size_t every, size_t first) {
  const std::vector<fs::path> all = mbz::bench::files_under(arg);
  std::vector<fs::path> files;
  for (size_t i = 0; i < all.size(); i += every) files.push_back(all[i]);
  if (first && files.size() > first) files.resize(first);
  return files;
}

// A file as the archive codes it: its stream and the header that gives the layout.
struct Input {
  fs::path path;
  mbz::Header header;
  std::vector<uint8_t> stream;
  size_t group = 0;  // index of its PATH
};

Input flatten(const fs::path& path, size_t group) {
  mbz::io::FlattenOptions options;
  options.pixels = options.samples = true;
  mbz::io::Flattened flat = mbz::io::flatten(mbz::bench::read_file(path), options);
  Input in{path, {}, std::move(flat.stream), group};
  in.header.modality = static_cast<uint8_t>(flat.modality);
  in.header.params = std::move(flat.params);
  in.header.chunk_log = 24;
  return in;
}

struct Setting {
  std::string name;
  uint32_t ablate = 0;
  uint32_t lanes = 1;
};

// Sets `ablate`'s bits for a list of names; false for an unknown name.
bool parse_names(const std::string& list, uint32_t& ablate) {
  std::stringstream items(list);
  for (std::string item; std::getline(items, item, ',');) {
    const auto* it =
        std::find_if(std::begin(mbz::cm::kAblateNames), std::end(mbz::cm::kAblateNames),
                     [&](const mbz::cm::AblateName& n) { return item == n.name; });
    if (it == std::end(mbz::cm::kAblateNames)) return false;
    ablate |= it->bit;
  }
  return true;
}

struct Cell {
  uint64_t units = 0, coded = 0;
  double bits() const { return units ? 8.0 * coded / units : 0; }
};

// Payload bytes of one file under one setting, segment by segment; with `check`, each
// payload is decoded again and compared.
uint64_t coded_size(const Input& in, const Setting& s, bool check) {
  mbz::Header header = in.header;
  header.lanes = s.lanes;
  uint64_t coded = 0;
  for (uint64_t at = 0, index = 0; at < in.stream.size(); at += kSegment, ++index) {
    const std::span<const uint8_t> segment(in.stream.data() + at,
                                           std::min<uint64_t>(kSegment, in.stream.size() - at));
    mbz::SegmentSetup setup = mbz::segment_setup(header, index);
    setup.cm.ablate = s.ablate;
    const auto payload = mbz::cm::encode(segment, nullptr, setup.cm, setup.lanes);
    coded += payload.size();
    if (check && mbz::cm::decode(payload, segment.size(), nullptr, setup.cm, setup.lanes) !=
                     std::vector<uint8_t>(segment.begin(), segment.end()))
      throw mbz::Error(mbz::ErrorCode::kCorruptChunk,
                       in.path.string() + " (" + s.name + ") does not decode to its bytes");
  }
  return coded;
}

std::string change(double bits, double full) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2f %%", full > 0 ? 100.0 * (bits / full - 1) : 0.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Setting> settings = {{"everything on", 0, 1}};
  bool chosen = false, check = false, per_file = false;
  size_t every = 1, first = 0;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--ablate" && i + 1 < argc) {
      const std::string names = argv[++i];
      Setting s{"no " + names, 0, 1};
      if (!parse_names(names, s.ablate)) {
        std::fprintf(stderr, "cm_ablation: unknown component in '%s'\n", names.c_str());
        return 2;
      }
      settings.push_back(s);
      chosen = true;
    } else if (arg == "--lanes" && i + 1 < argc) {
      std::stringstream items(argv[++i]);
      for (std::string item; std::getline(items, item, ',');)
        settings.push_back({item + " lanes", 0, static_cast<uint32_t>(std::stoul(item))});
    } else if (arg == "--every" && i + 1 < argc) {
      every = std::max<size_t>(1, std::stoul(argv[++i]));
    } else if (arg == "--first" && i + 1 < argc) {
      first = std::stoul(argv[++i]);
    } else if (arg == "--check") {
      check = true;
    } else if (arg == "--per-file") {
      per_file = true;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr,
                 "usage: cm_ablation [--ablate NAME[,NAME...]]... [--lanes N[,N...]] "
                 "[--every N] [--first N] [--check] [--per-file] PATH...\nnames:");
    for (const auto& n : mbz::cm::kAblateNames) std::fprintf(stderr, " %s", n.name);
    std::fprintf(stderr, "\n");
    return 2;
  }

  try {
    std::vector<Input> inputs;
    std::vector<uint64_t> units(paths.size());
    bool layout = false;
    for (size_t g = 0; g < paths.size(); ++g)
      for (const auto& file : files_of(paths[g], every, first)) {
        inputs.push_back(flatten(file, g));
        units[g] += inputs.back().stream.size();
        layout |= mbz::stream_layout(inputs.back().header).kind != mbz::cm::Layout::Kind::kBytes;
      }
    if (!chosen) {
      // Every single component that applies, before any --lanes rows.
      std::vector<Setting> singles;
      for (const auto& n : mbz::cm::kAblateNames)
        if (n.bit != mbz::cm::kAblateTable && (layout || n.bit != mbz::cm::kAblateModality))
          singles.push_back({std::string("no ") + n.name, n.bit, 1});
      settings.insert(settings.begin() + 1, singles.begin(), singles.end());
    }

    for (size_t g = 0; g < paths.size(); ++g) {
      size_t n = 0;
      for (const auto& in : inputs) n += in.group == g;
      std::printf("- %s: %zu files, %llu units\n", paths[g].c_str(), n,
                  static_cast<unsigned long long>(units[g]));
    }
    std::printf("\n| setting |");
    for (const auto& p : paths) std::printf(" %s bits | change |", p.c_str());
    std::printf("%s encode s |\n|---|", paths.size() > 1 ? " all bits | change |" : "");
    for (size_t g = 0; g < paths.size() + (paths.size() > 1); ++g) std::printf("---:|---:|");
    std::printf("---:|\n");

    std::vector<Cell> full;
    for (const Setting& s : settings) {
      std::vector<Cell> cells(paths.size() + 1);  // the last: all together
      const auto t0 = Clock::now();
      for (const Input& in : inputs) {
        const uint64_t coded = coded_size(in, s, check);
        for (Cell* c : {&cells[in.group], &cells.back()}) {
          c->units += in.stream.size();
          c->coded += coded;
        }
        if (per_file)
          std::fprintf(stderr, "%s\t%s\t%zu\t%llu\n", s.name.c_str(), in.path.c_str(),
                       in.stream.size(), static_cast<unsigned long long>(coded));
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      if (full.empty()) full = cells;
      std::printf("| %s |", s.name.c_str());
      for (size_t g = 0; g < cells.size(); ++g) {
        if (g == paths.size() && paths.size() == 1) break;
        std::printf(" %.4f | %s |", cells[g].bits(),
                    change(cells[g].bits(), full[g].bits()).c_str());
      }
      std::printf(" %.1f |\n", seconds);
      std::fflush(stdout);
    }
  } catch (const mbz::Error& e) {
    std::fprintf(stderr, "cm_ablation: %s\n", e.what());
    return 1;
  }
}
