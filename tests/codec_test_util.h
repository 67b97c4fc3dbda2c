// Shared by the codec tests: inputs and archives made the same way everywhere.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "codec/archive.h"
#include "codec/order2_model.h"

namespace mbz::test {

inline std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// English-like text with structure the model can learn.
inline std::vector<uint8_t> text_bytes(size_t n, uint32_t seed) {
  static const char* kWords[] = {"the ", "archive ", "model ", "byte ",  "of ",
                                 "and ", "chunk ",   "range ", "coder ", "table ",
                                 "is ",  "a ",       "to ",    "in ",    ".\n"};
  std::mt19937 rng(seed);
  std::vector<uint8_t> v;
  while (v.size() < n) {
    const char* w = kWords[rng() % 15];
    v.insert(v.end(), w, w + std::char_traits<char>::length(w));
  }
  v.resize(n);
  return v;
}

inline const Order2Factory& order2() {
  static const Order2Factory factory;
  return factory;
}

inline Header header_for(int chunk_log, uint64_t original_size) {
  Header h;
  h.chunk_log = chunk_log;
  h.original_size = original_size;
  h.model = order2().identity();
  return h;
}

}  // namespace mbz::test
