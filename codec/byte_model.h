// The probability interface between models and the coder. A model gives, for the next
// byte of a stream, an integer frequency table (codec/range_coder.h: Cdf) and is then
// told the byte that occurred. Nothing here is floating point: a model may compute in
// any way it likes, as long as the tables it hands over are the same on every machine.
#pragma once

#include <array>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/range_coder.h"

namespace mbz {

// Who a model is: the name is for people, the id (16 bytes) is what archives check.
struct ModelIdentity {
  std::string name;
  std::array<uint8_t, 16> id{};

  std::string id_hex() const;
  bool operator==(const ModelIdentity&) const = default;
};

// The identity of a built-in model: XXH3-128 of its descriptor string.
ModelIdentity builtin_identity(const std::string& name, const std::string& descriptor);

// Many independent byte streams at once. Streams are numbered 0..n-1 after reset(n);
// each starts empty. One predict/update round moves some of them (those in `ids`, in
// increasing order, each at most once) forward by one byte; the coder moves them in
// lockstep (all at the same position) and a stream that leaves never returns. A neural model computes a
// whole round as one batch; the classical model simply loops.
class BatchByteModel {
 public:
  virtual ~BatchByteModel() = default;

  // Forgets everything and starts `n_streams` empty streams (n_streams <= max_streams()).
  virtual void reset(size_t n_streams) = 0;
  // The most streams one reset() can start.
  virtual size_t max_streams() const = 0;
  // tables[k] receives the table for the next byte of stream ids[k].
  virtual void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) = 0;
  // Stream ids[k] is told that its next byte was bytes[k].
  virtual void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) = 0;
  // Encoding only, right after reset(): every stream's bytes, kept alive by the caller
  // until the next reset(). A model may then compute the tables of many positions at once
  // (a network's parallel forward pass) instead of byte by byte; predict() must still give
  // exactly the tables it gives without this call, and update() still comes every round.
  virtual void lookahead(std::span<const std::span<const uint8_t>> /*streams*/) {}
  // Encoding only, after lookahead(): instead of predict(), start[k] and freq[k] of the
  // interval that stream ids[k]'s next byte has in its next table, the very integers of
  // predict()'s table. A model on a GPU then sends 8 bytes a position to the host instead
  // of a table of 1 KB. False: the model has no such path (the coder calls predict()).
  virtual bool intervals(std::span<const uint32_t> /*ids*/, std::span<uint32_t> /*start*/,
                         std::span<uint32_t> /*freq*/) {
    return false;
  }
  // Encoding only, right after lookahead(), instead of intervals() round by round: the
  // interval of every position of every stream, handed to `take` a piece at a time as the
  // model computes them (a model on a GPU computes the next piece while the coder codes
  // this one). Each stream's pieces come in position order and together cover all of its
  // positions; `take` returns false to stop early (the coder gave the method up), and no
  // piece comes after that. update() is not called. False: the model has no such path.
  struct IntervalPiece {
    uint32_t first = 0, count = 0;  // streams [first, first + count)
    uint64_t position = 0;          // each at positions [position, position + width)
    uint32_t width = 0;
    // Stream first + i at position + p: start at pairs[2 * (i * width + p)], freq after it.
    // Positions at or past a stream's end hold anything.
    const uint32_t* pairs = nullptr;
  };
  using IntervalTaker = std::function<bool(const IntervalPiece&)>;
  virtual bool all_intervals(const IntervalTaker& /*take*/) { return false; }
  // Decoding: instead of predict(), the symbol of stream ids[k]'s next table whose interval
  // holds targets[k] (RangeDecoder::target), with that interval, as Cdf::find on predict()'s
  // table gives them. update() still follows, with these symbols. False: no such path.
  virtual bool find(std::span<const uint32_t> /*ids*/, std::span<const uint32_t> /*targets*/,
                    std::span<uint8_t> /*symbols*/, std::span<uint32_t> /*start*/,
                    std::span<uint32_t> /*freq*/) {
    return false;
  }
  // Threads this instance may use for its batch: the archive's that no other segment is
  // using. Speed only, never bytes; models that do not share out their work ignore it.
  virtual void set_threads(unsigned /*threads*/) {}
  // What the streams hold from the next reset() on: the archive header's modality
  // (format.h: raw, text, image, audio). Models that do not use it ignore it.
  virtual void set_modality(uint8_t /*modality*/) {}
};

// Makes instances of one model; instances are independent, so each thread owns one.
class ModelFactory {
 public:
  virtual ~ModelFactory() = default;
  virtual const ModelIdentity& identity() const = 0;
  // A new instance able to run up to `max_streams` streams in one batch.
  virtual std::unique_ptr<BatchByteModel> create(size_t max_streams) const = 0;
  // How many streams one instance should decode together for best speed.
  virtual size_t preferred_batch() const = 0;
  // The chunk size that suits the model when none is asked for (a neural model's context:
  // chunks are independent, so longer ones gain nothing); 0: no preference.
  virtual uint64_t preferred_chunk() const { return 0; }
  // How many instances of `max_streams` streams may work at once (at least 1): a model on a
  // device whose memory holds only so many says so, and archives code no more segments at
  // once with it.
  virtual unsigned max_instances(size_t /*max_streams*/) const { return UINT_MAX; }
};

// Exactness check: a 64-bit hash (XXH3) of every table `factory`'s model gives for
// `streams` (of modality `modality`), run `batch` streams at a time in lockstep as the
// coder runs them, the batches shared out over `threads` instances. The tables are hashed
// stream by stream in order, so a model whose tables do not depend on batch or threads
// gives one value for every batch and thread count, on every machine.
uint64_t table_hash(const ModelFactory& factory, std::span<const std::vector<uint8_t>> streams,
                    uint8_t modality, size_t batch, unsigned threads);

// The fixed input of the exactness checks: `count` streams of 1 to `max_length` bytes of
// mixed text-like and binary content, the same everywhere for the same arguments.
std::vector<std::vector<uint8_t>> table_hash_streams(size_t count, size_t max_length);

}  // namespace mbz
