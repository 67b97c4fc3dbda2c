// Format 2 segments (codec/segment_coder.h, FORMAT.md "Lanes"): the model, cm and hybrid
// methods round trip on text, binary and edge sizes at and around lane counts, alone and
// through the archive; archives do not depend on the thread count, decode whatever their
// lane count, and check the new header fields; a one-lane model payload is version 1's,
// and version 4's model payload (a range coder a lane) checks its lane sizes.
// The byte model is order2-v1 (fast); the bundled network is measured in bench/.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "codec/archive.h"
#include "codec/checksum.h"
#include "codec/chunk_coder.h"
#include "codec/endian.h"
#include "codec/error.h"
#include "codec/segment_coder.h"
#include "codec_test_util.h"

namespace mbz {
namespace {

using test::order2;
using test::random_bytes;
using test::text_bytes;

constexpr int kModel = static_cast<int>(ChunkMethod::kModel);
constexpr int kCm = static_cast<int>(ChunkMethod::kCm);
constexpr int kHybrid = static_cast<int>(ChunkMethod::kHybrid);

// Small tables, so that many segments stay fast; cm in one lane (version 3) or, with
// `cm_lanes`, in that many (version 2 codes cm in the header's lanes).
SegmentSetup small_setup(uint32_t lanes, uint32_t cm_lanes = 1) {
  return {lanes, cm::Config{16, 10, {}}, cm_lanes};
}

std::vector<uint8_t> cycle_of_all_values(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7);
  return v;
}

struct Options {
  uint32_t lanes = 1;
  int chunk_log = 12;
  bool model = true, cm = true, hybrid = true;
  int zstd_level = 19;
  unsigned threads = 1;
};

std::vector<uint8_t> compress(std::span<const uint8_t> data, const Options& o) {
  Header header = test::header_for(o.chunk_log, data.size());
  header.lanes = o.lanes;
  header.cm_context_bits = 16;
  header.cm_match_bits = 10;
  EncodeOptions options;
  options.threads = o.threads;
  options.zstd_level = o.zstd_level;
  options.try_model = o.model;
  options.try_cm = o.cm;
  options.try_hybrid = o.hybrid;
  options.verify = true;
  return compress_buffer(data, header, order2(), options);
}

std::vector<uint8_t> decompress(std::span<const uint8_t> archive, unsigned threads = 1,
                                const ModelFactory* model = &order2()) {
  DecodeOptions options;
  options.threads = threads;
  return decompress_buffer(archive, model, options);
}

std::vector<ChunkMethod> methods_of(std::span<const uint8_t> archive) {
  MemoryReader in(archive);
  ArchiveReader reader(in);
  std::vector<ChunkMethod> methods;
  for (const ChunkInfo& c : reader.list(nullptr)) methods.push_back(c.header.method);
  return methods;
}

TEST(Segment, EveryMethodRoundTripsAtLaneBoundaries) {
  const auto model = order2().create(64);
  // lanes, and cm's lanes: one (version 3) or the same (version 2)
  const std::pair<uint32_t, uint32_t> setups[] = {{1, 1},  {3, 1},  {3, 3}, {8, 1},
                                                  {8, 8},  {64, 1}, {64, 64}};
  for (const auto& [lanes, cm_lanes] : setups) {
    const SegmentSetup setup = small_setup(lanes, cm_lanes);
    for (size_t size : {size_t{1}, size_t{2}, size_t{lanes - 1}, size_t{lanes}, size_t{lanes + 1},
                        size_t{3 * lanes + 2}, size_t{2000}}) {
      if (size == 0) continue;
      const std::vector<uint8_t> inputs[] = {text_bytes(size, 1), random_bytes(size, 2),
                                             cycle_of_all_values(size)};
      for (const auto& data : inputs) {
        const SegmentPayloads out = encode_segment(data, setup, model.get(), {}, SIZE_MAX);
        for (int m : {kModel, kCm, kHybrid}) {
          // Random data may be given up (it does not compress); text never is.
          if (!out.coded[m]) continue;
          std::vector<uint8_t> back(size);
          decode_segment(static_cast<ChunkMethod>(m), out.payload[m], back, setup, model.get());
          EXPECT_EQ(back, data) << method_name(static_cast<ChunkMethod>(m)) << ", " << lanes
                                << " lanes (cm " << cm_lanes << "), " << size << " bytes";
        }
        // Nothing is given up before its first checkpoint, at 16 KiB, unless cm, coded
        // first in a pass of its own, needed less.
        EXPECT_TRUE(out.coded[kCm]) << size;
        if (cm_lanes == lanes) EXPECT_TRUE(out.coded[kModel] && out.coded[kHybrid]) << size;
        for (int m : {kModel, kHybrid})
          if (cm_lanes != lanes && out.coded[m])
            EXPECT_LT(out.payload[m].size(), out.payload[kCm].size()) << size;
      }
    }
  }
}

// order2-v1 with intervals() (BatchByteModel's encoder path for a model on a GPU): each
// byte's interval from the table predict() gives, counted.
class IntervalModel : public BatchByteModel {
 public:
  explicit IntervalModel(size_t n) : inner_(order2().create(n)) {}
  void reset(size_t n) override {
    inner_->reset(n);
    ahead_.clear();
    position_ = 0;
  }
  size_t max_streams() const override { return inner_->max_streams(); }
  void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) override {
    inner_->predict(ids, tables);
  }
  void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) override {
    inner_->update(ids, bytes);
    ++position_;
  }
  void lookahead(std::span<const std::span<const uint8_t>> streams) override {
    ahead_.assign(streams.begin(), streams.end());
  }
  bool intervals(std::span<const uint32_t> ids, std::span<uint32_t> start,
                 std::span<uint32_t> freq) override {
    std::vector<Cdf> tables(ids.size());
    inner_->predict(ids, tables);
    for (size_t j = 0; j < ids.size(); ++j) {
      const uint8_t byte = ahead_.at(ids[j])[position_];
      start[j] = tables[j].start(byte);
      freq[j] = tables[j].freq(byte);
    }
    ++calls;
    return true;
  }
  size_t calls = 0;

 private:
  std::unique_ptr<BatchByteModel> inner_;
  std::vector<std::span<const uint8_t>> ahead_;
  size_t position_ = 0;
};

