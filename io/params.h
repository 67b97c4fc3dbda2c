// Little-endian field writer and checked reader for transform parameters (io/TRANSFORMS.md).
// The reader names the field and offset in every error, since parameters come from an
// archive that may be damaged.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/error.h"
#include "codec/format.h"

namespace mbz::io {

// Transform parameters live in the archive header, whose whole size is a 16-bit field.
inline constexpr size_t kMaxParamsSize = kMaxHeaderParams;

class ParamWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  // A u32 length followed by the bytes.
  void blob(std::span<const uint8_t> bytes) {
    u32(static_cast<uint32_t>(bytes.size()));
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

class ParamReader {
 public:
  // what names the parameters in messages, e.g. "image params".
  ParamReader(std::span<const uint8_t> data, std::string what)
      : data_(data), what_(std::move(what)) {}

  uint8_t u8(const char* field) { return static_cast<uint8_t>(get(field, 1)); }
  uint16_t u16(const char* field) { return static_cast<uint16_t>(get(field, 2)); }
  uint32_t u32(const char* field) { return static_cast<uint32_t>(get(field, 4)); }
  uint64_t u64(const char* field) { return get(field, 8); }
  std::span<const uint8_t> blob(const char* field) {
    const uint32_t n = u32(field);
    need(field, n);
    auto bytes = data_.subspan(pos_, n);
    pos_ += n;
    return bytes;
  }
  // Throws unless every byte was read: trailing bytes mean a writer this version does not know.
  void finish() const {
    if (pos_ != data_.size()) {
      throw Error(ErrorCode::kCorruptTrailingData, what_ + ": expected " + std::to_string(pos_) +
                                                       " bytes, found " +
                                                       std::to_string(data_.size()));
    }
  }
  // Throws kFormatField naming the field, its value, and what was allowed.
  [[noreturn]] void bad(const char* field, uint64_t value, const std::string& expected) const {
    throw Error(ErrorCode::kFormatField, what_ + ": field " + field + " is " +
                                             std::to_string(value) + ", expected " + expected);
  }
  const std::string& what() const { return what_; }

 private:
  void need(const char* field, size_t n) const {
    if (data_.size() - pos_ < n) {
      throw Error(ErrorCode::kCorruptTruncated, what_ + ": field " + field + " at offset " +
                                                    std::to_string(pos_) + " needs " +
                                                    std::to_string(n) + " bytes, only " +
                                                    std::to_string(data_.size() - pos_) + " left");
    }
  }
  uint64_t get(const char* field, int n) {
    need(field, n);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{data_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace mbz::io
