#include "codec/segment_coder.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <string>

#include "codec/cm/cm_codec.h"
#include "codec/endian.h"
#include "codec/error.h"
#include "codec/lanes.h"
#include "codec/range_coder.h"

namespace mbz {
namespace {

// The byte model's side of a pass: K streams stepped once a round, the first live(t) of
// them in round t (codec/lanes.h), with the tables of the round's bytes.
class LaneTables {
 public:
  LaneTables(BatchByteModel& model, const Lanes& lanes)
      : model_(model),
        tables_(lanes.count()),
        ids_(lanes.count()),
        bytes_(lanes.count()),
        start_(lanes.count()),
        freq_(lanes.count()) {
    std::iota(ids_.begin(), ids_.end(), 0u);
    model_.reset(lanes.live(0));
  }
  // The tables of round t's bytes, live of them.
  void predict(uint32_t live) {
    live_ = live;
    model_.predict({ids_.data(), live}, {tables_.data(), live});
  }
  // Encoding: every lane's bytes, so that the model may compute many tables at once
  // (BatchByteModel::lookahead).
  void lookahead(std::span<const uint8_t> raw, const Lanes& lanes) {
    std::vector<std::span<const uint8_t>> streams;
    for (uint32_t j = 0; j < lanes.live(0); ++j)
      streams.push_back(raw.subspan(lanes.begin(j), lanes.size_of(j)));
    model_.lookahead(streams);
  }
  // Encoding with the model alone, after lookahead: the interval of each live lane's byte
  // of round t instead of its table (BatchByteModel::intervals; a GPU model then sends 8
  // bytes a position instead of a table). False: the model has no such path, and
  // predict() must be called instead.
  bool intervals(uint32_t live) {
    live_ = live;
    return by_interval_ =
               by_interval_ && model_.intervals({ids_.data(), live}, {start_.data(), live},
                                                {freq_.data(), live});
  }
  // Decoding with the model alone, a range decoder a lane: each live lane's byte found from
  // its decoder's target (BatchByteModel::find), kept for update() and byte(); its interval
  // in start() and freq(). False: the model has no such path, and predict() must be called.
  bool find(uint32_t live, std::span<const uint32_t> targets) {
    live_ = live;
    return by_find_ = by_find_ && model_.find({ids_.data(), live}, targets.first(live),
                                              {bytes_.data(), live}, {start_.data(), live},
                                              {freq_.data(), live});
  }
  uint8_t byte(uint32_t lane) const { return bytes_[lane]; }
  uint32_t start(uint32_t lane) const { return start_[lane]; }
  uint32_t freq(uint32_t lane) const { return freq_[lane]; }
  const Cdf& table(uint32_t lane) const { return tables_[lane]; }
  void set_byte(uint32_t lane, uint8_t byte) { bytes_[lane] = byte; }
  void update() { model_.update({ids_.data(), live_}, {bytes_.data(), live_}); }

 private:
  BatchByteModel& model_;
  std::vector<Cdf> tables_;
  std::vector<uint32_t> ids_;
  std::vector<uint8_t> bytes_;
  std::vector<uint32_t> start_, freq_;
  uint32_t live_ = 0;
  bool by_interval_ = true, by_find_ = true;  // until the model says it has no such path
};

// The writer's rule for giving a method up (see encode_segment): the first coded byte
// count at or past each 64th of the segment, but no closer than every 16 KiB, is a
// checkpoint. (Eighths, as version 1's model chunks had, made 10 MiB of random bytes take
// 16 s: three predictors each coded 1.3 MiB before giving up. A fresh adaptive model, the
// context mixer or order2-v1, codes its first few hundred bytes near 8 bits each, so a
// checkpoint comes only after 16 KiB.)
class Pace {
 public:
  static constexpr size_t kCheckpoints = 64, kMinStep = 16 << 10;
  Pace(size_t size, size_t give_up)
      : size_(size),
        give_up_(give_up),
        step_(std::max(size / kCheckpoints, kMinStep)),
        next_(step_) {}
  // Called after each round with the bytes coded so far; true at a checkpoint.
  bool checkpoint(size_t coded) {
    if (step_ == 0 || coded < next_ || coded >= size_) return false;
    while (next_ <= coded) next_ += step_;
    return true;
  }
  bool too_big(size_t payload) const { return payload >= give_up_; }
  static bool off_pace(size_t payload, size_t coded) {
    return uint64_t{payload} * 64 >= uint64_t{coded} * 63;
  }

