// The integer-exact engine: the encoder's full pass and the decoder's byte-by-byte pass give
// the same integers, whatever the batch and thread count, and stay close to the float model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "codec/byte_model.h"
#include "codec/error.h"
#include "model/cpu_team.h"
#include "model/exact_codec.h"
#include "model/exact.h"
#include "model/exact_cpu.h"

namespace mbz::model {
namespace {

// A tiny float model with weights large enough that quantization matters, and its exact
// version calibrated on random streams.
struct Models {
  Megabyte float_model{nullptr};
  ExactModel exact;
};

Models models_of(const Config& config, uint64_t seed) {
  torch::manual_seed(seed);
  Models m{Megabyte(config), {}};
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : m.float_model->parameters()) p.normal_(0.0, 0.3);
  }
  m.float_model->eval();
  const torch::Tensor calibration =
      torch::randint(0, 256, {4, std::min<int64_t>(96, config.context_bytes())}, torch::kLong);
  m.exact = ExactModel::quantize(m.float_model, calibration, torch::tensor({0, 1, 2, 3}));
  return m;
}

Models tiny_models(uint64_t seed) { return models_of(preset("tiny"), seed); }

// The tensor version of the coder's table procedure gives its integers row for row: sums
// above 2^32 (shifted), zero rows, ties for the heaviest, a single nonzero weight.
TEST(Exact, CdfTablesMatchTheCoders) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> rows = {
      torch::randint(0, 1 << 20, {40, 256}, torch::kLong),
      torch::randint(0, int64_t{1} << 54, {40, 256}, torch::kLong),  // sums far above 2^32
      torch::randint(0, 3, {40, 256}, torch::kLong),                 // many ties
      torch::zeros({2, 256}, torch::kLong),
      torch::full({1, 256}, int64_t{1} << 40, torch::kLong),
      torch::zeros({1, 256}, torch::kLong).index_fill_(1, torch::tensor({200}), int64_t{1} << 30),
  };
  // Sums at and just below powers of two: 2^32 - 1, 2^32, and 2^60 - 1 (which a double
  // rounds up to 2^60), so the shift's bit length is checked where it changes.
  for (int64_t sum : {(int64_t{1} << 32) - 1, int64_t{1} << 32, (int64_t{1} << 60) - 1,
                      (int64_t{1} << 53) + 1})
    rows.push_back(torch::zeros({1, 256}, torch::kLong).index_fill_(1, torch::tensor({7}), sum));
  const torch::Tensor weights = torch::cat(rows, 0);
  // [64, 2, 256]: any leading shape
  const torch::Tensor tables = cdf_tables(weights.view({-1, 2, 256})).view({-1, 257});
  ASSERT_EQ(tables.scalar_type(), torch::kInt);
  for (int64_t r = 0; r < weights.size(0); ++r) {
    Cdf expected;
    const torch::Tensor w = weights[r].contiguous();
    cdf_from_weights(
        std::span<const uint64_t, 256>(reinterpret_cast<const uint64_t*>(w.data_ptr<int64_t>()), 256),
        expected);
    const torch::Tensor got = tables[r].contiguous();
    ASSERT_TRUE(std::equal(expected.c.begin(), expected.c.end(), got.data_ptr<int32_t>(),
                           [](uint32_t a, int32_t b) { return int64_t{a} == int64_t{b}; }))
        << "row " << r;
  }
}

TEST(Exact, DecoderGivesTheEncodersIntegers) {
  const Models m = tiny_models(1);
  const int64_t n = 3, t = m.exact.config.context_bytes();
  const torch::Tensor bytes = torch::randint(0, 256, {n, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({1, 2, 3});
  const torch::Tensor full = m.exact.forward(bytes, modality);  // [N, T, 256]
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{n, t, 256}));
  ASSERT_EQ(full.scalar_type(), torch::kLong);
  EXPECT_TRUE((full >= 0).all().item<bool>());
  EXPECT_TRUE((full.amax(-1) == (int64_t(1) << kHeadBits)).all().item<bool>());

  ExactDecoder decoder(m.exact, modality);
  for (int64_t i = 0; i < t; ++i) {
    const torch::Tensor w = decoder.next_weights();
    ASSERT_TRUE(torch::equal(w, full.select(1, i))) << "position " << i;
    decoder.push(bytes.select(1, i));
  }
  EXPECT_THROW(decoder.next_weights(), Error);  // past the context
}

