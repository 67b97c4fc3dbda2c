// Sampling from the exact engine (model/sample.h): the integer generator, temperature and
// top-p on integer weights, windows past the context, and the same bytes from both engines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/sample.h"

namespace mbz::model {
namespace {

// A tiny exact model (context 128 bytes, patches of 4) with weights large enough that its
// distributions are far from uniform.
ExactModel tiny_exact(uint64_t seed) {
  torch::manual_seed(seed);
  Megabyte network(preset("tiny"));
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : network->parameters()) p.normal_(0.0, 0.3);
  }
  network->eval();
  const torch::Tensor calibration = torch::randint(0, 256, {4, 96}, torch::kLong);
  return ExactModel::quantize(network, calibration, torch::tensor({0, 1, 2, 3}));
}

const ExactModel& shared_model() {
  static const ExactModel model = tiny_exact(11);
  return model;
}

// The engine's output table, as ExactModel::quantize makes it.
std::vector<int64_t> head_table() {
  const torch::Tensor t = shared_model().head_table.contiguous();
  return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()};
}

SampleRequest request(uint8_t modality, const std::vector<uint8_t>& prompt, size_t add) {
  SampleRequest r;
  r.modality = modality;
  r.bytes = prompt;
  r.known.assign(prompt.size(), 1);
  r.known.resize(prompt.size() + add, 0);
  r.bytes.resize(r.known.size(), 0);
  return r;
}

std::vector<uint8_t> text_prompt(size_t n) {
  const std::string s = "the model draws the bytes that follow; ";
  std::vector<uint8_t> out;
  while (out.size() < n) out.push_back(uint8_t(s[out.size() % s.size()]));
  return out;
}

TEST(SampleRng, MatchesTheReferenceGenerator) {
  // splitmix64 seeding and xoshiro256** from the authors' C code, computed independently
  // (Python, big integers): a change here changes every seeded output.
  Rng rng(0);
  EXPECT_EQ(rng.next(), 0x99ec5f36cb75f2b4u);
  EXPECT_EQ(rng.next(), 0xbf6e1f784956452au);
  EXPECT_EQ(rng.next(), 0x1a5f849d4933e6e0u);
  Rng one(1);
  EXPECT_EQ(one.next(), 0xb3f2af6d0fc710c5u);
}

