#include "codec/byte_model.h"

#include <xxhash.h>

#include <algorithm>

#include "codec/parallel.h"

namespace mbz {

std::string ModelIdentity::id_hex() const {
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : id) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

ModelIdentity builtin_identity(const std::string& name, const std::string& descriptor) {
  ModelIdentity identity{name, {}};
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(descriptor.data(), descriptor.size()));
  for (int i = 0; i < 16; ++i) identity.id[i] = canonical.digest[i];
  return identity;
}

uint64_t table_hash(const ModelFactory& factory, std::span<const std::vector<uint8_t>> streams,
                    uint8_t modality, size_t batch, unsigned threads) {
  batch = std::max<size_t>(1, batch);
  const size_t groups = (streams.size() + batch - 1) / batch;
  threads = std::max(1u, threads);
  std::vector<std::unique_ptr<BatchByteModel>> models(threads);
  std::vector<uint64_t> digests(streams.size());
  parallel_for(threads, groups, [&](unsigned slot, size_t group) {
    if (!models[slot]) models[slot] = factory.create(batch);
    BatchByteModel& model = *models[slot];
    const size_t first = group * batch, n = std::min(batch, streams.size() - first);
    model.set_modality(modality);
    model.reset(n);
    // Each stream's hash chains its tables: h = XXH3(table, seed = h).
    std::vector<uint64_t> chain(n, 0);
    std::vector<uint32_t> ids;
    std::vector<Cdf> tables;
    std::vector<uint8_t> bytes;
    for (size_t pos = 0;; ++pos) {
      ids.clear();
      bytes.clear();
      for (size_t k = 0; k < n; ++k) {
        if (streams[first + k].size() <= pos) continue;
        ids.push_back(static_cast<uint32_t>(k));
        bytes.push_back(streams[first + k][pos]);
      }
      if (ids.empty()) break;
      tables.resize(ids.size());
      model.predict(ids, tables);
      for (size_t k = 0; k < ids.size(); ++k)
        chain[ids[k]] = XXH3_64bits_withSeed(tables[k].c.data(), sizeof tables[k].c, chain[ids[k]]);
      model.update(ids, bytes);
    }
    for (size_t k = 0; k < n; ++k) digests[first + k] = chain[k];
  });
  return XXH3_64bits(digests.data(), digests.size() * sizeof digests[0]);
}

std::vector<std::vector<uint8_t>> table_hash_streams(size_t count, size_t max_length) {
  static const char* const kWords[] = {"the ", "of ", "model ", "byte ", "coder ", "exact ",
                                       "int ", "return ", "{\n", "}\n", "  ", "(x);\n",
                                       "0x7f, ", "table", ". ", "\n\n"};
  uint64_t x = 0x9E3779B97F4A7C15ull;  // splitmix64: the same sequence on every platform
  auto next = [&x] {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<std::vector<uint8_t>> streams(count);
  for (std::vector<uint8_t>& s : streams) {
    const size_t length = 1 + next() % std::max<size_t>(1, max_length);
    const bool binary = next() % 4 == 0;
    while (s.size() < length) {
      if (binary) {
        s.push_back(static_cast<uint8_t>(next()));
      } else {
        for (const char* w = kWords[next() % std::size(kWords)]; *w && s.size() < length; ++w)
          s.push_back(static_cast<uint8_t>(*w));
      }
    }
  }
  return streams;
}

}  // namespace mbz
