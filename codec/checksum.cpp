#include "codec/checksum.h"

#include <xxhash.h>

#include <new>

namespace mbz {

uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed) {
  return XXH64(bytes.data(), bytes.size(), seed);
}

StreamHash::StreamHash() : state_(XXH64_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH64_reset(static_cast<XXH64_state_t*>(state_), 0);
}
StreamHash::~StreamHash() {
  XXH64_freeState(static_cast<XXH64_state_t*>(state_));
}
void StreamHash::update(std::span<const uint8_t> bytes) {
  XXH64_update(static_cast<XXH64_state_t*>(state_), bytes.data(), bytes.size());
}
uint64_t StreamHash::digest() const {
  return XXH64_digest(static_cast<XXH64_state_t*>(state_));
}

}  // namespace mbz
