// The range coder against skewed, uniform and random tables, and the table builder.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "codec/range_coder.h"

namespace mbz {
namespace {

Cdf uniform_table() {
  std::array<uint64_t, 256> w;
  w.fill(1);
  Cdf cdf;
  cdf_from_weights(w, cdf);
  return cdf;
}

// One symbol takes everything the others' minimum of 1 leaves.
Cdf skewed_table(int heavy) {
  std::array<uint64_t, 256> w{};
  w[heavy] = 1000000;
  Cdf cdf;
  cdf_from_weights(w, cdf);
  return cdf;
}

std::vector<uint8_t> encode_all(const std::vector<Cdf>& tables, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  RangeEncoder enc(out);
  for (size_t i = 0; i < data.size(); ++i) enc.encode(tables[i % tables.size()], data[i]);
  enc.finish();
  return out;
}

std::vector<uint8_t> decode_all(const std::vector<Cdf>& tables, std::span<const uint8_t> payload,
                                size_t n) {
  RangeDecoder dec(payload);
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = dec.decode(tables[i % tables.size()]);
  return out;
}

TEST(CdfFromWeights, UniformWeightsGiveEqualFrequencies) {
  const Cdf cdf = uniform_table();
  ASSERT_TRUE(cdf_is_valid(cdf));
  for (int s = 0; s < 256; ++s) EXPECT_EQ(cdf.freq(s), 256u) << s;
}

TEST(CdfFromWeights, ZeroWeightsStillGiveEverySymbolOne) {
  const Cdf cdf = skewed_table(7);
  ASSERT_TRUE(cdf_is_valid(cdf));
  EXPECT_EQ(cdf.freq(7), kTotal - 255);
  EXPECT_EQ(cdf.freq(0), 1u);
  EXPECT_EQ(cdf.freq(255), 1u);
}

TEST(CdfFromWeights, AllZeroWeightsGiveUniform) {
  std::array<uint64_t, 256> w{};
  Cdf cdf;
  cdf_from_weights(w, cdf);
  EXPECT_EQ(cdf.freq(0), 256u);
  EXPECT_EQ(cdf.freq(200), 256u);
}

TEST(CdfFromWeights, ProportionalAndValidForRandomWeights) {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    std::array<uint64_t, 256> w;
    const int bits = 1 + trial % 23;  // sums below 2^31: no pre-shift, tight bounds hold
    for (auto& x : w) x = rng() >> (64 - bits);
    Cdf cdf;
    cdf_from_weights(w, cdf);
    ASSERT_TRUE(cdf_is_valid(cdf)) << trial;
    uint64_t sum = 0;
    for (auto x : w) sum += x;
    if (sum == 0) continue;
    int heaviest = 0;
    for (int s = 0; s < 256; ++s)
      if (w[s] > w[heaviest]) heaviest = s;
    for (int s = 0; s < 256; ++s) {
      // Beyond its 1, a symbol gets its proportional share rounded down (the fixed-point
      // reciprocal may drop one more); the heaviest also gets what rounding left over.
      const double share = static_cast<double>(w[s]) * (kTotal - 256) / sum;
      const double extra = cdf.freq(s) - 1.0;
      EXPECT_GE(extra, std::floor(share) - 1) << trial << " " << s;
      if (s != heaviest)
        EXPECT_LE(extra, share + 1e-9) << trial << " " << s;
      else
        EXPECT_LE(extra, share + 512) << trial;
    }
  }
}

TEST(CdfFromWeights, HugeWeightsAreShiftedAndStayValid) {
  std::array<uint64_t, 256> w;
  for (int s = 0; s < 256; ++s) w[s] = (uint64_t{1} << 54) + s;
  Cdf cdf;
  cdf_from_weights(w, cdf);
  ASSERT_TRUE(cdf_is_valid(cdf));
  EXPECT_EQ(cdf.freq(0), 256u);  // all equal after the shift drops the small differences
  EXPECT_EQ(cdf.freq(255), 256u);
}

TEST(CdfFind, FindsTheIntervalOfEveryTarget) {
  const Cdf cdf = skewed_table(100);
  for (uint32_t t = 0; t < kTotal; t += 7) {
    const int s = cdf.find(t);
    EXPECT_LE(cdf.start(s), t);
    EXPECT_LT(t, cdf.start(s) + cdf.freq(s));
  }
  EXPECT_EQ(cdf.find(0), 0);
  EXPECT_EQ(cdf.find(kTotal - 1), 255);
}

TEST(RangeCoder, RoundTripUniform) {
  std::mt19937 rng(2);
  std::vector<uint8_t> data(100000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const std::vector<Cdf> tables{uniform_table()};
  const auto payload = encode_all(tables, data);
  EXPECT_EQ(decode_all(tables, payload, data.size()), data);
  // Uniform tables cost 8 bits per byte; the coder's overhead is a few bytes.
  EXPECT_LE(payload.size(), data.size() + 8);
  EXPECT_GE(payload.size(), data.size() - 8);
}

TEST(RangeCoder, RoundTripSkewedLikelySymbolsCostLittle) {
  std::vector<uint8_t> data(200000, 'e');
  const std::vector<Cdf> tables{skewed_table('e')};
  const auto payload = encode_all(tables, data);
  EXPECT_EQ(decode_all(tables, payload, data.size()), data);
  // -log2((65536-255)/65536) = 0.00563 bits a byte, plus the range's truncation.
  EXPECT_LT(payload.size(), 200u);
}

TEST(RangeCoder, RoundTripSkewedUnlikelySymbolsCostSixteenBits) {
  std::vector<uint8_t> data(20000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i % 255);  // never 255
  const std::vector<Cdf> tables{skewed_table(255)};
  const auto payload = encode_all(tables, data);
  EXPECT_EQ(decode_all(tables, payload, data.size()), data);
  EXPECT_NEAR(static_cast<double>(payload.size()), data.size() * 2.0, 16.0);
}

TEST(RangeCoder, RoundTripRandomTablesAndCarries) {
  // Many different random tables, symbols drawn mostly from the likely ones: exercises
  // carry propagation through runs of 0xFF and every renormalization path.
  std::mt19937_64 rng(3);
  std::vector<Cdf> tables(64);
  for (auto& t : tables) {
    std::array<uint64_t, 256> w;
    for (auto& x : w) x = (rng() % 4 == 0) ? rng() % 100000 : 0;
    cdf_from_weights(w, t);
  }
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 17u, 1000u, 300000u}) {
    std::vector<uint8_t> data(n);
    for (size_t i = 0; i < n; ++i) {
      const Cdf& t = tables[i % tables.size()];
      data[i] = static_cast<uint8_t>(t.find(static_cast<uint32_t>(rng() % kTotal)));
    }
    const auto payload = encode_all(tables, data);
    EXPECT_EQ(decode_all(tables, payload, n), data) << n;
  }
}

