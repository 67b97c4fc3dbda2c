// Bounded mutation fuzzing of the decoder: thousands of truncated, bit-flipped, overwritten
// and spliced archives. Each must either decode to exactly the original or fail with an
// mbz::Error; never crash, never hand out wrong bytes, and give the same result twice
// (with 1 and with 2 threads). MBZ_FUZZ_CASES scales the count (default 1500 per archive).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "codec/archive.h"
#include "codec/error.h"
#include "codec_test_util.h"

namespace mbz {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Outcome {
  bool ok = false;
  std::vector<uint8_t> data;
  int code = 0;
  std::string message;
  bool operator==(const Outcome&) const = default;
};

Outcome decode(const std::vector<uint8_t>& archive, unsigned threads) {
  DecodeOptions options;
  options.threads = threads;
  try {
    return {true, decompress_buffer(archive, &test::order2(), options), 0, {}};
  } catch (const Error& e) {
    return {false, {}, static_cast<int>(e.code()), e.what()};
  }
}

size_t case_count() {
  const char* env = std::getenv("MBZ_FUZZ_CASES");
  return env ? std::strtoul(env, nullptr, 10) : 1500;
}

class Fuzz : public ::testing::TestWithParam<const char*> {};

TEST_P(Fuzz, MutatedArchivesNeverDecodeWrongly) {
  const fs::path golden = fs::path(MBZ_TEST_DATA_DIR) / "golden";
  const auto archive = read_file(golden / (std::string(GetParam()) + ".mbz"));
  const auto original = read_file(golden / GetParam());
  ASSERT_FALSE(archive.empty());
  std::mt19937_64 rng(0x6d627a);
  const size_t cases = case_count();
  size_t errors = 0, decoded = 0;
  for (size_t i = 0; i < cases; ++i) {
    std::vector<uint8_t> m = archive;
    switch (i % 5) {
      case 0:  // truncate
        m.resize(rng() % m.size());
        break;
      case 1:  // flip one bit
        m[rng() % m.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 2: {  // flip a few bits
        for (int k = 1 + rng() % 4; k > 0; --k)
          m[rng() % m.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      }
      case 3: {  // overwrite a run with random bytes
        const size_t at = rng() % m.size(), n = std::min<size_t>(1 + rng() % 16, m.size() - at);
        for (size_t k = 0; k < n; ++k) m[at + k] = static_cast<uint8_t>(rng());
        break;
      }
      case 4: {  // delete or duplicate a run
        const size_t at = rng() % m.size(), n = std::min<size_t>(1 + rng() % 64, m.size() - at);
        if (rng() % 2)
          m.erase(m.begin() + at, m.begin() + at + n);
        else
          m.insert(m.begin() + at, archive.begin() + at, archive.begin() + at + n);
        break;
      }
    }
    if (m == archive) continue;
    const Outcome first = decode(m, 1);
    ASSERT_EQ(decode(m, 2), first) << "case " << i << ": not deterministic";
    if (first.ok) {
      ASSERT_EQ(first.data, original) << "case " << i << " decoded to wrong bytes without an error";
      ++decoded;
    } else {
      ASSERT_FALSE(first.message.empty());
      ++errors;
    }
  }
  // Every byte of an archive is covered by a check, so mutants practically never decode.
  EXPECT_GT(errors, cases * 9 / 10);
  RecordProperty("decoded", static_cast<int>(decoded));
}

INSTANTIATE_TEST_SUITE_P(Golden, Fuzz, ::testing::Values("mixed.bin", "words.txt", "pipe.txt"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace mbz
