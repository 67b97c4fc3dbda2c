// The network: shapes, causality (no position sees a later byte) and parity of the cached
// incremental decoder with the full forward pass.
#include <gtest/gtest.h>

#include "codec/error.h"
#include "model/megabyte.h"

namespace mbz::model {
namespace {

Megabyte tiny_model(uint64_t seed) {
  torch::manual_seed(seed);
  Megabyte model(preset("tiny"));
  model->eval();
  return model;
}

TEST(Megabyte, ShapesAndParameterCount) {
  Megabyte model = tiny_model(1);
  const Config& c = model->config;
  for (int64_t t : {int64_t{1}, c.patch - 1, c.patch, c.patch + 1, c.context_bytes()}) {
    const torch::Tensor x = torch::randint(0, 256, {3, t}, torch::kLong);
    const torch::Tensor logits = model->forward(x, torch::tensor({0, 1, 3}, torch::kLong));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, t, 256})) << "T = " << t;
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
  EXPECT_GT(model->parameter_count(), 50'000);
  EXPECT_LT(model->parameter_count(), 500'000);
  EXPECT_THROW(model->forward(torch::zeros({1, c.context_bytes() + 1}, torch::kLong),
                              torch::zeros({1}, torch::kLong)),
               Error);
}

TEST(Megabyte, PresetsAndJson) {
  EXPECT_EQ(preset("small").context_bytes(), 8192);
  EXPECT_GE(preset("base").context_bytes(), 8192);
  const Config c = config_from_json(preset("small").to_json());
  EXPECT_EQ(c.to_json(), preset("small").to_json());
  EXPECT_THROW(config_from_json(R"({"patch": 3, "global_width": 64})"), Error);  // 64 % 3
  EXPECT_THROW(config_from_json(R"({"layers": 2})"), Error);                     // unknown field
  EXPECT_THROW(config_from_json(R"({"norm": "layernorm"})"), Error);
  EXPECT_THROW(preset("huge"), Error);
}

// Changing byte t never changes the distribution at positions <= t (logits at position i
// predict byte i from bytes < i), at every t of a stream spanning several patches.
TEST(Megabyte, NoLeakFromLaterBytes) {
  Megabyte model = tiny_model(2);
  torch::NoGradGuard no_grad;
  const int64_t t = 3 * model->config.patch + 2;
  const torch::Tensor x = torch::randint(0, 256, {1, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({1}, torch::kLong);
  const torch::Tensor base = model->forward(x, modality);
  for (int64_t i = 0; i < t; ++i) {
    torch::Tensor y = x.clone();
    y[0][i] = (y[0][i].item<int64_t>() + 1 + i * 37) % 256;
    const torch::Tensor changed = model->forward(y, modality);
    EXPECT_TRUE(torch::equal(base.narrow(1, 0, i + 1), changed.narrow(1, 0, i + 1)))
        << "byte " << i << " leaks into an earlier or equal position";
    if (i + 1 < t) {
      EXPECT_FALSE(torch::allclose(base.narrow(1, i + 1, 1), changed.narrow(1, i + 1, 1)))
          << "byte " << i << " does not reach position " << i + 1;
    }
  }
  // Byte 0x00 is an ordinary byte: it is not padding, so it changes what follows.
  torch::Tensor zero = x.clone();
  zero[0][0] = 0;
  torch::Tensor one = x.clone();
  one[0][0] = 1;
  EXPECT_FALSE(torch::allclose(model->forward(zero, modality), model->forward(one, modality)));
  // The modality's start patch conditions everything.
  EXPECT_FALSE(torch::allclose(base, model->forward(x, torch::tensor({2}, torch::kLong))));
}

// Cached incremental decoding gives the same distributions as one full forward pass at every
// position of several random streams of different modalities.
TEST(Megabyte, IncrementalMatchesFullForward) {
  Megabyte model = tiny_model(3);
  torch::NoGradGuard no_grad;
  const int64_t n = 4, t = model->config.context_bytes();
  const torch::Tensor x = torch::randint(0, 256, {n, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3}, torch::kLong);
  const torch::Tensor full = torch::log_softmax(model->forward(x, modality), -1);  // [N, T, 256]
  Decoder decoder(model, modality);
  double worst = 0;
  for (int64_t i = 0; i < t; ++i) {
    const torch::Tensor step = torch::log_softmax(decoder.next_logits(), -1);  // [N, 256]
    worst = std::max(worst, (step - full.select(1, i)).abs().max().item<double>());
    decoder.push(x.select(1, i));
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_THROW(decoder.next_logits(), Error);  // the context is full
}

}  // namespace
}  // namespace mbz::model