// The model alone codes from intervals() where the model has them (not with hybrid, which
// needs the tables): the same payload as from the tables, every round.
TEST(Segment, ModelAloneCodesFromIntervals) {
  const auto plain = order2().create(8);
  IntervalModel by_interval(8);
  for (uint32_t lanes : {1u, 3u, 8u}) {
    const SegmentSetup setup = small_setup(lanes);
    for (size_t size : {size_t{1}, size_t{lanes + 1}, size_t{5000}}) {
      const std::vector<uint8_t> data = text_bytes(size, 4);
      for (bool hybrid : {false, true}) {
        by_interval.calls = 0;
        const SegmentMethods methods{true, false, hybrid};
        const SegmentPayloads a = encode_segment(data, setup, plain.get(), methods, SIZE_MAX);
        const SegmentPayloads b = encode_segment(data, setup, &by_interval, methods, SIZE_MAX);
        ASSERT_TRUE(a.coded[kModel]);
        EXPECT_EQ(a.payload[kModel], b.payload[kModel]) << lanes << " lanes, " << size;
        EXPECT_EQ(a.payload[kHybrid], b.payload[kHybrid]) << lanes << " lanes, " << size;
        EXPECT_EQ(by_interval.calls, hybrid ? 0 : (size + lanes - 1) / lanes)
            << lanes << " lanes, " << size;
        std::vector<uint8_t> back(size);
        decode_segment(ChunkMethod::kModel, b.payload[kModel], back, setup, plain.get());
        EXPECT_EQ(back, data);
      }
    }
  }
}

