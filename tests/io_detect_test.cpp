// Detection from content: every magic io/ knows, the text heuristic, and its edge cases.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/detect.h"

namespace mbz::io {
namespace {

using namespace std::string_view_literals;

std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

// A header of `magic` followed by filler that is neither text nor any other magic.
std::vector<uint8_t> with_magic(std::string_view magic, size_t size = 64) {
  std::vector<uint8_t> out = bytes(magic);
  while (out.size() < size) out.push_back(static_cast<uint8_t>(out.size() * 37 + 1));
  return out;
}

TEST(IoDetect, ImageMagic) {
  EXPECT_EQ(detect_format(with_magic("\x89PNG\r\n\x1a\n")), Format::kPng);
  EXPECT_EQ(detect_format(with_magic("\xff\xd8\xff\xe0")), Format::kJpeg);
  EXPECT_EQ(detect_format(with_magic("GIF89a")), Format::kGif);
  EXPECT_EQ(detect_format(with_magic("GIF87a")), Format::kGif);
  EXPECT_EQ(
      detect_format(with_magic(std::string_view("BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", 18))),
      Format::kBmp);
  EXPECT_EQ(
      detect_format(with_magic(std::string_view("BM\0\0\0\0\0\0\0\0\x8a\0\0\0\x7c\0\0\0", 18))),
      Format::kBmp);
  EXPECT_EQ(detect_format(bytes("P5\n3 2\n255\n\x01\x02\x03\x04\x05\x06")), Format::kPnm);
  EXPECT_EQ(detect_format(bytes("P6 # comment\n3 2 255\n")), Format::kPnm);
  EXPECT_EQ(detect_format(bytes("P7\nWIDTH 1\n")), Format::kPnm);
  EXPECT_EQ(detect_format(with_magic("8BPS")), Format::kPsd);
  EXPECT_EQ(detect_format(bytes("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n")), Format::kHdr);
  for (Format f : {Format::kPng, Format::kJpeg, Format::kGif, Format::kBmp, Format::kPnm,
                   Format::kPsd, Format::kHdr}) {
    EXPECT_EQ(modality_of(f), Modality::kImage) << format_name(f);
  }
}

TEST(IoDetect, AudioMagic) {
  EXPECT_EQ(detect_format(with_magic(std::string_view("RIFF\x24\0\0\0WAVEfmt ", 16))),
            Format::kWav);
  EXPECT_EQ(detect_format(with_magic(std::string_view("RF64\xff\xff\xff\xffWAVEds64", 16))),
            Format::kWav);
  EXPECT_EQ(detect_format(with_magic(std::string_view("FORM\0\0\0\x20"
                                                      "AIFFCOMM",
                                                      16))),
            Format::kAiff);
  EXPECT_EQ(detect_format(with_magic(std::string_view("FORM\0\0\0\x20"
                                                      "AIFCFVER",
                                                      16))),
            Format::kAiff);
  EXPECT_EQ(detect_format(with_magic("fLaC")), Format::kFlac);
  EXPECT_EQ(detect_format(with_magic("OggS")), Format::kOgg);
  EXPECT_EQ(detect_format(with_magic(".snd")), Format::kAu);
  EXPECT_EQ(detect_format(with_magic("caff")), Format::kCaf);
  EXPECT_EQ(detect_format(with_magic(std::string_view("riff\x2e\x91\xcf\x11", 8))), Format::kW64);
  EXPECT_EQ(detect_format(with_magic(std::string_view("ID3\x04\x00", 5))), Format::kMp3);
  EXPECT_EQ(detect(with_magic("fLaC")), Modality::kAudio);
  // RIFF that is not WAVE (AVI) is not audio.
  EXPECT_EQ(detect_format(with_magic(std::string_view("RIFF\x24\0\0\0AVI LIST", 16))),
            Format::kUnknown);
}

TEST(IoDetect, TextAndBinary) {
  EXPECT_EQ(detect(bytes("hello, world\n\tindented\r\n")), Modality::kText);
  EXPECT_EQ(detect(bytes("na\xc3\xafve caf\xc3\xa9 \xe2\x82\xac 100 \xf0\x9f\x98\x80\n")),
            Modality::kText);  // UTF-8
  EXPECT_EQ(detect(bytes("caf\xe9 cr\xe8me br\xfbl\xe9"
                         "e, a Latin-1 sentence\n")),
            Modality::kText);
  EXPECT_EQ(detect(bytes("\xff\xfeh\0i\0"sv)), Modality::kText);      // UTF-16 with a BOM
  EXPECT_EQ(detect(bytes("\x1b[31mred\x1b[0m\n")), Modality::kText);  // ANSI colours
  EXPECT_EQ(detect(bytes("text with a \0 NUL"sv)), Modality::kRaw);
  EXPECT_EQ(detect({}), Modality::kRaw);
  // Mostly control bytes.
  EXPECT_EQ(detect(bytes("\x01\x02\x03\x04\x05\x06\x07\x0e\x0f\x10"
                         "abc")),
            Modality::kRaw);
  // Uniform pseudo-random bytes without NUL: many controls and invalid UTF-8.
  std::vector<uint8_t> noise(4096);
  uint32_t s = 12345;
  for (auto& b : noise) {
    s = s * 1664525 + 1013904223;
    b = static_cast<uint8_t>((s >> 24) | 1);
  }
  EXPECT_EQ(detect(noise), Modality::kRaw);
}

TEST(IoDetect, MagicLookalikesInTextStayText) {
  EXPECT_EQ(detect_format(bytes("BMW and Audi are car makers.\n")), Format::kText);
  EXPECT_EQ(detect_format(bytes("P5 is a product code\n")), Format::kText);
  EXPECT_EQ(detect_format(bytes("P6\nnot a number\n")), Format::kText);
  EXPECT_EQ(detect_format(bytes("FORMAT: AIFF is described elsewhere\n")), Format::kText);
}

TEST(IoDetect, OnlyTheWindowCounts) {
  // Text for the first 64 KiB, then a NUL: still text, detection reads only the window.
  std::vector<uint8_t> file(kDetectWindow, 'a');
  file.push_back(0);
  EXPECT_EQ(detect(file), Modality::kText);
  // A UTF-8 sequence cut by the end of the window does not make text binary.
  std::vector<uint8_t> cut(kDetectWindow - 1, 'b');
  cut.push_back(0xE2);  // first byte of a 3-byte sequence
  cut.push_back(0x82);
  cut.push_back(0xAC);
  EXPECT_EQ(detect(cut), Modality::kText);
}

TEST(IoDetect, Names) {
  EXPECT_STREQ(modality_name(Modality::kRaw), "raw");
  EXPECT_STREQ(modality_name(Modality::kText), "text");
  EXPECT_STREQ(modality_name(Modality::kImage), "image");
  EXPECT_STREQ(modality_name(Modality::kAudio), "audio");
  EXPECT_STREQ(modality_name(static_cast<Modality>(9)), "unknown");
  EXPECT_EQ(parse_modality("audio"), Modality::kAudio);
  EXPECT_EQ(parse_modality("raw"), Modality::kRaw);
  EXPECT_EQ(parse_modality("video"), std::nullopt);
  EXPECT_EQ(parse_modality(""), std::nullopt);
  EXPECT_STREQ(format_name(Format::kFlac), "FLAC");
  EXPECT_STREQ(format_name(static_cast<Format>(200)), "unknown");
}

}  // namespace
}  // namespace mbz::io