// The encoder's pass as CUDA kernels: every byte's interval in the table the CPU's forward
// pass gives, for whole windows and for a window that ends inside a patch.
TEST(Exact, CudaPassGivesTheCpuIntervals) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Models m = tiny_models(5);
  const ExactModel cuda = m.exact.to(torch::kCUDA);
  const std::unique_ptr<ExactPass> pass = ExactPass::make(cuda);
#if MBZ_EXACT_CUDA_KERNELS
  ASSERT_TRUE(pass) << "the tiny model's shapes suit the kernels";
#else
  EXPECT_FALSE(pass);
  GTEST_SKIP() << "built without the CUDA kernels";
#endif
  // 9 streams, and 2100, whose 67,200 global rows (and 268,800 local ones) take the blocks
  // of whole passes (32 rows, products on the tensor cores).
  for (const torch::Tensor& modality :
       {torch::tensor({0, 1, 2, 3, 1, 2, 3, 1, 1}), torch::randint(0, 4, {2100}, torch::kLong)}) {
    // Whole windows (32 patches: two whole tiles of the pass attention), 90 bytes (23
    // patches: a whole tile and a partial one) and 50 (13 patches: the warp attention).
    for (int64_t t : {m.exact.config.context_bytes(), int64_t{90}, int64_t{50}}) {
      const torch::Tensor bytes = torch::randint(0, 256, {modality.size(0), t}, torch::kLong);
      const torch::Tensor tables = cdf_tables(m.exact.forward(bytes, modality));  // on the CPU
      const torch::Tensor at = bytes.unsqueeze(-1);
      const torch::Tensor lo = tables.gather(2, at), hi = tables.gather(2, at + 1);
      const torch::Tensor expected = torch::cat({lo, hi - lo}, 2);
      const torch::Tensor got = pass->intervals(bytes.to(torch::kCUDA), modality).cpu();
      EXPECT_TRUE(torch::equal(got, expected)) << modality.size(0) << " windows of " << t;
      // The same brought to the host in a slot, while the other slot's pass is in flight.
      pass->start_to_host(bytes.to(torch::kCUDA), modality, 0);
      pass->start_to_host(bytes.narrow(0, 0, 3).to(torch::kCUDA), modality.narrow(0, 0, 3), 1);
      EXPECT_TRUE(torch::equal(pass->wait(0), expected)) << modality.size(0) << " windows of " << t;
      EXPECT_TRUE(torch::equal(pass->wait(1), expected.narrow(0, 0, 3))) << t;
    }
  }
}

// A coder's round at position `pos`: the streams that have a byte there, and those bytes.
std::pair<std::vector<uint32_t>, std::vector<uint8_t>> round_at(
    std::span<const std::span<const uint8_t>> streams, size_t pos) {
  std::pair<std::vector<uint32_t>, std::vector<uint8_t>> round;
  for (size_t k = 0; k < streams.size(); ++k)
    if (pos < streams[k].size()) round.first.push_back(uint32_t(k)), round.second.push_back(streams[k][pos]);
  return round;
}

// all_intervals() hands over the intervals intervals() gives round by round, every
// position of every stream once, each stream's pieces in position order.
void expect_all_intervals_match(const ModelFactory& factory, std::span<const std::vector<uint8_t>> data,
                                uint8_t modality) {
  const std::vector<std::span<const uint8_t>> streams(data.begin(), data.end());
  const auto rounds = factory.create(streams.size()), whole = factory.create(streams.size());
  std::vector<std::vector<uint32_t>> expected(streams.size()), got(streams.size());
  for (auto* model : {rounds.get(), whole.get()}) {
    model->set_modality(modality);
    model->reset(streams.size());
    model->lookahead(streams);
  }
  std::vector<uint32_t> start(streams.size()), freq(streams.size());
  for (size_t pos = 0;; ++pos) {
    const auto [ids, bytes] = round_at(streams, pos);
    if (ids.empty()) break;
    ASSERT_TRUE(rounds->intervals(ids, start, freq));
    for (size_t j = 0; j < ids.size(); ++j) expected[ids[j]].insert(expected[ids[j]].end(), {start[j], freq[j]});
    rounds->update(ids, bytes);
  }
  size_t pieces = 0;
  ASSERT_TRUE(whole->all_intervals([&](const BatchByteModel::IntervalPiece& p) {
    ++pieces;
    for (uint32_t i = 0; i < p.count; ++i) {
      std::vector<uint32_t>& g = got.at(p.first + i);
      const uint64_t end = std::min<uint64_t>(p.position + p.width, streams[p.first + i].size());
      if (p.position >= end) continue;
      EXPECT_EQ(g.size(), 2 * p.position) << "stream " << p.first + i << ": a piece out of order";
      const uint32_t* pair = p.pairs + size_t{i} * p.width * 2;
      g.insert(g.end(), pair, pair + 2 * (end - p.position));
    }
    return true;
  }));
  for (size_t k = 0; k < streams.size(); ++k) EXPECT_EQ(got[k], expected[k]) << "stream " << k;
  EXPECT_GT(pieces, 0u);
}