 private:
  size_t size_, give_up_, step_, next_;
};

// The model method's range coding: one coder for all lanes, round by round (before version
// 4), or a coder a lane, whose payload is the sizes of all lane streams but the last (LEB128)
// and then the streams in lane order (FORMAT.md, "Lanes").
class ModelEncoder {
 public:
  ModelEncoder(uint32_t live, bool lane_streams) : streams_(lane_streams ? live : 1) {
    coders_.reserve(streams_.size());
    for (std::vector<uint8_t>& s : streams_) coders_.emplace_back(s);
  }
  // The coder of lane j's bytes.
  RangeEncoder& lane(uint32_t j) { return coders_[coders_.size() == 1 ? 0 : j]; }
  // The size of lane j's stream so far (of the one stream, before version 4).
  size_t lane_size(uint32_t j) const { return streams_[streams_.size() == 1 ? 0 : j].size(); }
  // The payload's size so far, less the sizes' own bytes.
  size_t size() const {
    size_t n = 0;
    for (const std::vector<uint8_t>& s : streams_) n += s.size();
    return n;
  }
  std::vector<uint8_t> finish() {
    for (RangeEncoder& c : coders_) c.finish();
    std::vector<uint8_t> out;
    for (size_t j = 0; j + 1 < streams_.size(); ++j)
      for (uint64_t v = streams_[j].size();; v >>= 7) {
        out.push_back(static_cast<uint8_t>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0)));
        if (v < 0x80) break;
      }
    for (const std::vector<uint8_t>& s : streams_) out.insert(out.end(), s.begin(), s.end());
    return out;
  }

 private:
  std::vector<std::vector<uint8_t>> streams_;
  std::vector<RangeEncoder> coders_;
};

