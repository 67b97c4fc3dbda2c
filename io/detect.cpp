#include "io/detect.h"

#include <algorithm>
#include <cstring>

#include "codec/endian.h"

namespace mbz::io {
namespace {

bool starts_with(std::span<const uint8_t> head, std::string_view magic, size_t at = 0) {
  return head.size() >= at + magic.size() &&
         std::memcmp(head.data() + at, magic.data(), magic.size()) == 0;
}

bool is_pnm_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Magic bytes that are plain ASCII ("RIFF", "FORM", "OggS", ...) can start a text file too.
// Real headers of these formats hold small binary integers (chunk sizes, versions, widths)
// within their first 32 bytes, so such a byte is required as well.
bool has_binary_byte(std::span<const uint8_t> head, size_t from) {
  for (size_t i = from; i < std::min<size_t>(head.size(), 32); ++i) {
    const uint8_t c = head[i];
    if (c < 0x09 || (c >= 0x0E && c < 0x20) || c >= 0x80) return true;
  }
  return false;
}

// "BM" starts plenty of text files ("BMW ..."), so a BMP also needs a known DIB header size.
bool looks_like_bmp(std::span<const uint8_t> head) {
  if (!starts_with(head, "BM") || head.size() < 18) return false;
  const uint32_t dib = le32(head.data() + 14);
  return dib == 12 || dib == 16 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 ||
         dib == 124;
}

// Binary PNM: "P5"/"P6" then whitespace then a digit or a comment; "P7" then a newline.
bool looks_like_pnm(std::span<const uint8_t> head) {
  if (head.size() < 4 || head[0] != 'P') return false;
  if (head[1] == '7') return head[2] == '\n' || head[2] == '\r';
  if (head[1] != '5' && head[1] != '6') return false;
  size_t i = 2;
  if (!is_pnm_space(head[i])) return false;
  while (i < head.size() && is_pnm_space(head[i])) ++i;
  return i < head.size() && ((head[i] >= '0' && head[i] <= '9') || head[i] == '#');
}

// Length of the UTF-8 sequence starting at s[i], 0 if invalid, or -1 if it is cut short by
// the end of the window (only possible when it is the last sequence).
int utf8_sequence(std::span<const uint8_t> s, size_t i) {
  const uint8_t c = s[i];
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -1;
    const uint8_t b = s[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

}  // namespace

const char* modality_name(Modality modality) {
  switch (modality) {
    case Modality::kRaw:
      return "raw";
    case Modality::kText:
      return "text";
    case Modality::kImage:
      return "image";
    case Modality::kAudio:
      return "audio";
  }
  return "unknown";
}

std::optional<Modality> parse_modality(std::string_view name) {
  for (Modality m : {Modality::kRaw, Modality::kText, Modality::kImage, Modality::kAudio}) {
    if (name == modality_name(m)) return m;
  }
  return std::nullopt;
}

const char* format_name(Format format) {
  switch (format) {
    case Format::kUnknown:
      return "unknown";
    case Format::kText:
      return "text";
    case Format::kPng:
      return "PNG";
    case Format::kJpeg:
      return "JPEG";
    case Format::kGif:
      return "GIF";
    case Format::kBmp:
      return "BMP";
    case Format::kPnm:
      return "PNM";
    case Format::kPsd:
      return "PSD";
    case Format::kHdr:
      return "Radiance HDR";
    case Format::kWav:
      return "WAV";
    case Format::kAiff:
      return "AIFF";
    case Format::kFlac:
      return "FLAC";
    case Format::kOgg:
      return "Ogg";
    case Format::kAu:
      return "AU";
    case Format::kCaf:
      return "CAF";
    case Format::kW64:
      return "W64";
    case Format::kMp3:
      return "MP3";
  }
  return "unknown";
}

Modality modality_of(Format format) {
  switch (format) {
    case Format::kUnknown:
      return Modality::kRaw;
    case Format::kText:
      return Modality::kText;
    case Format::kPng:
    case Format::kJpeg:
    case Format::kGif:
    case Format::kBmp:
    case Format::kPnm:
    case Format::kPsd:
    case Format::kHdr:
      return Modality::kImage;
    case Format::kWav:
    case Format::kAiff:
    case Format::kFlac:
    case Format::kOgg:
    case Format::kAu:
    case Format::kCaf:
    case Format::kW64:
    case Format::kMp3:
      return Modality::kAudio;
  }
  return Modality::kRaw;
}

Format detect_format(std::span<const uint8_t> head) {
  head = head.first(std::min(head.size(), kDetectWindow));
  if (starts_with(head, "\x89PNG\r\n\x1a\n")) return Format::kPng;
  if (starts_with(head, "\xff\xd8\xff")) return Format::kJpeg;
  if (looks_like_bmp(head)) return Format::kBmp;
  if (looks_like_pnm(head)) return Format::kPnm;
  if (starts_with(head, "#?RADIANCE\n") || starts_with(head, "#?RGBE\n")) return Format::kHdr;
  const Format ascii_magic = [&] {
    if (starts_with(head, "GIF87a") || starts_with(head, "GIF89a")) return Format::kGif;
    if (starts_with(head, "8BPS")) return Format::kPsd;
    if ((starts_with(head, "RIFF") || starts_with(head, "RF64") || starts_with(head, "BW64")) &&
        starts_with(head, "WAVE", 8)) {
      return Format::kWav;
    }
    if (starts_with(head, "FORM") &&
        (starts_with(head, "AIFF", 8) || starts_with(head, "AIFC", 8))) {
      return Format::kAiff;
    }
    if (starts_with(head, "fLaC")) return Format::kFlac;
    if (starts_with(head, "OggS")) return Format::kOgg;
    if (starts_with(head, ".snd")) return Format::kAu;
    if (starts_with(head, "caff")) return Format::kCaf;
    if (starts_with(head, std::string_view("riff\x2e\x91\xcf\x11", 8))) return Format::kW64;
    // ID3v2: "ID3", major version 2..4, revision < 0xFF.
    if (starts_with(head, "ID3") && head.size() >= 5 && head[3] >= 2 && head[3] <= 4 &&
        head[4] != 0xFF) {
      return Format::kMp3;
    }
    return Format::kUnknown;
  }();
  if (ascii_magic != Format::kUnknown && has_binary_byte(head, 4)) return ascii_magic;
  return looks_like_text(head) ? Format::kText : Format::kUnknown;
}

Modality detect(std::span<const uint8_t> head) {
  return modality_of(detect_format(head));
}

bool looks_like_text(std::span<const uint8_t> head) {
  head = head.first(std::min(head.size(), kDetectWindow));
  if (head.empty()) return false;
  if (starts_with(head, "\xef\xbb\xbf") || starts_with(head, "\xff\xfe") ||
      starts_with(head, "\xfe\xff")) {
    return true;
  }
  size_t controls = 0, high = 0, invalid_utf8 = 0;
  for (size_t i = 0; i < head.size();) {
    const uint8_t c = head[i];
    if (c == 0) return false;  // as git and grep decide: a NUL byte means binary
    if (c < 0x20 || c == 0x7F) {
      // Tab, newline, vertical tab, form feed, carriage return, backspace and escape (ANSI
      // colour codes) occur in real text; other control characters almost never do.
      const bool whitespace = (c >= 0x08 && c <= 0x0D) || c == 0x1B;
      if (!whitespace) ++controls;
      ++i;
      continue;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    ++high;
    const int len = utf8_sequence(head, i);
    if (len < 0) break;  // a sequence cut by the window's end is fine
    if (len == 0) {
      ++invalid_utf8;
      ++i;
    } else {
      high += len - 1;
      i += len;
    }
  }
  // Thresholds: 1% stray controls, 25% high bytes when not UTF-8. Binary formats without
  // magic have roughly uniform bytes (12% controls, 50% high), far outside both.
  if (controls * 100 > head.size()) return false;
  return invalid_utf8 == 0 || high * 4 <= head.size();
}

}  // namespace mbz::io
