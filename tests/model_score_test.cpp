// Float scoring: the scorer's inference paths (blocked attention, sliced stacks, windows of
// many streams batched together) give the bits of the plain training-mode forward pass, up
// to float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/megabyte.h"
#include "model/score.h"
#include "model/torch_compat.h"

namespace mbz::model {
namespace {

namespace fs = std::filesystem;

// A tiny model with weights large enough for sharp attention (probabilities that underflow,
// which the inference attention flushes to zero), written as a checkpoint.
// A 1200-byte context (300 patches) puts two query blocks in the global attention.
struct Fixture {
  Megabyte model{nullptr};
  std::string path;
};

Fixture write_model(const std::string& name, const std::string& train_json = "") {
  torch::manual_seed(7);
  Fixture f{Megabyte(config_from_json(
                R"({"patch": 4, "global_width": 32, "global_layers": 2, "global_heads": 2,
                    "local_width": 32, "local_layers": 1, "local_heads": 2, "context": 300})")),
            ""};
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : f.model->parameters()) p.normal_(0.0, 0.3);
  }
  f.model->eval();
  const fs::path dir = fs::temp_directory_path() / ("mbz_model_score_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  f.path = (dir / "m.mbzm").string();
  Checkpoint c;
  c.config_json = f.model->config.to_json();
  c.tensors = model_tensors(f.model);
  c.train_json = train_json;
  write_checkpoint(f.path, c);
  return f;
}

std::vector<uint8_t> random_bytes(int64_t n, uint64_t seed) {
  // Text-like: a small alphabet, so the model's predictions are far from uniform.
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>('a' + rng() % 12);
  return v;
}

// The bits of `stream` in disjoint windows of the context, by the plain forward pass with
// autograd on: the formula attention, no slicing, one window at a time.
double reference_bits(Megabyte& model, const std::vector<uint8_t>& stream, int modality) {
  const int64_t n = static_cast<int64_t>(stream.size()), c = model->config.context_bytes();
  const int64_t len = std::min(n, c);
  double nats = 0;
  for (int64_t end = 0; end < n;) {
    const int64_t next = std::min(n, end + len), start = next - len;
    torch::Tensor x = torch::empty({1, len}, torch::kLong);
    for (int64_t i = 0; i < len; ++i) x[0][i] = int64_t{stream[start + i]};
    const torch::Tensor logp = torch::log_softmax(
        model->forward(x, torch::full({1}, int64_t(modality), torch::kLong)), -1);
    const torch::Tensor picked = logp.gather(2, x.unsqueeze(2)).squeeze(2)[0];
    nats -= picked.narrow(0, end - start, next - end).sum().item<double>();
    end = next;
  }
  return nats / std::log(2.0);
}

TEST(Score, InferenceAttentionMatchesTheFormula) {
  torch::manual_seed(3);
  // T = 600: two whole query blocks and a partial one; scaled so the softmax is sharp.
  const torch::Tensor q = torch::randn({2, 3, 600, 16}) * 4, k = torch::randn({2, 3, 600, 16}) * 4,
                      v = torch::randn({2, 3, 600, 16});
  ASSERT_TRUE(torch::GradMode::is_enabled());
  const torch::Tensor formula = compat::attention(q, k, v, true);
  torch::NoGradGuard no_grad;
  const torch::Tensor fast = compat::attention(q, k, v, true);
  EXPECT_LT((fast - formula).abs().max().item<double>(), 1e-5);
}

TEST(Score, MatchesThePlainForwardPass) {
  Fixture f = write_model("plain");
  FloatScorer scorer(f.path);
  ASSERT_EQ(scorer.context_bytes(), 1200);
  for (int64_t n : {1, 3, 4, 5, 700, 1200, 1201, 3000}) {
    const std::vector<uint8_t> s = random_bytes(n, n);
    const double expected = reference_bits(f.model, s, 1);
    const double got = scorer.bits(s, 1);
    EXPECT_NEAR(got, expected, 1e-5 * expected) << n << " bytes";
    EXPECT_GT(got, 0.5 * n) << n << " bytes";  // real values, not a vacuous zero
  }
}

// A checkpoint that records its training window is read in that window by default; one
// that does not, in its context; a requested window wins either way.
TEST(Score, DefaultWindowIsTheTrainedOne) {
  Fixture trained = write_model("trained_window", R"({"seed": 1, "window": 400, "device": "cpu"})");
  FloatScorer scorer(trained.path);
  EXPECT_EQ(scorer.window(0), 400);
  EXPECT_EQ(scorer.window(800), 800);
  EXPECT_EQ(scorer.window(5000), 1200);
  const std::vector<uint8_t> s = random_bytes(1000, 5);
  EXPECT_EQ(scorer.bits(s, 1), scorer.bits(s, 1, 0, 400));
  EXPECT_NE(scorer.bits(s, 1), scorer.bits(s, 1, 0, 1200));
  Fixture plain = write_model("untrained_window");
  EXPECT_EQ(FloatScorer(plain.path).window(0), 1200);
}

// Windows of many streams of every length class batched together give each stream the bits
// it gets alone, for disjoint and strided windows.
TEST(Score, ManyStreamsAtOnceMatchOneByOne) {
  Fixture f = write_model("many");
  FloatScorer scorer(f.path);
  std::vector<std::vector<uint8_t>> data;
  std::vector<FloatScorer::Stream> streams;
  const std::vector<int64_t> lengths = {
      0,  1,  2,  3,  4,  5,  9,  63, 64, 65, 100, 511,  512,  513,  1199, 1200, 1201, 2500, 7, 40,
      40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 300, 4801, 1000, 1000, 1000, 1000, 1000, 1000, 33};
  for (size_t i = 0; i < lengths.size(); ++i) data.push_back(random_bytes(lengths[i], 100 + i));
  for (size_t i = 0; i < lengths.size(); ++i)
    streams.push_back({data[i], static_cast<int>(i % kModalities)});
  for (int64_t stride : {int64_t{0}, int64_t{500}}) {
    const std::vector<double> together = scorer.bits(streams, stride);
    ASSERT_EQ(together.size(), streams.size());
    for (size_t i = 0; i < streams.size(); ++i) {
      const double alone = scorer.bits(streams[i].bytes, streams[i].modality, stride);
      EXPECT_NEAR(together[i], alone, 1e-5 * alone + 1e-9)
          << lengths[i] << " bytes, stride " << stride;
      if (lengths[i] == 0)
        EXPECT_EQ(together[i], 0.0);
      else
        EXPECT_GT(together[i], 0.5 * lengths[i]);
    }
  }
  EXPECT_TRUE(scorer.bits(std::span<const FloatScorer::Stream>{}).empty());
  const std::vector<FloatScorer::Stream> bad = {{data[3], 4}};
  EXPECT_THROW(scorer.bits(bad), Error);
}

}  // namespace
}  // namespace mbz::model
