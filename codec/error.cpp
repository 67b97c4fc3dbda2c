#include "codec/error.h"

namespace mbz {

const char* band_name(ErrorBand band) {
  switch (band) {
    case ErrorBand::kIo:
      return "i/o error";
    case ErrorBand::kFormat:
      return "format error";
    case ErrorBand::kCorrupt:
      return "corrupt archive";
    case ErrorBand::kModel:
      return "model mismatch";
    case ErrorBand::kUnsupported:
      return "unsupported";
    case ErrorBand::kUsage:
      return "usage";
  }
  return "error";
}

}  // namespace mbz
