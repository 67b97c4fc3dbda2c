// Shared by the io tests: fixtures from tests/data and building file headers byte by byte.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace mbz::io::test {

using Bytes = std::vector<uint8_t>;

inline Bytes read_fixture(const std::string& name) {
  std::ifstream in(std::string(MBZ_TEST_DATA_DIR) + "/data/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline void append(Bytes& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
}

// The low n bytes of v, little-endian unless `big`.
inline void put(Bytes& out, uint64_t v, int n, bool big = false) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * (big ? n - 1 - i : i))));
}
inline void put_le16(Bytes& out, uint32_t v) {
  put(out, v, 2);
}
inline void put_le32(Bytes& out, uint32_t v) {
  put(out, v, 4);
}
inline void put_be32(Bytes& out, uint32_t v) {
  put(out, v, 4, true);
}

}  // namespace mbz::io::test
