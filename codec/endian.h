// Fixed-width integers in byte buffers, as file formats store them. Every format mbz reads
// or writes (its own archives, WAV, BMP, AIFF, FLAC headers) goes through these.
#pragma once

#include <cstdint>
#include <vector>

namespace mbz {

// The `bytes`-byte little-endian integer at p (1 <= bytes <= 8).
inline uint64_t load_le(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}
inline uint64_t load_be(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | p[i];
  return value;
}
inline uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(load_le(p, 2));
}
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(load_le(p, 4));
}
inline uint64_t le64(const uint8_t* p) {
  return load_le(p, 8);
}
inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(load_be(p, 2));
}
inline uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(load_be(p, 4));
}

// Appends the low `bytes` bytes of value, little-endian.
inline void store_le(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

}  // namespace mbz
