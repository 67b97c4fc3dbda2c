// What kind of file is this? Decided from content only (magic bytes and a text heuristic),
// never from the file name: a renamed file compresses the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mbz::io {

// The modality of the byte stream the model codes. Stored in the archive header, so the
// numeric values are part of the format and never change.
enum class Modality : uint8_t { kRaw = 0, kText = 1, kImage = 2, kAudio = 3 };

// "raw", "text", "image", "audio"; "unknown" for a value outside the enum.
const char* modality_name(Modality modality);

// Inverse of modality_name, for parsing `--as NAME`; nullopt for an unknown name.
std::optional<Modality> parse_modality(std::string_view name);

// The container format behind a modality. The numeric values are written into transform
// parameters (io/TRANSFORMS.md, "source format"), so they never change; new formats take
// new numbers.
enum class Format : uint8_t {
  kUnknown = 0,
  kText = 1,
  // Images.
  kPng = 16,
  kJpeg = 17,
  kGif = 18,
  kBmp = 19,
  kPnm = 20,  // binary PGM (P5), PPM (P6), PAM (P7)
  kPsd = 21,
  kHdr = 22,  // Radiance RGBE: floating point, never decoded to 8-bit pixels
  // Audio.
  kWav = 32,   // RIFF/WAVE, RF64 and BW64
  kAiff = 33,  // AIFF and AIFC
  kFlac = 34,
  kOgg = 35,
  kAu = 36,
  kCaf = 37,
  kW64 = 38,
  kMp3 = 39,  // only recognised by an ID3v2 tag
};

// "PNG", "WAV", ...; "unknown" for kUnknown or a value outside the enum.
const char* format_name(Format format);

// The modality a format belongs to (kUnknown is raw, kText is text).
Modality modality_of(Format format);

// How many leading bytes detection looks at; passing more is allowed and ignored.
inline constexpr size_t kDetectWindow = 64 * 1024;

// The format of a file from its first bytes (up to kDetectWindow). Magic bytes first; a
// file with no known magic is text when looks_like_text() says so, else unknown.
Format detect_format(std::span<const uint8_t> head);

// detect_format() reduced to a modality: what `mbz` codes the input as by default.
Modality detect(std::span<const uint8_t> head);

// Text heuristic: no NUL byte, almost no control characters other than whitespace, and
// either valid UTF-8 or few high bytes (Latin-1 and other 8-bit encodings). A UTF-8 or
// UTF-16 byte order mark is text. An empty input is not text.
bool looks_like_text(std::span<const uint8_t> head);

}  // namespace mbz::io