// The model method alone with a range coder a lane (version 4 on), from
// BatchByteModel::all_intervals: each lane coded as the model hands its pieces over, in
// whatever order it computes them. The method is given up exactly where round by round
// coding (encode_segment's loop) gives it up: Pace's checkpoints fall after the same rounds,
// each is judged once every lane has passed it, on the sizes the lanes' streams had after
// that round. (Giving up on size alone needs no rounds: the streams only grow, and the
// finished payload is judged again.) False: the model has no such path; nothing was coded.
bool code_from_all_intervals(BatchByteModel& model, const Lanes& lanes, Pace pace,
                             std::optional<ModelEncoder>& range) {
  std::vector<uint64_t> round_of, coded_by;  // checkpoint c falls after round round_of[c]
  uint64_t coded = 0;
  for (uint64_t t = 0; t < lanes.rounds(); ++t) {
    coded += lanes.live(t);
    if (pace.checkpoint(coded)) {
      round_of.push_back(t);
      coded_by.push_back(coded);
    }
  }
  const uint32_t streams = lanes.live(0);
  std::vector<uint64_t> size_at(round_of.size(), 0);  // the lanes' sizes after the round
  std::vector<uint32_t> passed(round_of.size(), 0);   // how many lanes have added theirs
  std::vector<uint32_t> next(streams, 0);             // each lane's next checkpoint
  std::vector<uint64_t> done(streams, 0);             // each lane's bytes coded
  size_t judged = 0;
  bool gave_up = false;
  auto add_size = [&](uint32_t j) {
    const uint32_t c = next[j]++;
    size_at[c] += range->lane_size(j);
    ++passed[c];
  };
  const bool ran = model.all_intervals([&](const BatchByteModel::IntervalPiece& piece) {
    for (uint32_t i = 0; i < piece.count; ++i) {
      const uint32_t j = piece.first + i;
      if (j >= streams || (piece.position < lanes.size_of(j) && piece.position != done[j]))
        throw Error(ErrorCode::kUsageBadArgument,
                    "all_intervals: a piece of stream " + std::to_string(j) + " out of order");
      const uint64_t end = std::min(lanes.size_of(j), piece.position + piece.width);
      const uint32_t* pair = piece.pairs + size_t{i} * piece.width * 2;
      RangeEncoder& coder = range->lane(j);
      for (uint64_t p = piece.position; p < end; ++p, pair += 2) {
        coder.encode(pair[0], pair[1]);
        if (next[j] < round_of.size() && round_of[next[j]] == p) add_size(j);
      }
      if (end > done[j]) done[j] = end;
      if (done[j] == lanes.size_of(j))  // the lane has ended: its size stays for the rest
        while (next[j] < round_of.size()) add_size(j);
    }
    for (; judged < round_of.size() && passed[judged] == streams; ++judged)
      if (Pace::off_pace(size_at[judged], coded_by[judged])) return !(gave_up = true);
    return !(gave_up = pace.too_big(range->size()));
  });
  if (!ran) return false;
  if (gave_up) {
    range.reset();
    return true;
  }
  for (uint32_t j = 0; j < streams; ++j)
    if (done[j] != lanes.size_of(j))
      throw Error(ErrorCode::kUsageBadArgument,
                  "all_intervals: stream " + std::to_string(j) + " was not coded to its end");
  return true;
}

// The decoders of a model payload: one, or one a lane (the `live` lanes of round 0).
std::vector<RangeDecoder> model_decoders(std::span<const uint8_t> payload, uint32_t live,
                                         bool lane_streams) {
  std::vector<RangeDecoder> decoders;
  if (!lane_streams || live <= 1) {
    decoders.emplace_back(payload);
    return decoders;
  }
  std::vector<uint64_t> sizes(live);
  size_t pos = 0;
  uint64_t total = 0;
  for (uint32_t j = 0; j + 1 < live; ++j) {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (pos == payload.size())
        throw Error(ErrorCode::kCorruptTruncated, "model payload ends in its lane sizes");
      const uint8_t b = payload[pos++];
      if (shift > 28) throw Error(ErrorCode::kCorruptChunk, "model payload: a lane size is too long");
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) break;
    }
    sizes[j] = v;
    total += v;  // each below 2^35, at most 4095 of them: no overflow
  }
  if (pos + total > payload.size())
    throw Error(ErrorCode::kCorruptChunk, "model payload: the lane sizes exceed the payload");
  sizes[live - 1] = payload.size() - pos - total;
  decoders.reserve(live);
  for (uint32_t j = 0; j < live; ++j) {
    decoders.emplace_back(payload.subspan(pos, sizes[j]));
    pos += sizes[j];
  }
  return decoders;
}

// The layout whatever the revision: what revision 2 codes with.
cm::Layout layout_of(const Header& header) {
  cm::Layout layout;
  const std::vector<uint8_t>& p = header.params;
  // io/TRANSFORMS.md: kind, version 1, then the kind's fields.
  if (p.size() < 2 || p[1] != 1) return {};
  const uint8_t kind = p[0];
  constexpr uint8_t kImage = 2, kAudio = 3;  // the header's modality byte
  if (header.modality == kImage && (kind == 1 || kind == 2) && p.size() >= 16) {
    layout.kind = cm::Layout::Kind::kImage;
    layout.tile = p[3];
    layout.width = le32(&p[4]);
    layout.height = le32(&p[8]);
    const bool constant_alpha = (p[13] & 4) != 0;  // not in the stream
    layout.channels = p[12] - (constant_alpha && p[12] > 0 ? 1 : 0);
  } else if (header.modality == kAudio && (kind == 3 || kind == 4) && p.size() >= 18) {
    layout.kind = cm::Layout::Kind::kAudio;
    layout.channels = le16(&p[4]);
  }
  return layout.valid() ? layout : cm::Layout{};
}

}  // namespace