// On CUDA (skipped without a device): the decoder gives the CPU's integers, weights and
// coder tables, stepping eagerly and replaying CUDA graphs (captured at the second patch,
// where a build has them), over a whole window.
TEST(Exact, CudaDecoderGivesTheCpuIntegers) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Models m = tiny_models(3);
  const int64_t n = 5, t = m.exact.config.context_bytes();
  const torch::Tensor bytes = torch::randint(0, 256, {n, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3, 1});
  const torch::Tensor full = m.exact.forward(bytes, modality);  // on the CPU
  const ExactModel cuda = m.exact.to(torch::kCUDA);
  for (bool kernels : {false, true})
    for (bool graphs : {false, true}) {
      ExactDecoder decoder(cuda, modality.to(torch::kCUDA), graphs, kernels);
#if MBZ_EXACT_CUDA_KERNELS
      EXPECT_EQ(decoder.kernels(), kernels);  // the tiny model's shapes suit them
#else
      EXPECT_FALSE(decoder.kernels());
#endif
      for (int64_t i = 0; i < t; ++i) {
        const torch::Tensor tables = decoder.next_tables().cpu();
        ASSERT_TRUE(torch::equal(tables, cdf_tables(full.select(1, i))))
            << "position " << i << (graphs ? ", graphs" : "") << (kernels ? ", kernels" : "");
        decoder.push(bytes.select(1, i).to(torch::kCUDA));
      }
      if (!graphs) {
        EXPECT_FALSE(decoder.graphs());
      }
    }
  ExactDecoder decoder(cuda, modality.to(torch::kCUDA), true);
  for (int64_t i = 0; i < t; ++i) {
    ASSERT_TRUE(torch::equal(decoder.next_weights().cpu(), full.select(1, i))) << "position " << i;
    decoder.push(bytes.select(1, i).to(torch::kCUDA));
  }
  // next_symbols: for any target, what Cdf::find and the interval give on the CPU's table.
  ExactDecoder finder(cuda, modality.to(torch::kCUDA), true);
  for (int64_t i = 0; i < t; ++i) {
    const torch::Tensor targets = torch::randint(0, kTotal, {n}, torch::kInt);
    const torch::Tensor found = finder.next_symbols(targets.to(torch::kCUDA)).cpu();
    const torch::Tensor tables = cdf_tables(full.select(1, i));
    for (int64_t s = 0; s < n; ++s) {
      Cdf cdf;
      for (int c = 0; c < 257; ++c) cdf.c[size_t(c)] = uint32_t(tables[s][c].item<int32_t>());
      const int symbol = cdf.find(uint32_t(targets[s].item<int32_t>()));
      ASSERT_EQ(found[s][0].item<int32_t>(), symbol) << "position " << i << " stream " << s;
      ASSERT_EQ(uint32_t(found[s][1].item<int32_t>()), cdf.start(symbol));
      ASSERT_EQ(uint32_t(found[s][2].item<int32_t>()), cdf.freq(symbol));
    }
    finder.push(bytes.select(1, i).to(torch::kCUDA));
  }
  // restart(): the next window from its first byte, replaying the graphs captured before.
  finder.restart();
  for (int64_t i = 0; i < t; ++i) {
    ASSERT_TRUE(torch::equal(finder.next_tables().cpu(), cdf_tables(full.select(1, i))))
        << "after restart, position " << i;
    finder.push(bytes.select(1, i).to(torch::kCUDA));
  }
#if MBZ_EXACT_CUDA_GRAPHS
  EXPECT_TRUE(finder.graphs());
#endif
}