// order2-v1 with all_intervals() as well: every interval computed up front, handed over
// in windows of 7 positions, each window's streams in pieces of 3 in reverse order (as a
// model on a GPU may hand out its sub-batches).
class WholeLaneModel : public IntervalModel {
 public:
  explicit WholeLaneModel(size_t n) : IntervalModel(n), n_(n) {}
  void lookahead(std::span<const std::span<const uint8_t>> streams) override {
    IntervalModel::lookahead(streams);
    streams_.assign(streams.begin(), streams.end());
  }
  bool all_intervals(const IntervalTaker& take) override {
    const size_t n = streams_.size();
    size_t longest = 0;
    for (const auto& s : streams_) longest = std::max(longest, s.size());
    // pairs[k][2p], pairs[k][2p+1]: stream k's interval at position p
    std::vector<std::vector<uint32_t>> pairs(n, std::vector<uint32_t>(2 * longest, 0));
    const auto inner = order2().create(n_);
    inner->reset(n);
    for (size_t t = 0; t < longest; ++t) {
      std::vector<uint32_t> ids;
      for (uint32_t k = 0; k < n; ++k)
        if (t < streams_[k].size()) ids.push_back(k);
      std::vector<Cdf> tables(ids.size());
      std::vector<uint8_t> bytes(ids.size());
      inner->predict(ids, tables);
      for (size_t j = 0; j < ids.size(); ++j) {
        bytes[j] = streams_[ids[j]][t];
        pairs[ids[j]][2 * t] = tables[j].start(bytes[j]);
        pairs[ids[j]][2 * t + 1] = tables[j].freq(bytes[j]);
      }
      inner->update(ids, bytes);
    }
    constexpr uint32_t kWidth = 7, kStreams = 3;
    pieces = 0;
    for (size_t position = 0; position < longest; position += kWidth)
      for (uint32_t first = uint32_t((n - 1) / kStreams * kStreams);; first -= kStreams) {
        const uint32_t count = std::min<uint32_t>(kStreams, uint32_t(n) - first);
        std::vector<uint32_t> piece(size_t{count} * kWidth * 2, 0xFFFF);
        for (uint32_t i = 0; i < count; ++i)
          for (uint32_t p = 0; p < kWidth && position + p < longest; ++p)
            for (int h = 0; h < 2; ++h)
              piece[(size_t{i} * kWidth + p) * 2 + h] = pairs[first + i][2 * (position + p) + h];
        ++pieces;
        if (!take({first, count, position, kWidth, piece.data()})) return true;
        if (first == 0) break;
      }
    return true;
  }
  size_t pieces = 0;

 private:
  size_t n_;
  std::vector<std::span<const uint8_t>> streams_;
};

// The model alone with a coder a lane codes from all_intervals() where the model has it,
// lanes whole in the model's order: the same payload as round by round, given up where
// round by round coding gives it up (at a checkpoint, or on size), the pass then stopped.
TEST(Segment, ModelAloneCodesWholeLanesFromAllIntervals) {
  const auto plain = order2().create(16);
  WholeLaneModel whole(16);
  // A little text, then noise: given up at a later checkpoint than noise alone.
  std::vector<uint8_t> text_then_noise = text_bytes(2000, 5);
  const auto noise = random_bytes(68000, 6);
  text_then_noise.insert(text_then_noise.end(), noise.begin(), noise.end());
  const std::pair<std::vector<uint8_t>, size_t> inputs[] = {
      {text_bytes(1, 4), SIZE_MAX},      {text_bytes(9, 4), SIZE_MAX},
      {text_bytes(5000, 4), SIZE_MAX},   {text_bytes(70000, 4), SIZE_MAX},
      {random_bytes(70000, 3), SIZE_MAX}, {text_then_noise, SIZE_MAX},
      {text_bytes(70000, 4), 3000}};
  for (uint32_t lanes : {1u, 3u, 8u}) {
    const SegmentSetup setup = small_setup(lanes);
    for (const auto& [data, give_up] : inputs) {
      const SegmentMethods methods{true, false, false};
      const SegmentPayloads a = encode_segment(data, setup, plain.get(), methods, give_up);
      const SegmentPayloads b = encode_segment(data, setup, &whole, methods, give_up);
      const std::string what = std::to_string(lanes) + " lanes, " + std::to_string(data.size()) +
                               " bytes, give up at " + std::to_string(give_up);
      EXPECT_EQ(a.coded[kModel], b.coded[kModel]) << what;
      EXPECT_EQ(a.payload[kModel], b.payload[kModel]) << what;
      EXPECT_EQ(whole.calls, 0u) << what;  // intervals() round by round was not needed
      if (b.coded[kModel]) {
        std::vector<uint8_t> back(data.size());
        decode_segment(ChunkMethod::kModel, b.payload[kModel], back, setup, plain.get());
        EXPECT_EQ(back, data) << what;
      } else {  // given up: the model was told to stop
        const size_t all = (data.size() / lanes + 6) / 7 * ((lanes + 2) / 3);
        EXPECT_LT(whole.pieces, all) << what;
      }
    }
  }
  // A checkpoint after the short last lane has ended counts that lane's final size: lanes
  // that start compressible (64 byte values) and end in noise, sized so that the last
  // checkpoint falls past the short lane's end.
  for (const auto& [lanes, size] : {std::pair<uint32_t, size_t>{3, 32770}, {4, 32773},
                                    {5, 32772}, {8, 32777}, {16, 32785}}) {
    const Lanes cut(size, lanes);
    std::vector<uint8_t> data = random_bytes(size, lanes);
    for (uint32_t j = 0; j < lanes; ++j)
      for (uint64_t p = cut.begin(j); p < cut.begin(j) + cut.size_of(j) / 2; ++p) data[p] &= 63;
    const SegmentSetup s = small_setup(lanes);
    const SegmentMethods methods{true, false, false};
    const SegmentPayloads a = encode_segment(data, s, plain.get(), methods, SIZE_MAX);
    const SegmentPayloads b = encode_segment(data, s, &whole, methods, SIZE_MAX);
    EXPECT_EQ(a.coded[kModel], b.coded[kModel]) << lanes << " lanes, " << size;
    EXPECT_EQ(a.payload[kModel], b.payload[kModel]) << lanes << " lanes, " << size;
  }
  // What the checks above rest on: these inputs give the method up in both ways.
  const SegmentSetup setup = small_setup(3);
  EXPECT_FALSE(encode_segment(random_bytes(70000, 3), setup, &whole, {true, false, false}, SIZE_MAX)
                   .coded[kModel]);
  EXPECT_FALSE(encode_segment(text_then_noise, setup, &whole, {true, false, false}, SIZE_MAX)
                   .coded[kModel]);
  EXPECT_FALSE(encode_segment(text_bytes(70000, 4), setup, &whole, {true, false, false}, 3000)
                   .coded[kModel]);
  // Before version 4 (one coder for all lanes) the rounds' order is the payload's.
  SegmentSetup v3 = setup;
  v3.lane_streams = false;
  const auto data = text_bytes(5000, 4);
  EXPECT_EQ(encode_segment(data, v3, &whole, {true, false, false}, SIZE_MAX).payload[kModel],
            encode_segment(data, v3, plain.get(), {true, false, false}, SIZE_MAX).payload[kModel]);
  EXPECT_NE(whole.calls, 0u);
}

