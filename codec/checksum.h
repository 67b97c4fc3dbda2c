// Checksums of the archive format (codec/FORMAT.md), all from libxxhash.
#pragma once

#include <cstdint>
#include <span>

#include "codec/stream.h"

namespace mbz {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);

// XXH64 over a stream fed piece by piece; equals xxh64() of the concatenation.
class StreamHash {
 public:
  StreamHash();
  ~StreamHash();
  StreamHash(const StreamHash&) = delete;
  StreamHash& operator=(const StreamHash&) = delete;
  void update(std::span<const uint8_t> bytes);
  uint64_t digest() const;

 private:
  void* state_;  // XXH64_state_t, kept out of this header
};

// Passes bytes on to another writer, hashing and counting them on the way.
class HashingWriter final : public Writer {
 public:
  explicit HashingWriter(Writer& next) : next_(next) {}
  void write(std::span<const uint8_t> bytes) override {
    hash_.update(bytes);
    size_ += bytes.size();
    next_.write(bytes);
  }
  void flush() override { next_.flush(); }
  uint64_t digest() const { return hash_.digest(); }
  uint64_t size() const { return size_; }

 private:
  Writer& next_;
  StreamHash hash_;
  uint64_t size_ = 0;
};

}  // namespace mbz
