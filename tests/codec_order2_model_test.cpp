// The classical built-in model: valid tables, determinism, learning, reset and batching.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "codec/order2_model.h"

namespace mbz {
namespace {

double cost_bits(Order2Model& model, const std::string& text) {
  double bits = 0;
  Cdf cdf;
  for (unsigned char c : text) {
    model.predict(cdf);
    EXPECT_TRUE(cdf_is_valid(cdf));
    bits += kTotalBits - std::log2(static_cast<double>(cdf.freq(c)));
    model.update(c);
  }
  return bits;
}

TEST(Order2Model, FirstTableIsUniform) {
  Order2Model model;
  model.reset();
  Cdf cdf;
  model.predict(cdf);
  for (int s = 0; s < 256; ++s) EXPECT_EQ(cdf.freq(s), 256u);
}

TEST(Order2Model, RepeatedSymbolDrivesProbabilityToItsBound) {
  Order2Model model;
  model.reset();
  Cdf cdf;
  for (int i = 0; i < 5000; ++i) model.update('a');
  model.predict(cdf);
  // Every other byte keeps its floor of 1, so 'a' can reach at most 65536 - 255.
  EXPECT_GT(cdf.freq('a'), 65000u);
  EXPECT_LE(cdf.freq('a'), kTotal - 255);
}

TEST(Order2Model, LearnsStructuredText) {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  Order2Model model;
  model.reset();
  const double bpb = cost_bits(model, text) / text.size();
  // Order-2 contexts of this sentence are almost deterministic after a few repeats.
  EXPECT_LT(bpb, 0.6);
}

TEST(Order2Model, ResetForgetsAndReproducesTheSameTables) {
  std::mt19937 rng(5);
  std::string a, b;
  for (int i = 0; i < 20000; ++i) a += static_cast<char>('a' + rng() % 7);
  for (int i = 0; i < 3000; ++i) b += static_cast<char>(rng());
  Order2Model model;
  model.reset();
  const double first = cost_bits(model, a);
  model.reset();
  cost_bits(model, b);
  model.reset();
  EXPECT_EQ(cost_bits(model, a), first);  // bit-identical, not approximately equal
  Order2Model fresh;
  fresh.reset();
  EXPECT_EQ(cost_bits(fresh, a), first);
}

TEST(Order2Factory, BatchOfStreamsEqualsSeparateModels) {
  Order2Factory factory;
  auto batch = factory.create(3);
  ASSERT_EQ(batch->max_streams(), 3u);
  batch->reset(3);
  Order2Model single[3];
  for (auto& m : single) m.reset();
  std::mt19937 rng(6);
  for (int step = 0; step < 2000; ++step) {
    // Streams advance unevenly: stream 2 only every other round.
    std::vector<uint32_t> ids =
        step % 2 ? std::vector<uint32_t>{0, 1} : std::vector<uint32_t>{0, 1, 2};
    std::vector<Cdf> tables(ids.size());
    batch->predict(ids, tables);
    std::vector<uint8_t> bytes;
    for (size_t k = 0; k < ids.size(); ++k) {
      Cdf expected;
      single[ids[k]].predict(expected);
      ASSERT_EQ(tables[k].c, expected.c);
      bytes.push_back(static_cast<uint8_t>('a' + rng() % (3 + ids[k] * 20)));
      single[ids[k]].update(bytes.back());
    }
    batch->update(ids, bytes);
  }
}

TEST(Order2Factory, IdentityIsStable) {
  // The id is what archives record: changing the model's behaviour must change its name
  // and descriptor, and this value with them.
  Order2Factory factory;
  EXPECT_EQ(factory.identity().name, "order2-v1");
  EXPECT_EQ(factory.identity().id_hex(), "1ce229ec9d90f0eb8499b8b94951155c");
}

}  // namespace
}  // namespace mbz