cm::Layout stream_layout(const Header& header) {
  return header.cm_revision >= 2 ? layout_of(header) : cm::Layout{};
}

uint8_t cm_revision_needed(const Header& header) {
  return layout_of(header).kind == cm::Layout::Kind::kBytes ? 1 : kCmRevision;
}

SegmentSetup segment_setup(const Header& header, uint64_t index) {
  SegmentSetup setup{header.lanes, cm::Config{header.cm_context_bits, header.cm_match_bits, {}},
                     header.version >= 3 ? 1 : header.lanes, header.version >= 4};
  setup.cm.layout = stream_layout(header);
  setup.cm.layout.offset = index * header.chunk_size();
  return setup;
}

SegmentPayloads encode_segment(std::span<const uint8_t> raw, const SegmentSetup& setup,
                               BatchByteModel* model, SegmentMethods methods, size_t give_up) {
  if (methods.cm && setup.cm_lanes != setup.lanes) {
    // cm in lanes of its own, in a pass of its own first: what it needs is then the bar
    // the model's methods must get under (a tie goes to cm, which decodes faster).
    SegmentSetup alone = setup;
    alone.lanes = setup.cm_lanes;
    SegmentPayloads cm = encode_segment(raw, alone, nullptr, {false, true, false}, give_up);
    const int m = static_cast<int>(ChunkMethod::kCm);
    SegmentPayloads out;
    if (model && (methods.model || methods.hybrid))
      out = encode_segment(raw, setup, model, {methods.model, false, methods.hybrid},
                           cm.coded[m] ? std::min(give_up, cm.payload[m].size()) : give_up);
    out.payload[m] = std::move(cm.payload[m]);
    out.coded[m] = cm.coded[m];
    return out;
  }
  const Lanes lanes(raw.size(), setup.lanes);
  SegmentPayloads out;
  auto& model_out = out.payload[static_cast<int>(ChunkMethod::kModel)];
  auto& cm_out = out.payload[static_cast<int>(ChunkMethod::kCm)];
  auto& hybrid_out = out.payload[static_cast<int>(ChunkMethod::kHybrid)];

  std::optional<LaneTables> tables;
  std::optional<ModelEncoder> range;
  std::optional<cm::Encoder> mixer, hybrid;
  if (model && (methods.model || methods.hybrid)) {
    tables.emplace(*model, lanes);
    tables->lookahead(raw, lanes);
    if (methods.model) range.emplace(lanes.live(0), setup.lane_streams);
    if (methods.hybrid) hybrid.emplace(lanes, setup.cm, hybrid_out);
  }
  if (methods.cm) mixer.emplace(lanes, setup.cm, cm_out);

  Pace pace(raw.size(), give_up);
  auto check = [&](auto& coder, size_t size, std::vector<uint8_t>& payload, bool checkpoint,
                   size_t coded) {
    if (coder && (pace.too_big(size) || (checkpoint && Pace::off_pace(size, coded)))) {
      coder.reset();
      payload = {};
    }
  };
  // The model alone with a coder a lane: every lane coded whole, as the model computes
  // them, where the model can (a model on a GPU then codes while it computes).
  const bool whole_lanes = range && !hybrid && !mixer && setup.lane_streams &&
                           code_from_all_intervals(*model, lanes, pace, range);
  size_t coded = 0;
  for (uint64_t t = 0; !whole_lanes && t < lanes.rounds() && (range || mixer || hybrid); ++t) {
    const uint32_t live = lanes.live(t);
    const bool tabled = range || hybrid;  // the byte model is still needed
    // The model alone needs each byte's interval, not its table.
    const bool by_interval = range && !hybrid && tables->intervals(live);
    if (tabled && !by_interval) tables->predict(live);
    for (uint32_t j = 0; j < live; ++j) {
      const uint8_t byte = raw[lanes.begin(j) + t];
      if (by_interval)
        range->lane(j).encode(tables->start(j), tables->freq(j));
      else if (range)
        range->lane(j).encode(tables->table(j), byte);
      if (hybrid) hybrid->code(j, byte, &tables->table(j));
      if (mixer) mixer->code(j, byte, nullptr);
      if (tabled) tables->set_byte(j, byte);
    }
    if (tabled) tables->update();
    coded += live;
    const bool checkpoint = pace.checkpoint(coded);
    if (range) check(range, range->size(), model_out, checkpoint, coded);
    if (hybrid) check(hybrid, hybrid_out.size(), hybrid_out, checkpoint, coded);
    if (mixer) check(mixer, cm_out.size(), cm_out, checkpoint, coded);
  }
  if (range) model_out = range->finish();
  if (hybrid) hybrid->finish();
  if (mixer) mixer->finish();
  out.coded[static_cast<int>(ChunkMethod::kModel)] = range.has_value();
  out.coded[static_cast<int>(ChunkMethod::kHybrid)] = hybrid.has_value();
  out.coded[static_cast<int>(ChunkMethod::kCm)] = mixer.has_value();
  for (int m = 0; m < kMethodCount; ++m)
    if (out.coded[m] && pace.too_big(out.payload[m].size())) {
      out.coded[m] = false;
      out.payload[m] = {};
    }
  return out;
}

