#include "codec/chunk_coder.h"

#include <algorithm>
#include <optional>

#include "codec/range_coder.h"

namespace mbz {
namespace {

// At each eighth of a chunk, a model whose output so far is not below 63/64 of the bytes
// it coded is given up: the data is incompressible to it (random or already compressed),
// and coding the rest would cost time to win nothing. A model that is still learning is
// far below that pace on anything it will compress, so this never gives up a winner
// early on text (measured: the golden and bench files keep their model chunks).
bool off_pace(size_t payload, size_t pos, size_t size) {
  const size_t eighth = size / 8;
  if (eighth == 0 || pos % eighth != 0 || pos == size) return false;
  return uint64_t{payload} * 64 >= uint64_t{pos} * 63;
}

}  // namespace

void model_encode(BatchByteModel& model, std::span<const std::span<const uint8_t>> chunks,
                  std::span<const size_t> give_up, std::vector<std::vector<uint8_t>>& payloads) {
  const size_t n = chunks.size();
  model.reset(n);
  model.lookahead(chunks);
  payloads.assign(n, {});
  std::vector<std::optional<RangeEncoder>> encoders(n);
  std::vector<uint32_t> ids;
  for (size_t k = 0; k < n; ++k) {
    encoders[k].emplace(payloads[k]);
    if (!chunks[k].empty()) ids.push_back(static_cast<uint32_t>(k));
  }
  std::vector<Cdf> tables(n);
  std::vector<uint8_t> bytes(n);
  std::vector<uint32_t> start(n), freq(n);
  bool by_interval = true;  // until the model says it has no intervals()
  for (size_t pos = 0; !ids.empty(); ++pos) {
    const size_t m = ids.size();
    for (size_t j = 0; j < m; ++j) bytes[j] = chunks[ids[j]][pos];
    by_interval = by_interval && model.intervals(ids, {start.data(), m}, {freq.data(), m});
    if (!by_interval) {
      model.predict(ids, {tables.data(), m});
      for (size_t j = 0; j < m; ++j) {
        start[j] = tables[j].start(bytes[j]);
        freq[j] = tables[j].freq(bytes[j]);
      }
    }
    size_t kept = 0;
    for (size_t j = 0; j < m; ++j) {
      const uint32_t k = ids[j];
      encoders[k]->encode(start[j], freq[j]);
      if (payloads[k].size() >= give_up[k] ||
          off_pace(payloads[k].size(), pos + 1, chunks[k].size())) {
        encoders[k].reset();
        payloads[k].clear();
        payloads[k].shrink_to_fit();
      }
    }
    model.update(ids, {bytes.data(), ids.size()});
    for (size_t j = 0; j < ids.size(); ++j) {
      const uint32_t k = ids[j];
      if (encoders[k] && pos + 1 < chunks[k].size())
        ids[kept++] = k;
      else if (encoders[k])
        encoders[k]->finish();
    }
    ids.resize(kept);
  }
  for (size_t k = 0; k < n; ++k)
    if (payloads[k].size() >= give_up[k]) payloads[k].clear();
}

void model_decode(BatchByteModel& model, std::span<const std::span<const uint8_t>> payloads,
                  std::span<const std::span<uint8_t>> outputs) {
  const size_t n = payloads.size();
  model.reset(n);
  std::vector<RangeDecoder> decoders;
  decoders.reserve(n);
  std::vector<uint32_t> ids;
  for (size_t k = 0; k < n; ++k) {
    decoders.emplace_back(payloads[k]);
    if (!outputs[k].empty()) ids.push_back(static_cast<uint32_t>(k));
  }
  std::vector<Cdf> tables(n);
  std::vector<uint8_t> bytes(n);
  std::vector<uint32_t> targets(n), start(n), freq(n);
  bool by_find = true;  // until the model says it has no find()
  for (size_t pos = 0; !ids.empty(); ++pos) {
    const size_t m = ids.size();
    if (by_find) {
      for (size_t j = 0; j < m; ++j) targets[j] = decoders[ids[j]].target();
      by_find = model.find(ids, {targets.data(), m}, {bytes.data(), m}, {start.data(), m},
                           {freq.data(), m});
      if (by_find)
        for (size_t j = 0; j < m; ++j) decoders[ids[j]].consume(start[j], freq[j]);
    }
    if (!by_find) {
      model.predict(ids, {tables.data(), m});
      for (size_t j = 0; j < m; ++j) bytes[j] = decoders[ids[j]].decode(tables[j]);
    }
    for (size_t j = 0; j < m; ++j) outputs[ids[j]][pos] = bytes[j];
    model.update(ids, {bytes.data(), ids.size()});
    size_t kept = 0;
    for (uint32_t k : ids)
      if (pos + 1 < outputs[k].size()) ids[kept++] = k;
    ids.resize(kept);
  }
}

}  // namespace mbz