// On CUDA: decoders in threads of their own (as an archive's segments decode) capture
// their graphs while the others step, and each still gives the CPU's tables. A capture
// once broke when another thread synchronized the whole device.
TEST(Exact, CudaDecodersInThreadsCaptureTheirGraphs) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Models m = tiny_models(4);
  const int64_t n = 6, t = m.exact.config.context_bytes();
  const ExactModel cuda = m.exact.to(torch::kCUDA);
  constexpr int kThreads = 8;
  std::vector<torch::Tensor> bytes, full;
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3, 1, 2});
  for (int i = 0; i < kThreads; ++i) {
    bytes.push_back(torch::randint(0, 256, {n, t}, torch::kLong));
    full.push_back(cdf_tables(m.exact.forward(bytes.back(), modality)));  // on the CPU
  }
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      try {
        for (int round = 0; round < 3; ++round) {  // fresh decoders: fresh captures
          ExactDecoder decoder(cuda, modality.to(torch::kCUDA), /*cuda_graphs=*/true);
          for (int64_t p = 0; p < t; ++p) {
            if (!torch::equal(decoder.next_tables().cpu(), full[i].select(1, p))) {
              failures[i] = "tables differ at position " + std::to_string(p);
              return;
            }
            decoder.push(bytes[i].select(1, p).to(torch::kCUDA));
          }
        }
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
    });
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(failures[i], "") << "thread " << i;
}

// The CUDA kernels on shapes the tiny model lacks: heads 16, 64 and 128 wide, a local cache
// of 16 positions (the warp attention's largest) and of 32 (the block attention), patches
// of 16 and 32. The decoder's tables and the pass's intervals equal the CPU's.
TEST(Exact, CudaKernelsTakeOtherShapes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Config a = preset("tiny");
  a.patch = 16, a.global_width = 256, a.global_heads = 4, a.global_layers = 1;
  a.local_width = 64, a.local_heads = 4, a.local_layers = 1, a.context = 8;
  Config b = a;
  b.patch = 32, b.global_width = 512, b.global_heads = 4, b.local_width = 32, b.local_heads = 2;
  b.context = 4;
  for (const Config& config : {a, b}) {
    config.validate();
    const Models m = models_of(config, 7);
    const ExactModel cuda = m.exact.to(torch::kCUDA);
    const int64_t t = config.context_bytes();
    const torch::Tensor modality = torch::tensor({1, 2, 3});
    const torch::Tensor bytes = torch::randint(0, 256, {modality.size(0), t}, torch::kLong);
    const torch::Tensor full = m.exact.forward(bytes, modality);  // on the CPU
    ExactDecoder decoder(cuda, modality.to(torch::kCUDA), true, true);
    const std::unique_ptr<ExactPass> pass = ExactPass::make(cuda);
#if MBZ_EXACT_CUDA_KERNELS
    ASSERT_TRUE(decoder.kernels()) << "patch " << config.patch;
    ASSERT_TRUE(pass) << "patch " << config.patch;
#else
    GTEST_SKIP() << "built without the CUDA kernels";
#endif
    for (int64_t i = 0; i < t; ++i) {
      ASSERT_TRUE(torch::equal(decoder.next_tables().cpu(), cdf_tables(full.select(1, i))))
          << "patch " << config.patch << ", position " << i;
      decoder.push(bytes.select(1, i).to(torch::kCUDA));
    }
    const torch::Tensor tables = cdf_tables(full);
    const torch::Tensor at = bytes.unsqueeze(-1);
    const torch::Tensor lo = tables.gather(2, at), hi = tables.gather(2, at + 1);
    EXPECT_TRUE(torch::equal(pass->intervals(bytes.to(torch::kCUDA), modality).cpu(),
                             torch::cat({lo, hi - lo}, 2)))
        << "patch " << config.patch;
  }
}

// The plain C++ decoder gives the torch engine's integers, stream by stream.
// With a team, every product and attention is shared out, however small.
template <class Decoder = CpuExactDecoder>
void expect_cpu_decoder_matches(const ExactModel& exact, const torch::Tensor& bytes,
                                const std::vector<uint8_t>& modality, CpuTeam* team = nullptr) {
  const CpuExactModel cpu(exact);
  const torch::Tensor full =
      exact.forward(bytes, torch::tensor(std::vector<int64_t>(modality.begin(), modality.end())));
  const int64_t n = bytes.size(0), t = bytes.size(1);
  Decoder decoder(cpu, modality, team);
  std::vector<int64_t> weights(static_cast<size_t>(n * 256));
  std::vector<uint8_t> next(static_cast<size_t>(n));
  for (int64_t i = 0; i < t; ++i) {
    decoder.next_weights(weights);
    const torch::Tensor got = torch::tensor(weights).view({n, 256});
    ASSERT_TRUE(torch::equal(got, full.select(1, i))) << "position " << i;
    for (int64_t s = 0; s < n; ++s) next[size_t(s)] = uint8_t(bytes[s][i].item<int64_t>());
    decoder.push(next);
  }
}

