// The network: shapes, causality (no position sees a later byte), parity of the cached
// incremental decoder with the full forward pass, and fake quantization (quantization-aware
// training): off it changes nothing; on, it computes with the exact engine's int8 weights
// and rounds the activations at the engine's int8 sites to their running ranges.
#include <gtest/gtest.h>

#include "codec/error.h"
#include "model/exact.h"
#include "model/megabyte.h"
#include "model/torch_compat.h"

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

// The float forward pass as it was before fake quantization existed, from the modules'
// parameters, operation for operation: the network with fake quantization off must give
// exactly these logits.
torch::Tensor reference_stack(Transformer& stack, torch::Tensor x) {
  for (const auto& module : *stack->blocks) {
    BlockImpl& block = *module->as<Block>();
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2), h = stack->heads;
    const torch::Tensor qkv =
        block.attn->qkv(block.norm1(x)).view({b, t, 3, h, d / h}).permute({2, 0, 3, 1, 4});
    const torch::Tensor y = compat::attention(qkv[0], qkv[1], qkv[2], true);
    x = x + block.attn->out(y.transpose(1, 2).reshape({b, t, d}));
    x = x + block.down(torch::relu(block.up(block.norm2(x))).square());
  }
  return stack->norm(x);
}

torch::Tensor reference_logits(Megabyte& m, const torch::Tensor& bytes,
                               const torch::Tensor& modality) {
  const int64_t b = bytes.size(0), t = bytes.size(1), p = m->config.patch, k = (t + p - 1) / p;
  const torch::Tensor patches =
      torch::nn::functional::pad(
          bytes, torch::nn::functional::PadFuncOptions({0, k * p - t}).value(kPadId))
          .view({b, k, p});
  const torch::Tensor start = m->global_start.index_select(0, modality).unsqueeze(1);
  const torch::Tensor embedded =
      m->global_bytes(patches.narrow(1, 0, k - 1)).reshape({b, k - 1, m->config.global_width});
  const torch::Tensor global_out = reference_stack(
      m->global, torch::cat({start, embedded}, 1) + m->global_position.narrow(0, 0, k));
  const torch::Tensor condition =
      m->global_to_local_proj(global_out.reshape({b, k, p, m->config.global_width / p}));
  const torch::Tensor local_ids = torch::cat(
      {torch::full({b, k, 1}, kStartId, patches.options()), patches.narrow(2, 0, p - 1)}, 2);
  const torch::Tensor local_in = condition + m->local_bytes(local_ids) + m->local_position;
  const torch::Tensor local_out =
      reference_stack(m->local, local_in.reshape({b * k, p, m->config.local_width}));
  return m->head(local_out).view({b, k * p, kByteValues}).narrow(1, 0, t);
}

TEST(FakeQuant, OffChangesNothing) {
  Megabyte model = tiny_model(4);
  model->train();  // where the running ranges would move, were fake quantization on
  const int64_t t = model->config.context_bytes() - 3;
  const torch::Tensor x = torch::randint(0, 256, {3, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 3}, torch::kLong);
  EXPECT_FALSE(model->fake_quant->on);  // off by default
  const torch::Tensor expected = reference_logits(model, x, modality);
  EXPECT_TRUE(torch::equal(model->forward(x, modality), expected));
  const torch::Tensor loss = model->loss(x, modality);
  const torch::Tensor expected_loss =
      torch::nn::functional::cross_entropy(expected.reshape({-1, kByteValues}), x.reshape({-1}));
  EXPECT_EQ(loss.item<float>(), expected_loss.item<float>());
  EXPECT_FALSE(model->local->norm_range.defined());  // nothing measured

  // On, the logits move; off again, they are the float network's once more.
  model->fake_quant->on = true;
  const torch::Tensor quantized = model->forward(x, modality);
  EXPECT_FALSE(torch::allclose(quantized, expected));
  EXPECT_TRUE(model->local->norm_range.defined());
  model->fake_quant->on = false;
  EXPECT_TRUE(torch::equal(model->forward(x, modality), expected));
}

// A tiny model with weights large enough that int8 rounding matters (as model_exact_test's).
Megabyte coarse_model(uint64_t seed) {
  Megabyte model = tiny_model(seed);
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : model->parameters()) p.normal_(0.0, 0.3);
  return model;
}