void decode_segment(ChunkMethod method, std::span<const uint8_t> payload, std::span<uint8_t> out,
                    const SegmentSetup& setup, BatchByteModel* model) {
  const Lanes lanes(out.size(), method == ChunkMethod::kCm ? setup.cm_lanes : setup.lanes);
  const bool tabled = method == ChunkMethod::kModel || method == ChunkMethod::kHybrid;
  if (tabled && model == nullptr)
    throw Error(ErrorCode::kModelUnknown,
                std::string(method_name(method)) + " needs the byte model");
  if (!tabled && method != ChunkMethod::kCm)
    throw Error(ErrorCode::kUsageBadArgument,
                std::string("decode_segment: method ") + method_name(method));
  std::optional<LaneTables> tables;
  std::vector<RangeDecoder> range;
  std::optional<cm::Decoder> mixer;
  if (tabled) tables.emplace(*model, lanes);
  if (method == ChunkMethod::kModel)
    range = model_decoders(payload, lanes.live(0), setup.lane_streams);
  else
    mixer.emplace(payload, lanes, setup.cm);
  const bool by_lane = range.size() > 1;
  std::vector<uint32_t> targets(by_lane ? range.size() : 0);
  for (uint64_t t = 0; t < lanes.rounds(); ++t) {
    const uint32_t live = lanes.live(t);
    if (by_lane) {
      // A decoder a lane: the model may find every lane's byte of the round at once.
      for (uint32_t j = 0; j < live; ++j) targets[j] = range[j].target();
      if (tables->find(live, targets)) {
        for (uint32_t j = 0; j < live; ++j) {
          range[j].consume(tables->start(j), tables->freq(j));
          out[lanes.begin(j) + t] = tables->byte(j);
        }
        tables->update();
        continue;
      }
    }
    if (tabled) tables->predict(live);
    for (uint32_t j = 0; j < live; ++j) {
      const uint8_t byte = !range.empty() ? range[by_lane ? j : 0].decode(tables->table(j))
                           : tabled       ? mixer->decode(j, &tables->table(j))
                                          : mixer->decode(j, nullptr);
      out[lanes.begin(j) + t] = byte;
      if (tabled) tables->set_byte(j, byte);
    }
    if (tabled) tables->update();
  }
  if (mixer) mixer->finish();
}

}  // namespace mbz
