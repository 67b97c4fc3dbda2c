// mbz's one error type. Library code throws mbz::Error; only cli/ turns it into a message
// and an exit code. Codes are grouped in bands, as zstd's ZSTD_ErrorCode is, so that a
// caller can tell an I/O failure from a corrupt archive from a wrong model at a glance.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace mbz {

// The band is the hundreds digit of the code; cli/ maps each band to one exit status.
enum class ErrorBand : int {
  kIo = 1,           // reading or writing a file or stream failed
  kFormat = 2,       // not an mbz archive, or one this version does not read
  kCorrupt = 3,      // an mbz archive whose contents fail their checks
  kModel = 4,        // the archive needs a model that is missing or different
  kUnsupported = 5,  // valid input that this build cannot handle
  kUsage = 6,        // the caller asked for something impossible
};

enum class ErrorCode : int {
  kIoRead = 100,
  kIoWrite = 101,
  kIoOpen = 102,
  kIoExists = 103,  // output exists and overwriting was not asked for
  kIoInterrupted = 104,

  kFormatMagic = 200,
  kFormatVersion = 201,
  kFormatReservedBits = 202,
  kFormatField = 203,  // a header field outside its allowed range

  kCorruptTruncated = 300,
  kCorruptHeaderChecksum = 301,
  kCorruptChunk = 302,  // chunk checksum or payload fails
  kCorruptContentChecksum = 303,
  kCorruptTrailer = 304,
  kCorruptTrailingData = 305,

  kModelUnknown = 400,
  kModelMismatch = 401,

  kUnsupportedInput = 500,
  kUnsupportedFeature = 501,

  kUsageBadArgument = 600,
  kUsageTerminal = 601,
};

constexpr ErrorBand band_of(ErrorCode code) {
  return static_cast<ErrorBand>(static_cast<int>(code) / 100);
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  ErrorBand band() const { return band_of(code_); }

 private:
  ErrorCode code_;
};

// Short lowercase name of a band, used as the prefix of every message ("corrupt: ...").
const char* band_name(ErrorBand band);

}  // namespace mbz