TEST(SampleRng, BelowIsInRangeAndUnbiased) {
  Rng rng(3);
  EXPECT_EQ(rng.below(1), 0u);
  EXPECT_THROW(rng.below(0), Error);
  std::array<int, 3> counts{};
  for (int i = 0; i < 30000; ++i) {
    const uint64_t v = rng.below(3);
    ASSERT_LT(v, 3u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
  // Near 2^64 the rejection matters: n = 2^63 + 1 rejects almost half of all draws.
  const uint64_t big = (uint64_t{1} << 63) + 1;
  for (int i = 0; i < 100; ++i) EXPECT_LT(rng.below(big), big);
}

TEST(SampleFixed, RoundsAndRefuses) {
  EXPECT_EQ(to_fixed(1.0, 64, "t"), kFixedOne);
  EXPECT_EQ(to_fixed(0.5, 64, "t"), kFixedOne / 2);
  EXPECT_EQ(to_fixed(0.0, 1, "p"), 0u);
  EXPECT_EQ(to_fixed(0.95, 1, "p"), 62259u);  // 0.95 * 65536 = 62259.2
  EXPECT_THROW(to_fixed(-0.1, 1, "p"), Error);
  EXPECT_THROW(to_fixed(1.01, 1, "p"), Error);
  EXPECT_THROW(to_fixed(std::nan(""), 64, "t"), Error);
}

// Weights as the engine makes them: head_table[t] for integer distances t.
std::array<int64_t, 256> weights_at(const std::vector<int64_t>& table,
                                    const std::array<int64_t, 256>& distance) {
  std::array<int64_t, 256> w;
  for (size_t o = 0; o < 256; ++o) w[o] = table[size_t(distance[o])];
  return w;
}

TEST(SampleChooser, TemperatureRescalesDistances) {
  const std::vector<int64_t> table = head_table();
  std::array<int64_t, 256> t;
  for (size_t o = 0; o < 256; ++o) t[o] = int64_t(o * 4);  // 0 .. 1020: the exact range
  const std::array<int64_t, 256> w = weights_at(table, t);

  SampleSettings s;
  s.temperature = kFixedOne;  // the engine's weights as they are
  EXPECT_EQ(ByteChooser(table, s).shape(w), w);
  s.temperature = kFixedOne / 2;  // distances doubled
  std::array<int64_t, 256> expected;
  for (size_t o = 0; o < 256; ++o) expected[o] = table[std::min<size_t>(o * 8, table.size() - 1)];
  EXPECT_EQ(ByteChooser(table, s).shape(w), expected);
  s.temperature = 2 * kFixedOne;  // distances halved
  for (size_t o = 0; o < 256; ++o) expected[o] = table[o * 2];
  EXPECT_EQ(ByteChooser(table, s).shape(w), expected);
  s.temperature = 3 * kFixedOne;  // round(t / 3), half up: 4 -> 1, 8 -> 3
  EXPECT_EQ(ByteChooser(table, s).shape(w)[1], table[1]);
  EXPECT_EQ(ByteChooser(table, s).shape(w)[2], table[3]);
  // Past the strictly decreasing part a weight reads back as the largest t it stands for:
  // zero as the table's last entry, so it stays zero at temperatures up to 1.
  std::array<int64_t, 256> far = t;
  far[7] = int64_t(table.size()) - 1;
  s.temperature = kFixedOne / 2;
  EXPECT_EQ(ByteChooser(table, s).shape(weights_at(table, far))[7], 0);
  s.temperature = 4 * kFixedOne;
  EXPECT_EQ(ByteChooser(table, s).shape(weights_at(table, far))[7], table[(table.size() - 1) / 4]);
}

TEST(SampleChooser, TemperatureZeroIsArgmaxWithoutDraws) {
  const std::vector<int64_t> table = head_table();
  std::array<int64_t, 256> t;
  t.fill(100);
  t[200] = 0;
  t[90] = 0;  // a tie: the lower byte value wins
  SampleSettings s;
  s.temperature = 0;
  Rng rng(5), fresh(5);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(ByteChooser(table, s).choose(weights_at(table, t), rng), 90);
  EXPECT_EQ(rng.next(), fresh.next());  // nothing drawn
}

TEST(SampleChooser, TopPKeepsTheMostLikelyBytes) {
  const std::vector<int64_t> table = head_table();
  // Distances 0, 32, 64, ... : weights 2^30 e^(-k/2): shares 39 %, 24 %, 14 %, 9 %, ...
  std::array<int64_t, 256> t;
  for (size_t o = 0; o < 256; ++o) t[o] = std::min<int64_t>(int64_t(o) * 32, 1536);
  std::array<int64_t, 256> order_t = t;
  std::swap(order_t[0], order_t[9]);  // the most likely byte is 9, then 1, 2, ...
  const std::array<int64_t, 256> w = weights_at(table, order_t);
  SampleSettings s;
  auto kept = [&](double p) {
    s.top_p = to_fixed(p, 1, "p");
    const std::array<int64_t, 256> shaped = ByteChooser(table, s).shape(w);
    std::vector<int> bytes;
    for (int o = 0; o < 256; ++o)
      if (shaped[size_t(o)]) bytes.push_back(o);
    return bytes;
  };
  EXPECT_EQ(kept(0.0), std::vector<int>({9}));
  EXPECT_EQ(kept(0.39), std::vector<int>({9}));
  EXPECT_EQ(kept(0.5), std::vector<int>({1, 9}));
  EXPECT_EQ(kept(0.7), std::vector<int>({1, 2, 9}));
  EXPECT_EQ(kept(1.0).size(), size_t(256 - std::count(w.begin(), w.end(), 0)));
  // Draws stay in the set and follow the weights: 0.39 / 0.63 of them are byte 9.
  s.top_p = to_fixed(0.5, 1, "p");
  const ByteChooser chooser(table, s);
  Rng rng(8);
  int nines = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint8_t b = chooser.choose(w, rng);
    ASSERT_TRUE(b == 9 || b == 1) << int(b);
    nines += b == 9;
  }
  EXPECT_NEAR(nines / 20000.0, 1.0 / (1.0 + std::exp(-0.5)), 0.01);
}

TEST(SampleChooser, RefusesATableThatDoesNotDecrease) {
  std::vector<int64_t> table = head_table();
  std::swap(table[10], table[20]);
  SampleSettings s;
  EXPECT_NO_THROW(ByteChooser(table, s));  // temperature 1 reads no distances
  s.temperature = kFixedOne / 2;
  try {
    ByteChooser chooser(table, s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
  }
}

TEST(Sample, SameSeedSameBytesOtherSeedOtherBytes) {
  const SampleRequest r = request(1, text_prompt(20), 60);
  SampleSettings s;
  s.seed = 42;
  const std::vector<uint8_t> a = sample(shared_model(), r, s), b = sample(shared_model(), r, s);
  ASSERT_EQ(a.size(), 80u);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(std::equal(r.bytes.begin(), r.bytes.begin() + 20, a.begin()));
  s.seed = 43;
  EXPECT_NE(sample(shared_model(), r, s), a);
}

// The byte at `pos` is the most likely one given the window the sampler used, recomputed
// with the encoder's full pass: the window rule of sample.h written out again.
void expect_greedy(const ExactModel& model, const SampleRequest& r, const std::vector<uint8_t>& out,
                   int64_t overlap) {
  const uint64_t context = uint64_t(sample_context(model));
  const uint64_t first = std::find(r.known.begin(), r.known.end(), 0) - r.known.begin();
  uint64_t window = first < context ? 0 : first - uint64_t(overlap);
  for (uint64_t pos = first; pos < out.size(); ++pos) {
    if (pos - window == context) window = pos - uint64_t(overlap);
    if (r.known[pos]) {
      EXPECT_EQ(out[pos], r.bytes[pos]) << "known byte " << pos;
      continue;
    }
    const std::vector<int64_t> ids(out.begin() + int64_t(window), out.begin() + int64_t(pos) + 1);
    const torch::Tensor w = model.forward(torch::tensor(ids).view({1, -1}),
                                          torch::tensor({int64_t(r.modality)}))[0][-1];
    ASSERT_EQ(out[pos], w.argmax().item<int64_t>()) << "position " << pos << ", window " << window;
  }
}

TEST(Sample, TemperatureZeroIsTheArgmaxInEveryWindow) {
  const ExactModel& model = shared_model();
  SampleSettings s;
  s.temperature = 0;
  s.overlap = 48;
  // Past the context (128) twice, from a short prompt and from one longer than the context.
  for (size_t prompt : {size_t(5), size_t(300)}) {
    const SampleRequest r = request(2, text_prompt(prompt), 330);
    const std::vector<uint8_t> out = sample(model, r, s);
    expect_greedy(model, r, out, s.overlap);
  }
  // The default overlap is half the context; top-p 0 keeps only the most likely byte.
  SampleSettings p;
  p.top_p = 0;
  p.seed = 9;
  const SampleRequest r = request(3, text_prompt(10), 200);
  const std::vector<uint8_t> out = sample(model, r, p);
  expect_greedy(model, r, out, 64);
  p.temperature = 0;
  EXPECT_EQ(sample(model, r, p), out);
}

TEST(Sample, KnownBytesAnywhereAreKept) {
  SampleRequest r = request(2, text_prompt(30), 170);
  for (size_t i = 60; i < 200; i += 7) r.known[i] = 1, r.bytes[i] = uint8_t(i);
  SampleSettings s;
  s.seed = 4;
  s.temperature = kFixedOne * 3 / 2;
  s.top_p = to_fixed(0.9, 1, "p");
  const std::vector<uint8_t> out = sample(shared_model(), r, s);
  for (size_t i = 0; i < r.bytes.size(); ++i)
    if (r.known[i]) {
      ASSERT_EQ(out[i], r.bytes[i]) << i;
    }
  // Nothing to draw: the request comes back as it is.
  SampleRequest all = request(1, text_prompt(40), 0);
  EXPECT_EQ(sample(shared_model(), all, s), all.bytes);
}

TEST(Sample, BothEnginesGiveTheSameBytes) {
  // The LibTorch engine is the one CUDA runs; the plain C++ one runs on the CPU.
  const SampleRequest r = request(1, text_prompt(100), 200);
  SampleSettings s;
  s.seed = 77;
  s.temperature = kFixedOne * 4 / 5;
  s.top_p = to_fixed(0.95, 1, "p");
  const std::vector<uint8_t> plain = sample(shared_model(), r, s);
  s.torch_engine = true;
  EXPECT_EQ(sample(shared_model(), r, s), plain);
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: CPU engines only";
  const ExactModel cuda = shared_model().to(torch::kCUDA);
  EXPECT_EQ(sample(cuda, r, s), plain);
}

TEST(Sample, RefusesMalformedRequests) {
  SampleRequest r = request(1, text_prompt(4), 4);
  SampleSettings s;
  s.overlap = 128;  // the whole context: no room to draw
  EXPECT_THROW(sample(shared_model(), r, s), Error);
  s.overlap = -1;
  EXPECT_THROW(sample(shared_model(), r, s), Error);
  s.overlap = 0;
  r.known.pop_back();
  EXPECT_THROW(sample(shared_model(), r, s), Error);
  r = request(4, text_prompt(4), 4);
  EXPECT_THROW(sample(shared_model(), r, s), Error);
}

class SampleFiles : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("mbz_sample_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(SampleFiles, LoadsExactModelsAndTheirModalityScales) {
  Checkpoint file = shared_model().to_checkpoint();
  // Audio's own head multipliers (model/EXACT.md, "Activation scales by modality").
  torch::Tensor own;
  for (const NamedTensor& t : file.tensors)
    if (t.name == "head.mult") own = torch::div(t.tensor, 2, "floor");
  ASSERT_TRUE(own.defined());
  file.tensors.push_back({"modality3/head.mult", own});
  write_checkpoint(at("m.mbzq"), file);

  const auto text = load_sample_model(at("m.mbzq"), 1, "cpu");
  const auto audio = load_sample_model(at("m.mbzq"), 3, "cpu");
  EXPECT_TRUE(torch::equal(text->head.mult, shared_model().head.mult));
  EXPECT_TRUE(torch::equal(audio->head.mult, own));
  EXPECT_EQ(sample_context(*text), 128);
  const SampleRequest r = request(1, text_prompt(10), 30);
  SampleSettings s;
  s.seed = 2;
  EXPECT_EQ(sample(*text, r, s), sample(shared_model(), r, s));
}

TEST_F(SampleFiles, RefusesFloatCheckpointsAndOtherFiles) {
  torch::manual_seed(1);
  Megabyte network(preset("tiny"));
  Checkpoint float_file;
  float_file.config_json = network->config.to_json();
  float_file.tensors = model_tensors(network);
  write_checkpoint(at("f.mbzm"), float_file);
  try {
    load_sample_model(at("f.mbzm"), 1, "cpu");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
    EXPECT_NE(std::string(e.what()).find("mbz quantize"), std::string::npos) << e.what();
  }
  { std::ofstream(at("junk"), std::ios::binary) << "not a model file at all"; }
  try {
    load_sample_model(at("junk"), 1, "cpu");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
  }
  try {
    load_sample_model(at("missing"), 1, "cpu");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.band(), ErrorBand::kIo);
  }
  EXPECT_THROW(load_sample_model(at("m.mbzq"), 1, "tpu"), Error);
}

}  // namespace
}  // namespace mbz::model
