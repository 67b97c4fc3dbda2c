#include "codec/byte_model.h"

#include <xxhash.h>

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

}  // namespace mbz
