// Bounded mutation fuzzing of the decoder: thousands of truncated, bit-flipped, overwritten
// and spliced archives. Each must either decode to exactly the original or fail with an
// mbz::Error; never crash, never hand out wrong bytes, and give the same result twice
// (with 1 and with 2 threads). MBZ_FUZZ_CASES scales the count (default 1500 per archive).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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

// A golden archive and the share of case_count() it gets: the context mixer decodes a few
// kilobytes in milliseconds, so its archives get fewer cases.
struct FuzzTarget {
  const char* name;
  int divisor;
};

class Fuzz : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(Fuzz, MutatedArchivesNeverDecodeWrongly) {
  const fs::path golden = fs::path(MBZ_TEST_DATA_DIR) / "golden";
  const std::string name = GetParam().name;
  const auto archive = read_file(golden / (name + ".mbz"));
  const auto original = read_file(golden / name);
  ASSERT_FALSE(archive.empty());
  std::mt19937_64 rng(0x6d627a);
  const size_t cases = case_count() / GetParam().divisor;
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

// Every truncation of a hybrid archive (lanes, the context mixer with the byte model's
// tables) must be an mbz::Error; so must a flipped bit in every third byte, unless it
// falls in the slack of a coder's last bytes and decodes to exactly the original. Never a
// crash or wrong bytes; the same with 1 and 2 threads (checked on every 4th mutant, to
// keep the test quick: each decode runs the context mixer).
TEST(FuzzHybrid, EveryTruncationAndByteFlipsAreErrors) {
  const fs::path golden = fs::path(MBZ_TEST_DATA_DIR) / "golden";
  const auto archive = read_file(golden / "hybrid.txt.mbz");
  const auto original = read_file(golden / "hybrid.txt");
  ASSERT_EQ(decode(archive, 1).data, original);
  std::map<int, int> codes;
  size_t same = 0, count = 0;
  auto check = [&](const std::vector<uint8_t>& mutant, bool truncated, size_t at) {
    const Outcome first = decode(mutant, 1);
    if (first.ok) {
      ASSERT_FALSE(truncated) << "the archive cut to " << at << " bytes decoded";
      ASSERT_EQ(first.data, original) << "a flip at " << at << " decoded to wrong bytes";
      ++same;
    } else {
      ASSERT_FALSE(first.message.empty());
      ++codes[first.code];
    }
    if (count++ % 4 == 0) {
      ASSERT_EQ(decode(mutant, 2), first) << "not deterministic: " << at;
    }
  };
  for (size_t n = 0; n < archive.size(); ++n)
    check({archive.begin(), archive.begin() + static_cast<std::ptrdiff_t>(n)}, true, n);
  for (size_t i = 0; i < archive.size(); i += 3) {
    auto mutant = archive;
    mutant[i] ^= static_cast<uint8_t>(0x01 << (i % 8));
    check(mutant, false, i);
  }
  // Truncations are found as such; flipped payload bits mostly by the chunk checksum.
  EXPECT_GT(codes[static_cast<int>(ErrorCode::kCorruptTruncated)], 0);
  EXPECT_GT(codes[static_cast<int>(ErrorCode::kCorruptChunk)], 0);
  EXPECT_LT(same, archive.size() / 3 / 20);
  RecordProperty("decoded_exactly", static_cast<int>(same));
}

INSTANTIATE_TEST_SUITE_P(Golden, Fuzz,
                         ::testing::Values(FuzzTarget{"mixed.bin", 1}, FuzzTarget{"words.txt", 1},
                                           FuzzTarget{"pipe.txt", 1}, FuzzTarget{"hybrid.txt", 4},
                                           FuzzTarget{"cm.bin", 5}, FuzzTarget{"model.txt", 2},
                                           FuzzTarget{"model-lanes.txt", 6}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace mbz
