// Training: a tiny model learns a structured corpus; resuming from a checkpoint takes the
// very same steps as a run never stopped; float scoring agrees with the forward pass;
// quantization-aware fine-tuning resumes a float checkpoint and writes its exact model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/score.h"
#include "model/train.h"

namespace mbz::model {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("mbz_model_train_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Words drawn uniformly from a dictionary of 16 random lowercase words of 3..8 letters,
// separated by spaces: about 4 bits per word of ~6.5 bytes, so ~0.6 bits per byte for a
// model that has learnt the dictionary, while the letter frequencies alone (order 0)
// need ~4.3 bits per byte.
std::vector<uint8_t> word_corpus(size_t size, uint64_t seed) {
  std::mt19937_64 rng(42);  // the dictionary is fixed; the text depends on `seed`
  std::vector<std::string> words(16);
  for (std::string& w : words) {
    const size_t len = 3 + rng() % 6;
    for (size_t i = 0; i < len; ++i) w += char('a' + rng() % 26);
  }
  rng.seed(seed);
  std::vector<uint8_t> text;
  while (text.size() < size) {
    const std::string& w = words[rng() % words.size()];
    text.insert(text.end(), w.begin(), w.end());
    text.push_back(' ');
  }
  text.resize(size);
  return text;
}

// 50,000 bytes of words (word_corpus) as the text modality's training stream.
Corpus text_words() {
  Corpus data;
  data.streams[1] = word_corpus(50'000, 3);
  return data;
}

TrainOptions tiny_options(const fs::path& out) {
  TrainOptions o;
  o.config = "tiny";
  o.batch = 16;
  o.lr = 3e-3;
  o.warmup = 20;
  o.eval_every = 0;
  o.out_dir = out.string();
  o.weights = {0, 1, 0, 0};
  return o;
}

TEST(Train, TinyModelLearnsWords) {
  const fs::path dir = temp_dir("learn");
  Corpus train_data, valid_data;
  train_data.streams[1] = word_corpus(200'000, 1);
  valid_data.streams[1] = word_corpus(20'000, 2);
  TrainOptions o = tiny_options(dir);
  o.steps = 200;
  Progress last;
  const auto started = std::chrono::steady_clock::now();
  const std::string ckpt = train(o, train_data, valid_data, [&](const Progress& p) { last = p; });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_TRUE(last.evaluated);
  const double bpb = last.valid_bpb[1];
  std::printf("tiny, %d steps: valid %.3f bits/byte, train %.3f, %.0f bytes/s, %.1f s\n",
              int(o.steps), bpb, last.train_bpb, last.bytes_per_second, seconds);
  // Order 0 needs ~4.3 bits per byte and a uniform guess 8; only a model that has learnt
  // the words within and across patches gets under 1.5 (measured: 0.69 after 200 steps).
  EXPECT_LT(bpb, 1.5);
  EXPECT_TRUE(std::isnan(last.valid_bpb[0]));  // no raw validation data

  // Scoring the checkpoint with float probabilities agrees with validation: disjoint windows
  // of the whole context, and strided windows (more context per byte) do no worse.
  FloatScorer scorer(ckpt);
  EXPECT_EQ(scorer.step(), 200);
  const std::span<const uint8_t> valid(valid_data.streams[1].data(), 4096);
  const double disjoint = scorer.bits(valid, 1) / valid.size();
  const double strided = scorer.bits(valid, 1, 32) / valid.size();
  EXPECT_NEAR(disjoint, bpb, 0.3);
  EXPECT_LT(strided, disjoint + 0.02);
  EXPECT_EQ(scorer.bits({}, 1), 0.0);
  EXPECT_GT(scorer.bits(valid.first(1), 1), 0.0);
}

// A run stopped at a checkpoint and resumed takes exactly the steps an uninterrupted run
// takes: same losses, same final parameters.
TEST(Train, ResumeGivesIdenticalSteps) {
  const fs::path dir = temp_dir("resume");
  Corpus data = text_words();
  data.streams[0] = word_corpus(50'000, 4);  // two modalities: sampling must resume too
  TrainOptions o = tiny_options(dir / "whole");
  o.weights = {1, 2, 0, 0};
  o.steps = 12;
  o.checkpoint_every = 6;
  std::vector<double> whole, resumed;
  const std::string end_whole =
      train(o, data, {}, [&](const Progress& p) { whole.push_back(p.train_bpb); });
  o.out_dir = (dir / "resumed").string();
  o.resume = (dir / "whole" / "step-00000006.mbzm").string();
  const std::string end_resumed =
      train(o, data, {}, [&](const Progress& p) { resumed.push_back(p.train_bpb); });
  ASSERT_EQ(whole.size(), 12u);
  ASSERT_EQ(resumed.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(whole[6 + i], resumed[i]) << "step " << 7 + i;
  const Checkpoint a = read_checkpoint(end_whole), b = read_checkpoint(end_resumed);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(a.step, 12);
  EXPECT_EQ(b.step, 12);
  for (size_t i = 0; i < a.tensors.size(); ++i)
    EXPECT_TRUE(torch::equal(a.tensors[i].tensor, b.tensors[i].tensor)) << a.tensors[i].name;
}

// Resumed from a checkpoint without optimizer state, AdamW's moments restart at zero and
// are bias-corrected as new: the first step is Adam's first, lr * g / |g|, so the weight
// that moves most moves by the learning rate (no weight decay here). Corrected by the
// run's step count (20) instead, it moved by 0.5 lr (3.2 lr at step 3000). The next
// checkpoint, with state, carries the moments' own count.
TEST(Train, ResumeWithoutOptimizerStateTakesAnAdamFirstStep) {
  const fs::path dir = temp_dir("resume_no_state");
  Corpus data = text_words();
  TrainOptions o = tiny_options(dir / "first");
  o.steps = 40;
  o.warmup = 2;
  o.weight_decay = 0;
  o.save_optimizer = false;
  o.time_limit = 0;
  o.checkpoint_every = 20;
  train(o, data, {}, {});
  o.out_dir = (dir / "resumed").string();
  o.resume = (dir / "first" / "step-00000020.mbzm").string();
  o.steps = 21;
  o.save_optimizer = true;
  double lr = 0;
  const std::string end = train(o, data, {}, [&](const Progress& p) { lr = p.lr; });
  ASSERT_GT(lr, 0);
  const Checkpoint before = read_checkpoint(o.resume), after = read_checkpoint(end);
  double largest = 0;
  for (const NamedTensor& a : after.tensors) {
    if (a.name == "optim.moment_steps") {
      EXPECT_EQ(a.tensor.item<int64_t>(), 1);
    }
    if (a.name.rfind("optim.", 0) == 0) continue;
    for (const NamedTensor& b : before.tensors)
      if (b.name == a.name)
        largest = std::max(largest, (a.tensor - b.tensor).abs().max().item<double>());
  }
  EXPECT_GT(largest, 0.9 * lr);
  EXPECT_LE(largest, 1.001 * lr);
}

// Data parallelism on the CPU: three ranks (here threads of one process; mbz train
// --gpus starts processes), each taking a third of every batch, take the steps one model
// takes on the whole batch (up to float rounding: the gradient is summed in another
// order), and exactly the same steps again on a second run.
std::vector<double> train_ranks(TrainOptions o, const Corpus& data, int ranks,
                                const std::string& collective) {
  o.ranks = ranks;
  o.collective = collective;
  std::vector<double> losses;
  std::vector<std::thread> others;
  std::vector<std::string> errors(ranks);
  for (int r = 1; r < ranks; ++r)
    others.emplace_back([&, r] {
      TrainOptions mine = o;
      mine.rank = r;
      try {
        train(mine, data, {}, [&](const Progress&) { errors[r] = "rank > 0 reported"; });
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  try {
    train(o, data, {}, [&](const Progress& p) { losses.push_back(p.train_bpb); });
  } catch (const std::exception& e) {
    errors[0] = e.what();
  }
  for (std::thread& t : others) t.join();
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return losses;
}

TEST(Train, RanksTakeTheStepsOfOneModel) {
  const fs::path dir = temp_dir("ranks");
  Corpus data = text_words();
  TrainOptions o = tiny_options(dir / "one");
  o.steps = 8;
  const std::vector<double> one = train_ranks(o, data, 1, "");
  o.out_dir = (dir / "three").string();
  // Names of this process alone: a region left by a crashed earlier run is never opened.
  const std::string name = "/mbz-test-ranks-" + std::to_string(getpid());
  const std::vector<double> three = train_ranks(o, data, 3, name + "-a");  // 5, 5, 6
  o.out_dir = (dir / "again").string();
  const std::vector<double> again = train_ranks(o, data, 3, name + "-b");
  ASSERT_EQ(one.size(), 8u);
  ASSERT_EQ(three.size(), 8u);
  EXPECT_EQ(three, again);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(one[i], three[i], 1e-3) << "step " << i + 1;
  const std::string last = "step-00000008.mbzm";
  const Checkpoint a = read_checkpoint((dir / "one" / last).string());
  const Checkpoint b = read_checkpoint((dir / "three" / last).string());
  const Checkpoint c = read_checkpoint((dir / "again" / last).string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a.tensors[i].tensor, b.tensors[i].tensor, 1e-3, 1e-4))
        << a.tensors[i].name;
    EXPECT_TRUE(torch::equal(b.tensors[i].tensor, c.tensors[i].tensor)) << b.tensors[i].name;
  }
  o.batch = 2;  // fewer windows than ranks
  o.ranks = 3;
  try {
    train(o, data, {}, nullptr);
    ADD_FAILURE() << "3 ranks trained on batches of 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("smaller than the 3 ranks"), std::string::npos) << e.what();
  }
}

// --file-starts: the share of windows that begin where a file does, the others anywhere;
// a window never runs past the stream's end.
TEST(Train, FileStartShareBeginsWindowsAtFiles) {
  Corpus data;
  data.streams[1] = word_corpus(100'000, 3);
  for (uint64_t at = 0; at < 100'000; at += 1000 + at % 777) data.file_starts[1].push_back(at);
  TrainOptions o;
  o.weights = {0, 1, 0, 0};
  o.batch = 50;
  const int64_t window = 4096;
  auto at_files = [&](double share) {
    o.file_start_share = share;
    int n = 0;
    for (int64_t step = 0; step < 20; ++step)
      for (const Window& w : batch_windows(o, data, window, step)) {
        EXPECT_EQ(w.modality, 1u);
        EXPECT_LE(w.start + window, data.streams[1].size());
        n += std::binary_search(data.file_starts[1].begin(), data.file_starts[1].end(), w.start);
      }
    return n;  // of 1000 windows
  };
  EXPECT_LT(at_files(0), 50);  // by chance: about 1 in 1000
  EXPECT_EQ(at_files(1), 1000);
  const int half = at_files(0.5);
  EXPECT_GT(half, 400);
  EXPECT_LT(half, 600);
  // No file starts recorded: every window starts anywhere, as with a share of 0.
  data.file_starts[1].clear();
  EXPECT_LT(at_files(1), 50);
}

// Bits per byte of `bytes` [B, T] under float logits [B, T, 256] or exact weights.
double float_bpb(const torch::Tensor& logits, const torch::Tensor& bytes) {
  const torch::Tensor logp = torch::log_softmax(logits.to(torch::kDouble), -1);
  return -logp.gather(2, bytes.unsqueeze(2)).mean().item<double>() / std::log(2.0);
}
double exact_bpb(const torch::Tensor& weights, const torch::Tensor& bytes) {
  const torch::Tensor w = weights.to(torch::kDouble);
  return -torch::log2(w.gather(2, bytes.unsqueeze(2)).squeeze(2) / w.sum(-1)).mean().item<double>();
}

// --qat from a float checkpoint (no fake quantization in it): the same batches as a float
// run, other losses (the rounding is on), float checkpoints that resume, and an exact
// model file beside the last one, close to the float model.
TEST(Train, QatFineTunesAFloatCheckpoint) {
  const fs::path dir = temp_dir("qat");
  Corpus data;
  data.streams[1] = word_corpus(100'000, 6);
  TrainOptions o = tiny_options(dir / "float");
  o.steps = 60;
  const std::string start = train(o, data, {}, nullptr);
  o.resume = start;
  o.steps = 70;
  o.out_dir = (dir / "more").string();
  std::vector<double> float_steps, qat_steps;
  train(o, data, {}, [&](const Progress& p) { float_steps.push_back(p.train_bpb); });
  o.out_dir = (dir / "qat").string();
  o.qat = true;
  const std::string last =
      train(o, data, {}, [&](const Progress& p) { qat_steps.push_back(p.train_bpb); });
  ASSERT_EQ(qat_steps.size(), 10u);
  EXPECT_NE(qat_steps[0], float_steps[0]);  // the same batch and weights, rounded
  EXPECT_NEAR(qat_steps[0], float_steps[0], 0.1 * float_steps[0]);

  const Checkpoint checkpoint = read_checkpoint(last);
  EXPECT_EQ(checkpoint.step, 70);
  EXPECT_NE(checkpoint.train_json.find("\"qat\": true"), std::string::npos);
  Megabyte model = model_from_checkpoint(checkpoint, torch::kCPU);
  EXPECT_FALSE(model->fake_quant->on);
  const fs::path exact_file = fs::path(last).replace_extension(".mbzq");
  EXPECT_EQ(exact_file.filename(), "step-00000070.mbzq");
  ASSERT_TRUE(fs::exists(exact_file));
  const ExactModel exact = ExactModel::from_checkpoint(read_checkpoint(exact_file.string()));
  const std::vector<uint8_t> valid = word_corpus(4 * 128, 7);
  const torch::Tensor bytes =
      torch::tensor(std::vector<int64_t>(valid.begin(), valid.end())).view({4, 128});
  const torch::Tensor text = torch::ones({4}, torch::kLong);
  torch::NoGradGuard no_grad;
  const double f = float_bpb(model->forward(bytes, text), bytes);
  const double e = exact_bpb(exact.forward(bytes, text), bytes);
  std::printf("tiny after --qat: float %.4f, exact %.4f bits per byte\n", f, e);
  EXPECT_NEAR(e, f, 0.05 * f);
}

TEST(Train, RefusesBadOptions) {
  const fs::path dir = temp_dir("bad");
  Corpus data;
  data.streams[1] = word_corpus(1000, 5);
  TrainOptions o = tiny_options(dir);
  o.steps = 1;
  o.device = "tpu";
  EXPECT_THROW(train(o, data, {}, nullptr), Error);
  o.device = "cpu";
  o.weights = {1, 0, 0, 0};  // no raw data
  EXPECT_THROW(train(o, data, {}, nullptr), Error);
  // The exact engine has only ReLU²: no quantization-aware training of a GELU network.
  o.weights = {0, 1, 0, 0};
  o.qat = true;
  o.config = (dir / "gelu.json").string();
  std::ofstream(o.config) << R"({"activation": "gelu", "context": 16, "global_width": 64})";
  try {
    train(o, data, {}, nullptr);
    ADD_FAILURE() << "a GELU network trained with --qat";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only the relu2 activation"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mbz::model
