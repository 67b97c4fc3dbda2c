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