// The encoder's way (lookahead: one forward pass per window, tables built by cdf_tables)
// gives the coder exactly the decoder's tables (byte by byte), and intervals() exactly their
// intervals, streams of any length ending at any round, across window restarts, also when
// a coder turns from tables to intervals in the middle of a window.
TEST(Exact, LookaheadGivesTheDecodersTables) {
  const Models m = tiny_models(8);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mbz_exact_ahead_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  write_checkpoint((dir / "m.mbzq").string(), m.exact.to_checkpoint());
  const auto factory = load_exact_model((dir / "m.mbzq").string(), "cpu", /*lookahead_on_cpu=*/true);
  std::filesystem::remove_all(dir);
  const size_t context = size_t(m.exact.config.context_bytes());
  std::vector<std::vector<uint8_t>> data;
  for (size_t length : {size_t{0}, size_t{1}, size_t{70}, context, context + 37, 2 * context + 5})
    data.push_back(table_hash_streams(1, length + 1)[0]), data.back().resize(length, 'x');
  std::vector<std::span<const uint8_t>> streams(data.begin(), data.end());
  for (uint8_t modality : {1, 3}) {
    const auto ahead = factory->create(streams.size()), plain = factory->create(streams.size());
    const auto by_interval = factory->create(streams.size()), turning = factory->create(streams.size());
    for (auto* model : {ahead.get(), plain.get(), by_interval.get(), turning.get()}) {
      model->set_modality(modality);
      model->reset(streams.size());
    }
    ahead->lookahead(streams);
    by_interval->lookahead(streams);
    turning->lookahead(streams);
    const size_t turn = context / 2 + 3;  // tables before this position, intervals after
    std::vector<Cdf> a(streams.size()), b(streams.size()), c(streams.size());
    std::vector<uint32_t> start2(streams.size()), freq2(streams.size());
    std::vector<uint32_t> start(streams.size()), freq(streams.size());
    for (size_t pos = 0;; ++pos) {
      const auto [ids, bytes] = round_at(streams, pos);
      if (ids.empty()) break;
      ahead->predict(ids, {a.data(), ids.size()});
      plain->predict(ids, {b.data(), ids.size()});
      ASSERT_TRUE(by_interval->intervals(ids, start, freq));
      if (pos < turn)
        turning->predict(ids, {c.data(), ids.size()});
      else
        ASSERT_TRUE(turning->intervals(ids, start2, freq2));
      for (size_t j = 0; j < ids.size(); ++j) {
        ASSERT_EQ(a[j].c, b[j].c) << "stream " << ids[j] << " position " << pos;
        ASSERT_EQ(start[j], b[j].start(bytes[j])) << "stream " << ids[j] << " position " << pos;
        ASSERT_EQ(freq[j], b[j].freq(bytes[j])) << "stream " << ids[j] << " position " << pos;
        if (pos < turn) {
          ASSERT_EQ(c[j].c, b[j].c) << "stream " << ids[j] << " position " << pos;
        } else {
          ASSERT_EQ(start2[j], start[j]) << "stream " << ids[j] << " position " << pos;
          ASSERT_EQ(freq2[j], freq[j]) << "stream " << ids[j] << " position " << pos;
        }
      }
      ahead->update(ids, bytes);
      plain->update(ids, bytes);
      by_interval->update(ids, bytes);
      turning->update(ids, bytes);
    }
    expect_all_intervals_match(*factory, data, modality);
  }
}