// The fake-quantized weight of every Linear the exact engine quantizes is the engine's int8
// weight times the row's scale max |w| / 127, exactly; gradients pass straight through.
TEST(FakeQuant, WeightsAreTheExactEnginesInt8) {
  Megabyte model = coarse_model(5);
  const torch::Tensor calibration = torch::randint(0, 256, {4, 96}, torch::kLong);
  const ExactModel exact = ExactModel::quantize(model, calibration, torch::tensor({0, 1, 2, 3}));
  model->fake_quant->on = true;
  auto expect_same = [&](torch::nn::Linear& l, const ExactLinear& e, const std::string& name) {
    const torch::Tensor w = l->weight.detach();
    const torch::Tensor fake = model->fake_quant->weight(w);
    EXPECT_TRUE(torch::equal(fake, e.weight * (w.abs().amax(1, true) / 127))) << name;
    EXPECT_FALSE(torch::equal(fake, w)) << name;
    // Through linear(): the product with the rounded weight.
    const torch::Tensor x = torch::randn({2, w.size(1)});
    EXPECT_TRUE(
        torch::equal(model->fake_quant->linear(l, x), torch::nn::functional::linear(x, fake)))
        << name;
  };
  for (auto [stack, exact_stack] :
       {std::pair{&model->global, &exact.global}, std::pair{&model->local, &exact.local}}) {
    for (size_t i = 0; i < (*stack)->blocks->size(); ++i) {
      BlockImpl& b = *(*stack)->blocks[i]->as<Block>();
      const ExactBlock& e = exact_stack->blocks[i];
      expect_same(b.attn->qkv, e.qkv, "qkv");
      expect_same(b.attn->out, e.out, "out");
      expect_same(b.up, e.up, "up");
      expect_same(b.down, e.down, "down");
    }
  }
  expect_same(model->global_to_local_proj, exact.global_to_local, "global_to_local");
  expect_same(model->head, exact.head, "head");

  // The straight-through estimator: d(sum of the rounded weight)/dw is 1 everywhere.
  torch::Tensor w = model->head->weight.detach().clone().requires_grad_(true);
  model->fake_quant->weight(w).sum().backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::ones_like(w)));
  model->fake_quant->on = false;
  EXPECT_TRUE(model->fake_quant->weight(w).is_same(w));
}

// An activation site: the first training pass sets the range to max |x|, later ones move it
// 1 % of the way to theirs, and eval leaves it; the values are range / 127 times integers in
// -127..127, and gradients pass straight through.
TEST(FakeQuant, ActivationsRoundToTheRunningRange) {
  FakeQuant fake_quant;
  fake_quant.on = true;
  torch::Tensor range;
  const torch::Tensor x = (3 * torch::randn({1000})).requires_grad_(true);
  const torch::Tensor y = fake_quant.activation(x, range, /*training=*/true);
  const float first = x.abs().max().item<float>();
  EXPECT_EQ(range.item<float>(), first);
  const torch::Tensor scale = range / 127;
  EXPECT_TRUE(torch::equal(y, torch::round(x.detach() / scale) * scale));
  EXPECT_EQ((y.detach() / scale).round().abs().max().item<float>(), 127.0f);
  EXPECT_FALSE(torch::equal(y, x));
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::ones_like(x)));

  const torch::Tensor wider = 5 * torch::randn({1000});
  fake_quant.activation(wider, range, /*training=*/true);
  EXPECT_NEAR(range.item<float>(), 0.99 * first + 0.01 * wider.abs().max().item<float>(), 1e-5);
  const float trained = range.item<float>();
  const torch::Tensor far = fake_quant.activation(10 * wider, range, /*training=*/false);
  EXPECT_EQ(range.item<float>(), trained);                    // frozen in eval
  EXPECT_NEAR(far.abs().max().item<float>(), trained, 1e-5);  // clipped at +-127 steps

  fake_quant.on = false;
  EXPECT_TRUE(fake_quant.activation(x, range, true).is_same(x));
}

// In the network every int8 site of the engine gets its range from a training pass, and
// its output lies on that grid (checked at the stacks' final norms and at q, k, v).
TEST(FakeQuant, EveryEngineSiteIsRounded) {
  Megabyte model = coarse_model(6);
  const torch::Tensor x = torch::randint(0, 256, {4, 128}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3});
  model->fake_quant->on = true;
  model->train();
  model->loss(x, modality).backward();
  for (Transformer* stack : {&model->global, &model->local}) {
    for (const auto& module : *(*stack)->blocks) {
      const BlockImpl& b = *module->as<Block>();
      for (const torch::Tensor* range :
           {&b.norm1_range, &b.norm2_range, &b.hidden_range, &b.attn->q_range, &b.attn->k_range,
            &b.attn->v_range, &b.attn->attended_range})
        EXPECT_GT(range->item<float>(), 0);
    }
    EXPECT_GT((*stack)->norm_range.item<float>(), 0);
  }
  model->eval();
  torch::NoGradGuard no_grad;
  auto expect_on_grid = [](const torch::Tensor& y, const torch::Tensor& range, const char* what) {
    const torch::Tensor steps = y / (range / 127);
    EXPECT_LT((steps - steps.round()).abs().max().item<float>(), 1e-3) << what;
    EXPECT_LE(steps.round().abs().max().item<float>(), 127) << what;
  };
  const torch::Tensor global_in = torch::randn({2, 16, model->config.global_width});
  expect_on_grid(model->global->forward(global_in), model->global->norm_range, "global norm");
  const torch::Tensor local_in = torch::randn({8, 8, model->config.local_width});
  expect_on_grid(model->local->forward(local_in), model->local->norm_range, "local norm");
  AttentionImpl& attn = *model->local->blocks[0]->as<Block>()->attn;
  const auto [q, k, v] = attn.project(local_in);
  expect_on_grid(q, attn.q_range, "q");
  expect_on_grid(k, attn.k_range, "k");
  expect_on_grid(v, attn.v_range, "v");
}

}  // namespace
}  // namespace mbz::model
