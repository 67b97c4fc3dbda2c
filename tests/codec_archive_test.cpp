// Archive round trips over edge sizes, method choice, the size bound, and independence of
// the output from thread count and batch size.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "codec/archive.h"
#include "codec/error.h"
#include "codec/format.h"
#include "codec_test_util.h"

namespace mbz {
namespace {

using test::header_for;
using test::order2;
using test::random_bytes;
using test::text_bytes;

std::vector<uint8_t> compress(std::span<const uint8_t> data, int chunk_log, unsigned threads = 1,
                              const ModelFactory& model = order2()) {
  EncodeOptions options;
  options.threads = threads;
  options.verify = true;
  return compress_buffer(data, header_for(chunk_log, data.size()), model, options);
}

std::vector<uint8_t> decompress(std::span<const uint8_t> archive, unsigned threads = 1,
                                const ModelFactory& model = order2()) {
  DecodeOptions options;
  options.threads = threads;
  return decompress_buffer(archive, &model, options);
}

MethodStats stats_of(std::span<const uint8_t> archive) {
  MemoryReader in(archive);
  ArchiveReader reader(in);
  MethodStats s;
  for (const ChunkInfo& c : reader.list(nullptr)) ++s.chunks[static_cast<int>(c.header.method)];
  return s;
}

void expect_round_trip(const std::vector<uint8_t>& data, int chunk_log) {
  const auto archive = compress(data, chunk_log);
  EXPECT_EQ(decompress(archive), data) << data.size() << " bytes, chunk log " << chunk_log;
}

TEST(Archive, EmptyInput) {
  const std::vector<uint8_t> empty;
  const auto archive = compress(empty, kDefaultChunkLog);
  EXPECT_EQ(archive.size(), header_for(kDefaultChunkLog, 0).size() + 1 + kTrailerSize);
  EXPECT_TRUE(decompress(archive).empty());
}

TEST(Archive, OneByte) {
  expect_round_trip({42}, kDefaultChunkLog);
}

TEST(Archive, All256ByteValues) {
  std::vector<uint8_t> data(256);
  for (int i = 0; i < 256; ++i) data[i] = static_cast<uint8_t>(i);
  expect_round_trip(data, kDefaultChunkLog);
}

TEST(Archive, OneMebibyteOfZerosShrinksToAlmostNothing) {
  const std::vector<uint8_t> zeros(1 << 20, 0);
  const auto archive = compress(zeros, 16);
  EXPECT_LT(archive.size(), 2000u);
  EXPECT_EQ(decompress(archive), zeros);
}

TEST(Archive, RandomDataIsStored) {
  const auto data = random_bytes(100000, 7);
  const auto archive = compress(data, 14);
  EXPECT_EQ(decompress(archive), data);
  const MethodStats s = stats_of(archive);
  EXPECT_EQ(s.chunks[0], 7u);  // ceil(100000 / 16384), all stored
}

TEST(Archive, SizesAroundTheChunkSize) {
  constexpr int kLog = 10;
  constexpr size_t kChunk = size_t{1} << kLog;
  for (size_t n : {kChunk - 1, kChunk, kChunk + 1, 2 * kChunk - 1, 2 * kChunk, 2 * kChunk + 1}) {
    expect_round_trip(text_bytes(n, 8), kLog);
    expect_round_trip(random_bytes(n, 9), kLog);
  }
}

TEST(Archive, TextChunksUseTheByteModelMixedWithContexts) {
  const auto data = text_bytes(4 << 16, 10);
  const auto archive = compress(data, 16);
  EXPECT_EQ(decompress(archive), data);
  const MethodStats s = stats_of(archive);
  // Every chunk: the hybrid beats the model and the context mixer alone, and zstd -19.
  EXPECT_EQ(s.chunks[static_cast<int>(ChunkMethod::kHybrid)], 4u);
  EXPECT_LT(archive.size(), data.size() / 3);
}

TEST(Archive, MixedContentPicksPerChunk) {
  auto data = text_bytes(3 << 14, 11);
  const auto noise = random_bytes(1 << 14, 12);
  data.insert(data.begin() + (1 << 14), noise.begin(), noise.end());
  const auto archive = compress(data, 14);
  EXPECT_EQ(decompress(archive), data);
  const MethodStats s = stats_of(archive);
  EXPECT_EQ(s.chunks[0], 1u);
  EXPECT_EQ(s.chunks[static_cast<int>(ChunkMethod::kHybrid)], 3u);
}

TEST(Archive, SizeBoundOnTenMebibytesOfRandomData) {
  // FORMAT.md: n + 13 * ceil(n / C) + 71 + N bytes at most.
  const auto data = random_bytes(10 << 20, 13);
  EncodeOptions options;
  options.threads = 2;
  const Header header = header_for(kDefaultChunkLog, data.size());
  const auto archive = compress_buffer(data, header, order2(), options);
  const size_t bound = data.size() + 13 * 10 + 71 + header.model.name.size();
  EXPECT_LE(archive.size(), bound);
  EXPECT_EQ(archive.size(), bound);  // random data: every chunk stored, nothing saved
  EXPECT_EQ(decompress(archive, 2), data);
}

TEST(Archive, ThreadCountNeverChangesTheBytes) {
  auto data = text_bytes(150000, 14);
  const auto noise = random_bytes(30000, 15);
  data.insert(data.end(), noise.begin(), noise.end());
  const auto one = compress(data, 12, 1);
  EXPECT_EQ(compress(data, 12, 2), one);
  EXPECT_EQ(compress(data, 12, 5), one);
  EXPECT_EQ(decompress(one, 1), data);
  EXPECT_EQ(decompress(one, 3), data);
}

// The order-2 model offered in batches of 3 streams: a version 1 reader would advance three
// chunks in lockstep per instance, as it will for the neural model.
class BatchedOrder2 final : public ModelFactory {
 public:
  const ModelIdentity& identity() const override { return order2().identity(); }
  std::unique_ptr<BatchByteModel> create(size_t max_streams) const override {
    return order2().create(max_streams);
  }
  size_t preferred_batch() const override { return 3; }
};

TEST(Archive, BatchSizeNeverChangesTheBytes) {
  const auto data = text_bytes(10 * 1024 + 333, 16);  // 11 chunks: the last batch is partial
  const BatchedOrder2 batched;
  const auto one = compress(data, 10, 1);
  EXPECT_EQ(compress(data, 10, 1, batched), one);
  EXPECT_EQ(compress(data, 10, 2, batched), one);
  EXPECT_EQ(decompress(one, 1, batched), data);
  EXPECT_EQ(decompress(one, 2, batched), data);
}

// The order-2 model as a model whose device holds `most` instances at once: it counts its
// live instances and the most there ever were.
class ScarceOrder2 final : public ModelFactory {
 public:
  explicit ScarceOrder2(unsigned most) : most_(most) {}
  const ModelIdentity& identity() const override { return order2().identity(); }
  std::unique_ptr<BatchByteModel> create(size_t max_streams) const override {
    struct Counted final : BatchByteModel {
      Counted(std::unique_ptr<BatchByteModel> m, const ScarceOrder2& f) : inner(std::move(m)), f(f) {
        const std::lock_guard<std::mutex> lock(f.mutex_);
        f.peak_ = std::max(f.peak_, ++f.live_);
      }
      ~Counted() override {
        const std::lock_guard<std::mutex> lock(f.mutex_);
        --f.live_;
      }
      void reset(size_t n) override { inner->reset(n); }
      size_t max_streams() const override { return inner->max_streams(); }
      void set_modality(uint8_t m) override { inner->set_modality(m); }
      void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) override {
        inner->predict(ids, tables);
      }
      void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) override {
        inner->update(ids, bytes);
      }
      std::unique_ptr<BatchByteModel> inner;
      const ScarceOrder2& f;
    };
    return std::make_unique<Counted>(order2().create(max_streams), *this);
  }
  size_t preferred_batch() const override { return 1; }
  unsigned max_instances(size_t) const override { return most_; }
  unsigned peak() const { return peak_; }