// On CUDA with the kernels: all_intervals() in several sub-batches a window (2^20 positions
// each), over three windows, the last ending inside a patch.
TEST(Exact, CudaAllIntervalsGiveTheRoundsIntervals) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Models m = tiny_models(9);
  // (Removed with std::remove: std::filesystem::remove_all binds to a symbol of PyTorch's
  // libtorch.so that jumps to null.)
  const std::string file = (std::filesystem::temp_directory_path() /
                            ("mbz_exact_whole_" + std::to_string(getpid()) + ".mbzq")).string();
  const std::vector<std::string> written = write_checkpoint(file, m.exact.to_checkpoint());
  const auto factory = load_exact_model(file, "cuda", false);
  for (const std::string& f : written) std::remove(f.c_str());
  const size_t context = size_t(m.exact.config.context_bytes());
  const size_t n = (size_t{1} << 20) / context * 2 + 77;  // two whole sub-batches and a part
  std::vector<std::vector<uint8_t>> data = table_hash_streams(n, 2 * context + 13);
  data[5].resize(2 * context + 13, 'y');  // the longest reaches the third window
  expect_all_intervals_match(*factory, data, 1);
}

// A model whose MLP is wider than one exact product piece (1152 > 1024) and whose context
// spans several query blocks (300 patches > 256): the split paths of exact.cpp.
TEST(Exact, SplitProductsAndQueryBlocksMatchTheDecoder) {
  torch::manual_seed(5);
  Megabyte float_model(config_from_json(
      R"({"patch": 4, "global_width": 72, "global_layers": 1, "global_heads": 2,
          "local_width": 32, "local_layers": 1, "local_heads": 2, "context": 300,
          "mlp_ratio": 16})"));
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : float_model->parameters()) p.normal_(0.0, 0.3);
  }
  const int64_t t = float_model->config.context_bytes();
  const torch::Tensor bytes = torch::randint(0, 256, {2, t}, torch::kLong);
  const torch::Tensor modality = torch::tensor({1, 2});
  const ExactModel exact = ExactModel::quantize(float_model, bytes, modality);
  expect_cpu_decoder_matches(exact, bytes, {1, 2});
  const torch::Tensor full = exact.forward(bytes, modality);
  ExactDecoder decoder(exact, modality);
  for (int64_t i = 0; i < t; ++i) {
    ASSERT_TRUE(torch::equal(decoder.next_weights(), full.select(1, i))) << "position " << i;
    decoder.push(bytes.select(1, i));
  }
}

TEST(Exact, PlainCpuDecoderGivesTheSameIntegers) {
  const Models m = tiny_models(6);
  const torch::Tensor bytes = torch::randint(0, 256, {3, m.exact.config.context_bytes()}, torch::kLong);
  expect_cpu_decoder_matches(m.exact, bytes, {1, 2, 3});
}

// The plain loops the decoder falls back to without AVX-512 VNNI give the same integers
// (on a CPU with it, both kinds are checked), with odd and even stream counts.
TEST(Exact, CpuDecoderWithoutVectorKernelsGivesTheSameIntegers) {
  const Models m = tiny_models(8);
  const torch::Tensor bytes = torch::randint(0, 256, {3, m.exact.config.context_bytes()}, torch::kLong);
  struct PlainKernels {  // back to the vector ones however the test ends
    PlainKernels() { use_vector_kernels(false); }
    ~PlainKernels() { use_vector_kernels(true); }
  } plain;
  expect_cpu_decoder_matches(m.exact, bytes, {1, 2, 3});
  expect_cpu_decoder_matches(m.exact, bytes.narrow(0, 0, 2), {0, 3});
}

// Shared out over threads (3: parts of unequal sizes), the steps give the same integers.
TEST(Exact, CpuDecoderTeamGivesTheSameIntegers) {
  const Models m = tiny_models(7);
  const torch::Tensor bytes = torch::randint(0, 256, {2, m.exact.config.context_bytes()}, torch::kLong);
  CpuTeam team(3, /*min_work=*/0);
  ASSERT_EQ(team.size(), 3u);
  expect_cpu_decoder_matches(m.exact, bytes, {1, 3}, &team);
  // The team itself: every index once, parts in order, an exception comes back.
  std::vector<int> seen(1000, 0);
  team.run(1000, [&](unsigned part, int64_t b, int64_t e) {
    EXPECT_EQ(b, 1000 * int64_t(part) / 3);
    for (int64_t i = b; i < e; ++i) ++seen[size_t(i)];
  });
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 1000);
  EXPECT_THROW(team.run(9, [](unsigned part, int64_t, int64_t) {
                 if (part == 2) throw Error(ErrorCode::kUsageBadArgument, "part 2");
               }),
               Error);
}