TEST(Segment, ArchivesOfEachMethodAlone) {
  const auto text = text_bytes(9000, 3);  // three segments of 4 KiB, the last short
  for (int m : {kModel, kCm, kHybrid}) {
    Options o;
    o.lanes = 5;
    o.zstd_level = 0;
    o.model = m == kModel;
    o.cm = m == kCm;
    o.hybrid = m == kHybrid;
    const auto archive = compress(text, o);
    EXPECT_EQ(methods_of(archive), std::vector<ChunkMethod>(3, static_cast<ChunkMethod>(m)));
    EXPECT_EQ(decompress(archive), text);
  }
}

TEST(Segment, EdgeSizesThroughTheArchive) {
  Options o;
  o.lanes = 4;
  o.chunk_log = 10;
  for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{1023},
                   size_t{1024}, size_t{1025}, size_t{3000}}) {
    for (const auto& data : {text_bytes(n, 4), random_bytes(n, 5), cycle_of_all_values(n)}) {
      const auto archive = compress(data, o);
      EXPECT_EQ(decompress(archive), data) << n;
      EXPECT_EQ(decompress(archive, 2), data) << n;
    }
  }
}

TEST(Segment, ThreadCountNeverChangesTheBytes) {
  auto data = text_bytes(20000, 6);
  const auto noise = random_bytes(4096, 7);
  data.insert(data.begin() + 8192, noise.begin(), noise.end());  // chunk 2
  Options o;
  o.lanes = 4;
  const auto one = compress(data, o);
  o.threads = 2;
  EXPECT_EQ(compress(data, o), one);
  const auto methods = methods_of(one);
  EXPECT_NE(std::ranges::count(methods, ChunkMethod::kStored), 0);
  EXPECT_NE(std::ranges::count(methods, ChunkMethod::kCm) +
                std::ranges::count(methods, ChunkMethod::kHybrid),
            0);
  EXPECT_EQ(decompress(one, 1), data);
  EXPECT_EQ(decompress(one, 2), data);
}

