// Format stability: the archives under tests/golden/ must keep decoding to their originals,
// and each broken archive under tests/golden-errors/ must keep giving its exact error
// (EXPECTED.tsv: file, error code, message). After a deliberate change of a message,
// rewrite the table with MBZ_UPDATE_GOLDEN=1 and review the diff.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "codec/archive.h"
#include "codec/error.h"
#include "codec_test_util.h"

namespace mbz {
namespace {

namespace fs = std::filesystem;
const fs::path kTests = MBZ_TEST_DATA_DIR;

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> files_with_suffix(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == suffix) found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  return found;
}

struct Outcome {
  int code = 0;  // 0: decoded
  std::string message;
};

Outcome decode(const std::vector<uint8_t>& archive, unsigned threads) {
  DecodeOptions options;
  options.threads = threads;
  try {
    decompress_buffer(archive, &test::order2(), options);
    return {};
  } catch (const Error& e) {
    return {static_cast<int>(e.code()), e.what()};
  }
}

TEST(Golden, ArchivesDecodeToTheirOriginals) {
  const auto archives = files_with_suffix(kTests / "golden", ".mbz");
  ASSERT_GE(archives.size(), 4u);
  for (const fs::path& archive : archives) {
    fs::path original = archive;
    original.replace_extension();
    const auto bytes = read_file(archive);
    for (unsigned threads : {1u, 2u}) {
      DecodeOptions options;
      options.threads = threads;
      EXPECT_EQ(decompress_buffer(bytes, &test::order2(), options), read_file(original)) << archive;
    }
  }
}

// The archives of versions 2 to 4: every method that predicts, with lanes (version 3 codes
// cm in one lane, version 4 the model with a range coder a lane). MBZ_UPDATE_GOLDEN=1 writes those that do not exist yet (and their
// originals) from the inputs below, at the writer's version; once committed they are never
// rewritten, and must keep decoding whatever the writer does later.
struct LaneGolden {
  const char* name;
  uint8_t version;
  std::vector<uint8_t> (*original)();
  int chunk_log;
  uint32_t lanes;
  bool try_model, try_cm, try_hybrid;
  std::vector<ChunkMethod> methods;  // of its chunks, in order
};

std::vector<uint8_t> text_with_noise() {
  auto data = test::text_bytes(5000, 41);
  const auto noise = test::random_bytes(2048, 42);
  data.insert(data.begin() + 2048, noise.begin(), noise.end());
  return data;
}

std::vector<uint8_t> hybrid_text() {
  return test::text_bytes(5000, 40);
}

std::vector<uint8_t> model_text() {
  return test::text_bytes(8000, 43);
}

// Text that cm in one lane (version 3) codes better than the methods with 5 lanes of order2-v1.
std::vector<uint8_t> lanes_text() {
  return test::text_bytes(6000, 44);
}

const std::vector<LaneGolden>& lane_goldens() {
  using M = ChunkMethod;
  static const std::vector<LaneGolden> goldens = {
      {"hybrid.txt", 2, hybrid_text, 11, 4, false, false, true, {M::kHybrid, M::kHybrid, M::kHybrid}},
      {"cm.bin", 2, text_with_noise, 11, 3, false, true, false, {M::kCm, M::kStored, M::kCm, M::kCm}},
      {"model.txt", 2, model_text, 12, 3, true, false, false, {M::kModel, M::kModel}},
      {"lanes.txt", 3, lanes_text, 11, 5, true, true, true, {M::kCm, M::kCm, M::kCm}},
      {"model-lanes.txt", 4, model_text, 12, 5, true, false, false, {M::kModel, M::kModel}},
  };
  return goldens;
}

TEST(Golden, LaneArchivesUseTheirMethods) {
  for (const LaneGolden& g : lane_goldens()) {
    const fs::path original = kTests / "golden" / g.name;
    const fs::path archive = kTests / "golden" / (std::string(g.name) + ".mbz");
    if (std::getenv("MBZ_UPDATE_GOLDEN") && !fs::exists(archive)) {
      const std::vector<uint8_t> data = g.original();
      Header header = test::header_for(g.chunk_log, data.size());
      header.lanes = g.lanes;
      EncodeOptions options;
      options.try_model = g.try_model;
      options.try_cm = g.try_cm;
      options.try_hybrid = g.try_hybrid;
      options.verify = true;
      const auto bytes = compress_buffer(data, header, test::order2(), options);
      std::ofstream(original, std::ios::binary)
          .write(reinterpret_cast<const char*>(data.data()),
                 static_cast<std::streamsize>(data.size()));
      std::ofstream(archive, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
    }
    const auto bytes = read_file(archive);
    MemoryReader in(bytes);
    ArchiveReader reader(in);
    EXPECT_EQ(reader.header().version, g.version) << g.name;
    EXPECT_EQ(reader.header().lanes, g.lanes) << g.name;
    std::vector<ChunkMethod> methods;
    for (const ChunkInfo& c : reader.list(nullptr)) methods.push_back(c.header.method);
    EXPECT_EQ(methods, g.methods) << g.name;
    EXPECT_EQ(decompress_buffer(bytes, &test::order2(), {}), read_file(original)) << g.name;
  }
}

TEST(Golden, BrokenArchivesGiveTheirExactErrors) {
  const fs::path dir = kTests / "golden-errors";
  const fs::path table = dir / "EXPECTED.tsv";
  if (std::getenv("MBZ_UPDATE_GOLDEN")) {
    std::ofstream out(table);
    out << "# file\tcode\tmessage  (written by MBZ_UPDATE_GOLDEN=1 codec_golden_test)\n";
    for (const fs::path& path : files_with_suffix(dir, ".mbz")) {
      const Outcome o = decode(read_file(path), 1);
      out << path.filename().string() << '\t' << o.code << '\t' << o.message << '\n';
    }
  }
  std::ifstream in(table);
  ASSERT_TRUE(in) << table;
  std::map<std::string, Outcome> expected;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, code, message;
    std::getline(fields, name, '\t');
    std::getline(fields, code, '\t');
    std::getline(fields, message);
    expected[name] = {std::stoi(code), message};
  }
  const auto files = files_with_suffix(dir, ".mbz");
  ASSERT_EQ(files.size(), expected.size()) << "every broken archive needs a line in EXPECTED.tsv";
  for (const fs::path& path : files) {
    const auto bytes = read_file(path);
    const Outcome& want = expected[path.filename().string()];
    ASSERT_NE(want.code, 0) << path << " must not decode";
    for (unsigned threads : {1u, 2u}) {
      const Outcome got = decode(bytes, threads);
      EXPECT_EQ(got.code, want.code) << path << " threads " << threads << ": " << got.message;
      EXPECT_EQ(got.message, want.message) << path << " threads " << threads;
    }
  }
}

}  // namespace
}  // namespace mbz