// Streams split over a team's threads in groups (3 streams over 2 threads: groups of 1
// and 2), or one stream whose products the team shares: the same integers.
TEST(Exact, CpuBatchDecoderGivesTheSameIntegers) {
  const Models m = tiny_models(9);
  const torch::Tensor bytes = torch::randint(0, 256, {3, m.exact.config.context_bytes()}, torch::kLong);
  CpuTeam team(2, /*min_work=*/0);
  ASSERT_EQ(team.size(), 2u);
  expect_cpu_decoder_matches<CpuBatchDecoder>(m.exact, bytes, {1, 2, 3}, &team);
  expect_cpu_decoder_matches<CpuBatchDecoder>(m.exact, bytes.narrow(0, 1, 1), {2}, &team);
  expect_cpu_decoder_matches<CpuBatchDecoder>(m.exact, bytes, {3, 0, 1});
}

TEST(Exact, SameIntegersForAnyBatchAndThreadCount) {
  const Models m = tiny_models(2);
  const torch::Tensor bytes = torch::randint(0, 256, {5, 77}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3, 1});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const torch::Tensor one_thread = m.exact.forward(bytes, modality);
  at::set_num_threads(std::max(2, threads));
  const torch::Tensor many_threads = m.exact.forward(bytes, modality);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one_thread, many_threads));
  for (int64_t b = 0; b < 5; ++b) {
    const torch::Tensor alone = m.exact.forward(bytes.narrow(0, b, 1), modality.narrow(0, b, 1));
    EXPECT_TRUE(torch::equal(alone[0], one_thread[b])) << "stream " << b;
  }
  // A prefix is the prefix's own forward pass: nothing leaks backwards.
  const torch::Tensor prefix = m.exact.forward(bytes.narrow(1, 0, 13), modality);
  EXPECT_TRUE(torch::equal(prefix, one_thread.narrow(1, 0, 13)));
}

// Cross-entropy in bits per byte of weights [B, T, 256] (normalised here in double: a
// measure of the model, not the coder's table) for the bytes [B, T].
double bits_per_byte(const torch::Tensor& weights, const torch::Tensor& bytes) {
  const torch::Tensor w = weights.to(torch::kDouble);
  const torch::Tensor p = w.gather(2, bytes.unsqueeze(2)).squeeze(2) / w.sum(-1);
  return -torch::log2(p.clamp_min(1e-12)).mean().item<double>();
}

TEST(Exact, CloseToTheFloatModel) {
  Models m = tiny_models(3);
  const torch::Tensor bytes = torch::randint(0, 256, {4, 96}, torch::kLong);
  const torch::Tensor modality = torch::tensor({0, 1, 2, 3});
  torch::NoGradGuard no_grad;
  const torch::Tensor logp = torch::log_softmax(m.float_model->forward(bytes, modality), -1);
  const double float_bpb =
      -logp.gather(2, bytes.unsqueeze(2)).mean().item<double>() / std::log(2.0);
  const double exact_bpb = bits_per_byte(m.exact.forward(bytes, modality), bytes);
  EXPECT_NEAR(exact_bpb, float_bpb, 0.05 * float_bpb) << "float " << float_bpb;
}