TEST(Segment, EveryLaneCountDecodes) {
  const auto data = text_bytes(6000, 8);
  std::vector<std::vector<uint8_t>> archives;
  // (Not thousands of lanes: each of order2-v1's streams is a model of its own.)
  for (uint32_t lanes : {1u, 2u, 5u, 64u, 257u}) {
    Options o;
    o.lanes = lanes;
    o.chunk_log = 13;
    o.zstd_level = 0;
    archives.push_back(compress(data, o));
    EXPECT_EQ(decompress(archives.back()), data) << lanes << " lanes";
    MemoryReader in(archives.back());
    EXPECT_EQ(ArchiveReader(in).header().lanes, lanes);
  }
  // The lane count changes the coding order, so the bytes.
  for (size_t i = 1; i < archives.size(); ++i) EXPECT_NE(archives[i], archives[0]);
}

// Version 3: lanes give the byte model a batch; cm, which has no use for one, codes each
// chunk in one lane whatever the header says, so its chunks are the same at any lane count.
TEST(Segment, CmCodesOneLaneWhateverTheLanes) {
  const auto data = text_bytes(9000, 12);
  std::vector<std::vector<uint8_t>> bodies;
  for (uint32_t lanes : {1u, 7u, 300u}) {
    Options o;
    o.lanes = lanes;
    o.zstd_level = 0;
    o.model = o.hybrid = false;
    const auto archive = compress(data, o);
    EXPECT_EQ(decompress(archive), data) << lanes << " lanes";
    EXPECT_EQ(methods_of(archive), std::vector<ChunkMethod>(3, ChunkMethod::kCm));
    MemoryReader in(archive);
    const Header header = ArchiveReader(in).header();
    EXPECT_EQ(header.version, kFormatVersion);
    EXPECT_EQ(header.lanes, lanes);
    bodies.emplace_back(archive.begin() + header.size(), archive.end());
  }
  EXPECT_EQ(bodies[1], bodies[0]);
  EXPECT_EQ(bodies[2], bodies[0]);
}

// With many lanes, the model's methods code in K lanes but cm in one, so a level that
// tries the byte model never codes larger than cm alone would.
TEST(Segment, ManyLanesNeverCodeLargerThanCmAlone) {
  const auto data = text_bytes(12000, 13);
  Options cm_only;
  cm_only.lanes = 64;
  cm_only.model = cm_only.hybrid = false;
  Options all;
  all.lanes = 64;
  EXPECT_LE(compress(data, all).size(), compress(data, cm_only).size());
  EXPECT_EQ(decompress(compress(data, all)), data);
}

TEST(Segment, OneLaneModelPayloadIsVersion1s) {
  const auto data = text_bytes(3000, 9);
  const auto model = order2().create(1);
  const SegmentPayloads out =
      encode_segment(data, small_setup(1), model.get(), {true, false, false}, SIZE_MAX);
  std::vector<std::vector<uint8_t>> v1;
  const std::span<const uint8_t> chunk(data);
  const size_t give_up = SIZE_MAX;
  model_encode(*model, {&chunk, 1}, {&give_up, 1}, v1);
  ASSERT_TRUE(out.coded[kModel]);
  EXPECT_EQ(out.payload[kModel], v1[0]);
}

TEST(Segment, OnlyModelMethodsNeedTheModel) {
  const auto data = text_bytes(5000, 10);
  Options o;
  o.zstd_level = 0;
  o.model = o.hybrid = false;
  EXPECT_EQ(decompress(compress(data, o), 1, nullptr), data);  // cm alone
  o.cm = false;
  o.hybrid = true;
  try {
    decompress(compress(data, o), 1, nullptr);
    FAIL() << "a hybrid archive decoded without its model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelUnknown);
    EXPECT_NE(std::string(e.what()).find("chunk 0 (offset 55)"), std::string::npos) << e.what();
  }
}

// The offset of chunk 0's header: a version 2 header with order2-v1's name.
constexpr size_t kFirstChunk = 46 + 9;