 private:
  unsigned most_;
  mutable std::mutex mutex_;
  mutable unsigned live_ = 0, peak_ = 0;
};

TEST(Archive, NoMoreModelInstancesAtOnceThanTheDeviceHolds) {
  const auto data = text_bytes(12 * 1024, 19);  // 12 chunks of 1 KiB
  const auto one = compress(data, 10, 1);
  const ScarceOrder2 encoder(2), decoder(2);
  EXPECT_EQ(compress(data, 10, 6, encoder), one);
  EXPECT_EQ(decompress(one, 6, decoder), data);
  EXPECT_GE(encoder.peak(), 1u);
  EXPECT_LE(encoder.peak(), 2u);
  EXPECT_GE(decoder.peak(), 1u);
  EXPECT_LE(decoder.peak(), 2u);
}

TEST(Archive, StreamedInputWithUnknownSize) {
  const auto data = text_bytes(5000, 17);
  const auto archive = compress_buffer(data, header_for(10, kUnknownSize), order2(), {});
  MemoryReader in(archive);
  ArchiveReader reader(in);
  EXPECT_EQ(reader.header().original_size, kUnknownSize);
  EXPECT_EQ(decompress(archive), data);
}

TEST(Archive, WrongModelIsRefused) {
  const auto data = text_bytes(5000, 18);
  const auto archive = compress(data, 10);
  class Other final : public ModelFactory {
   public:
    const ModelIdentity& identity() const override { return id_; }
    std::unique_ptr<BatchByteModel> create(size_t n) const override { return order2().create(n); }
    size_t preferred_batch() const override { return 1; }
    ModelIdentity id_ = builtin_identity("other", "other");
  } other;
  try {
    decompress(archive, 1, other);
    FAIL() << "decoded with the wrong model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
    EXPECT_NE(std::string(e.what()).find("order2-v1"), std::string::npos) << e.what();
  }
}

TEST(Archive, HeaderRoundTripsEveryField) {
  Header h = header_for(17, 123456789);
  h.modality = 2;
  h.params = {1, 2, 3, 4, 5};
  h.lanes = 4095;
  h.cm_context_bits = 20;
  h.cm_match_bits = 5;
  const auto bytes = serialize_header(h);
  EXPECT_EQ(bytes.size(), h.size());
  MemoryReader in(bytes);
  const Header back = read_header(in);
  EXPECT_EQ(back.original_size, 123456789u);
  EXPECT_EQ(back.chunk_log, 17);
  EXPECT_EQ(back.modality, 2);
  EXPECT_EQ(back.params, h.params);
  EXPECT_EQ(back.model, h.model);
  EXPECT_EQ(back.version, kFormatVersion);
  EXPECT_EQ(back.lanes, 4095u);
  EXPECT_EQ(back.cm_revision, kCmRevision);
  EXPECT_EQ(back.cm_context_bits, 20);
  EXPECT_EQ(back.cm_match_bits, 5);
}

}  // namespace
}  // namespace mbz