TEST(Exact, ModelFileRoundTripAndHostileValues) {
  const Models m = tiny_models(4);
  const Checkpoint file = m.exact.to_checkpoint();
  const ExactModel loaded = ExactModel::from_checkpoint(file);
  const torch::Tensor bytes = torch::randint(0, 256, {2, 40}, torch::kLong);
  const torch::Tensor modality = torch::tensor({1, 3});
  EXPECT_TRUE(torch::equal(loaded.forward(bytes, modality), m.exact.forward(bytes, modality)));
  // Integer tensors that fit int32 are stored so (half the bytes), and load as before.
  for (const NamedTensor& t : file.tensors) {
    if (t.name == "global_position" || t.name == "attn_table") {
      EXPECT_EQ(t.tensor.scalar_type(), torch::kInt) << t.name;
    }
  }
  Checkpoint wide = file;
  for (NamedTensor& t : wide.tensors)
    if (t.tensor.scalar_type() == torch::kInt) t.tensor = t.tensor.to(torch::kLong);
  EXPECT_TRUE(torch::equal(ExactModel::from_checkpoint(wide).forward(bytes, modality),
                           m.exact.forward(bytes, modality)));

  // Values that could overflow int64 or divide by zero are refused, naming the tensor (an
  // int64 tensor in a hostile file, whatever the writer would have stored).
  auto tampered = [&](const std::string& name, int64_t index, int64_t value) {
    Checkpoint bad = file;
    for (NamedTensor& t : bad.tensors)
      if (t.name == name) {
        t.tensor = t.tensor.scalar_type() == torch::kInt ? t.tensor.to(torch::kLong) : t.tensor.clone();
        t.tensor.view({-1})[index] = value;
      }
    try {
      ExactModel::from_checkpoint(bad);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kModelMismatch) << e.what();
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(tampered("attn_table", 0, 0).find("starts at 0"), std::string::npos);
  EXPECT_NE(tampered("global.layers.0.qkv.mult", 0, int64_t(1) << 50).find("global.layers.0.qkv.mult"),
            std::string::npos);
  EXPECT_NE(tampered("local.layers.0.score_mult", 0, -1).find("outside"), std::string::npos);
  EXPECT_NE(tampered("head.weight", 0, -128).find("head.weight"), std::string::npos);

  Checkpoint missing = file;
  missing.tensors.pop_back();
  EXPECT_THROW(ExactModel::from_checkpoint(missing), Error);
  Checkpoint float_file = file;
  float_file.train_json = "";
  EXPECT_THROW(ExactModel::from_checkpoint(float_file), Error);
}

TEST(Exact, EachModalityKeepsItsOwnActivationScales) {
  // Text from a small alphabet and audio-like bytes spread over all values excite the
  // network differently, so their calibrated scales differ.
  torch::manual_seed(7);
  Megabyte network(preset("tiny"));
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : network->parameters()) p.normal_(0.0, 0.3);
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mbz_exact_modality_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  Checkpoint float_file;
  float_file.config_json = network->config.to_json();
  float_file.tensors = model_tensors(network);
  write_checkpoint((dir / "f.mbzm").string(), float_file);
  std::vector<uint8_t> text(2048), audio(2048);
  for (size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<uint8_t>('a' + (i * 7 + i / 13) % 26);
    audio[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  }
  auto quantized = [&](const std::string& name, bool with_text, bool with_audio) {
    Corpus calibration;
    if (with_text) calibration.streams[1] = text;
    if (with_audio) calibration.streams[3] = audio;
    const std::string path = (dir / name).string();
    quantize_checkpoint((dir / "f.mbzm").string(), calibration, 4, path);
    return path;
  };
  const std::string both = quantized("both.mbzq", true, true);
  const auto mixed = load_exact_model(both);
  const auto text_only = load_exact_model(quantized("text.mbzq", true, false));
  const auto audio_only = load_exact_model(quantized("audio.mbzq", false, true));
  const auto streams = table_hash_streams(8, 200);
  auto hash = [&](const ModelFactory& m, uint8_t modality) {
    return table_hash(m, streams, modality, 8, 1);
  };
  EXPECT_EQ(hash(*mixed, 1), hash(*text_only, 1));
  EXPECT_EQ(hash(*mixed, 3), hash(*audio_only, 3));
  EXPECT_NE(hash(*text_only, 3), hash(*audio_only, 3));  // the scales did differ
  bool own = false;
  for (const NamedTensor& t : read_checkpoint(both).tensors) own |= t.name.starts_with("modality3/");
  EXPECT_TRUE(own);
  std::filesystem::remove_all(dir);
}

// A checkpoint trained on windows shorter than its context quantizes to a model of that
// context (the exact model codes in windows of its context, and positions past the
// training windows never trained); one that records no window keeps its context.
TEST(Exact, QuantizeCutsTheContextToTheTrainedWindow) {
  torch::manual_seed(3);
  Megabyte network(preset("tiny"));  // 32 patches of 4 bytes
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mbz_exact_window_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  Corpus calibration;
  calibration.streams[1].assign(1024, 'a');
  auto quantized_context = [&](const std::string& train_json) {
    Checkpoint float_file;
    float_file.config_json = network->config.to_json();
    float_file.train_json = train_json;
    float_file.tensors = model_tensors(network);
    write_checkpoint((dir / "f.mbzm").string(), float_file);
    const std::string path = (dir / "q.mbzq").string();
    quantize_checkpoint((dir / "f.mbzm").string(), calibration, 2, path);
    return config_from_json(read_checkpoint(path).config_json).context;
  };
  EXPECT_EQ(quantized_context(R"({"seed": 1, "window": 62})"), 16);
  EXPECT_EQ(quantized_context(R"({"seed": 1, "window": 4096})"), 32);
  EXPECT_EQ(quantized_context(""), 32);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mbz::model