TEST(Segment, ShortenedCmPayloadNamesTheChunk) {
  const auto data = text_bytes(3000, 11);
  Options o;
  o.zstd_level = 0;
  o.model = o.hybrid = false;
  auto archive = compress(data, o);
  ASSERT_EQ(archive[kFirstChunk], kCm);
  // Drop the payload's last byte and say so in the chunk header: the coder runs out.
  const size_t payload = load_le(&archive[kFirstChunk + 5], 4);
  archive.erase(archive.begin() + static_cast<std::ptrdiff_t>(kFirstChunk + 13 + payload - 1));
  std::vector<uint8_t> size;
  store_le(size, payload - 1, 4);
  std::copy(size.begin(), size.end(), archive.begin() + kFirstChunk + 5);
  try {
    decompress(archive);
    FAIL() << "a shortened payload decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptTruncated);
    EXPECT_EQ(std::string(e.what()).rfind("chunk 0 (offset 55): cm payload is damaged (", 0), 0u)
        << e.what();
  }
}

// A model payload of version 4 starts with its lane streams' sizes: sizes that run past
// the payload, or a payload that ends inside them, are refused by name.
TEST(Segment, ModelLaneSizesAreChecked) {
  const auto data = text_bytes(4000, 12);
  const SegmentSetup setup = small_setup(4);
  const auto model = order2().create(4);
  const SegmentPayloads out = encode_segment(data, setup, model.get(), {true, false, false}, SIZE_MAX);
  ASSERT_TRUE(out.coded[kModel]);
  const std::vector<uint8_t>& payload = out.payload[kModel];
  std::vector<uint8_t> back(data.size());
  decode_segment(ChunkMethod::kModel, payload, back, setup, model.get());
  EXPECT_EQ(back, data);
  auto code_of = [&](const std::vector<uint8_t>& p) {
    try {
      decode_segment(ChunkMethod::kModel, p, back, setup, model.get());
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model payload"), std::string::npos) << e.what();
      return static_cast<int>(e.code());
    }
    return 0;  // decoded
  };
  std::vector<uint8_t> too_big = payload;
  too_big[0] = too_big[1] = 0xFF, too_big[2] = 0x7F;  // a first size of about 2^21
  constexpr int kChunk = static_cast<int>(ErrorCode::kCorruptChunk);
  EXPECT_EQ(code_of(too_big), kChunk);
  EXPECT_EQ(code_of({0x85, 0x83}), static_cast<int>(ErrorCode::kCorruptTruncated));  // ends in a size
  EXPECT_EQ(code_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x80}), kChunk);  // a size too long
  // Version 3's payload (one range coder for all lanes) is another coding of the same bytes.
  SegmentSetup v3 = setup;
  v3.lane_streams = false;
  const SegmentPayloads old = encode_segment(data, v3, model.get(), {true, false, false}, SIZE_MAX);
  EXPECT_NE(old.payload[kModel], payload);
  decode_segment(ChunkMethod::kModel, old.payload[kModel], back, v3, model.get());
  EXPECT_EQ(back, data);
}

// Rewrites the header checksum after an edit, so that the edit reaches the field checks.
void reseal(std::vector<uint8_t>& archive, size_t header_size) {
  const auto sum = static_cast<uint32_t>(xxh64({archive.data(), header_size - 4}));
  std::vector<uint8_t> bytes;
  store_le(bytes, sum, 4);
  std::copy(bytes.begin(), bytes.end(), archive.begin() + header_size - 4);
}

TEST(Segment, HeaderFieldsAreChecked) {
  Header h = test::header_for(12, 0);
  for (uint32_t lanes : {0u, kMaxLanes + 1}) {
    h.lanes = lanes;
    EXPECT_THROW(serialize_header(h), Error);
  }
  h.lanes = 1;
  h.cm_context_bits = kMaxCmContextBits + 1;
  EXPECT_THROW(serialize_header(h), Error);

  const auto archive = compress({}, Options{});
  const size_t fields = kFirstChunk - 9;  // lanes, revision, context bits, match bits
  struct Case {
    size_t at;
    uint8_t value;
    const char* message;
  };
  for (const Case& c : {Case{fields, 0, "lane count must be 1 to 4096, found 0 at offset 46"},
                        Case{fields + 2, 3, "context mixer revision 3 is unknown"},
                        Case{fields + 3, 40, "context mixer table sizes 40/10 bits outside"}}) {
    auto bad = archive;
    if (c.at == fields) bad[fields + 1] = 0;
    bad[c.at] = c.value;
    reseal(bad, kFirstChunk);
    try {
      decompress(bad);
      FAIL() << c.message;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFormatField);
      EXPECT_EQ(std::string(e.what()).rfind(c.message, 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace mbz