// The flush writes the shortest tail that the decoder's zeros complete: every short
// message, of likely, unlikely and random symbols, decodes, and its payload is within two
// bytes of its information content.
TEST(RangeCoder, ShortMessagesEndInFewBytes) {
  std::mt19937 rng(21);
  std::vector<Cdf> tables(8);
  for (Cdf& t : tables) {
    std::array<uint64_t, 256> w;
    for (uint64_t& x : w) x = rng() % 1000;
    cdf_from_weights(w, t);
  }
  tables.push_back(skewed_table(3));
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> data(rng() % 40);
    double bits = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      const Cdf& t = tables[i % tables.size()];
      data[i] = static_cast<uint8_t>(trial % 3 == 0 ? 3 : rng() % 256);
      bits += std::log2(double(kTotal) / t.freq(data[i]));
    }
    const auto payload = encode_all(tables, data);
    ASSERT_EQ(decode_all(tables, payload, data.size()), data) << "trial " << trial;
    EXPECT_LE(double(payload.size()), std::ceil(bits / 8) + 2) << "trial " << trial;
  }
}

TEST(RangeCoder, EmptyInputGivesEmptyPayload) {
  std::vector<uint8_t> out;
  RangeEncoder enc(out);
  enc.finish();
  EXPECT_TRUE(out.empty());
}

TEST(RangeCoder, GarbageNeverCrashesAndIsDeterministic) {
  std::mt19937 rng(4);
  const std::vector<Cdf> tables{skewed_table(3), uniform_table()};
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<uint8_t> garbage(rng() % 64);
    for (auto& b : garbage) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(decode_all(tables, garbage, 500), decode_all(tables, garbage, 500));
  }
}

}  // namespace
}  // namespace mbz
