// The range coder's own speed: codes 64 MiB of bytes drawn from a fixed skewed table
// (about 4.4 bits a byte), then decodes them, and prints MB/s of input for each direction
// (median of 5 runs). No model: this is the ceiling the coder puts on any model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "codec/range_coder.h"

int main() {
  using Clock = std::chrono::steady_clock;
  constexpr size_t kBytes = 64 << 20;
  std::array<uint64_t, 256> weights;
  for (int s = 0; s < 256; ++s) weights[s] = 1 + 100000 / (1 + s);  // Zipf-like
  mbz::Cdf cdf;
  mbz::cdf_from_weights(weights, cdf);
  std::mt19937 rng(1);
  std::vector<uint8_t> data(kBytes);
  for (auto& b : data) b = static_cast<uint8_t>(cdf.find(rng() % mbz::kTotal));

  std::vector<double> enc_s, dec_s;
  std::vector<uint8_t> payload;
  for (int run = 0; run < 5; ++run) {
    payload.clear();
    auto t0 = Clock::now();
    mbz::RangeEncoder enc(payload);
    for (uint8_t b : data) enc.encode(cdf, b);
    enc.finish();
    auto t1 = Clock::now();
    mbz::RangeDecoder dec(payload);
    size_t mismatches = 0;
    for (uint8_t b : data) mismatches += dec.decode(cdf) != b;
    auto t2 = Clock::now();
    if (mismatches) {
      std::fprintf(stderr, "decode mismatch\n");
      return 1;
    }
    enc_s.push_back(std::chrono::duration<double>(t1 - t0).count());
    dec_s.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  std::sort(enc_s.begin(), enc_s.end());
  std::sort(dec_s.begin(), dec_s.end());
  std::printf(
      "range coder, fixed table, %zu MiB: %.3f bits/byte, encode %.1f MB/s, decode %.1f MB/s\n",
      kBytes >> 20, 8.0 * payload.size() / kBytes, kBytes / enc_s[2] / 1e6,
      kBytes / dec_s[2] / 1e6);
}
