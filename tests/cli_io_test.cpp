// The command line with images and audio: byte-exact round trips of raw-payload formats,
// --pixels and --samples giving identical pixels and samples, what info and score report,
// and the errors of forcing a reading that cannot be done.
#include "cli_test_util.h"
#include "io/audio.h"
#include "io/image.h"

namespace {

using namespace mbz::cli_test;
namespace fs = std::filesystem;

const fs::path kData = fs::path(MBZ_TEST_DATA_DIR) / "data";

// A binary PPM with a comment in its header, odd sizes and partial edge tiles.
std::string make_ppm(uint32_t w, uint32_t h) {
  std::string ppm =
      "P6\n# made by cli_io_test\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  std::mt19937 rng(3);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        ppm += static_cast<char>((x * 7 + y * 3 + c * 50 + rng() % 4) & 255);
  return ppm;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST_F(CliTest, RawPayloadImagesAndAudioRoundTripByteExact) {
  const std::string ppm = make_ppm(37, 29), wav = read_file(kData / "io_tone.wav");
  put("img.ppm", ppm);
  put("tone.wav", wav);
  const Result c = mbz("compress -v img.ppm tone.wav");
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_NE(c.err.find("coded as image: byte-exact original (PNM, 37x29, 3 channels, 16x16 tiles)"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("coded as audio: byte-exact original (WAV, 1 channel, 16000 Hz"),
            std::string::npos)
      << c.err;
  fs::remove(at("img.ppm"));
  fs::remove(at("tone.wav"));
  const Result d = mbz("decompress img.ppm.mbz tone.wav.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("img.ppm"), ppm);
  EXPECT_EQ(get("tone.wav"), wav);
  // The model saw samples: 16-bit PCM of a tone costs far less than 8 bits a byte.
  EXPECT_LT(fs::file_size(at("tone.wav.mbz")), wav.size() / 2);
}

TEST_F(CliTest, PixelsGiveAPngWithIdenticalPixels) {
  const std::string jpg = read_file(kData / "io_gradient.jpg");
  put("photo.jpg", jpg);
  const Result c = mbz("compress --pixels --tile 4 photo.jpg");
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_NE(c.err.find("PNG with identical pixels (from JPEG"), std::string::npos) << c.err;
  const Result info = mbz("info photo.jpg.mbz");
  EXPECT_NE(info.out.find("restores        PNG with identical pixels"), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("original size   not recorded"), std::string::npos) << info.out;
  const Result d = mbz("decompress photo.jpg.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(names(), (std::set<std::string>{"photo.jpg", "photo.jpg.mbz", "photo.png"}));
  const mbz::io::Image original = mbz::io::decode_image(bytes_of(jpg));
  const mbz::io::Image restored = mbz::io::decode_image(bytes_of(get("photo.png")));
  EXPECT_EQ(restored.width, original.width);
  EXPECT_EQ(restored.height, original.height);
  EXPECT_EQ(restored.channels, original.channels);
  EXPECT_EQ(restored.pixels, original.pixels);
}

TEST_F(CliTest, SamplesGiveAFlacWithIdenticalSamples) {
  const std::string flac = read_file(kData / "io_tone.flac");
  put("tone.flac", flac);
  ASSERT_EQ(mbz("compress -q --samples tone.flac").code(), 0);
  fs::rename(at("tone.flac"), at("original.flac"));
  const Result d = mbz("decompress tone.flac.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  const auto original = mbz::io::decode_audio(bytes_of(flac));
  const auto restored = mbz::io::decode_audio(bytes_of(get("tone.flac")));
  EXPECT_EQ(restored.pcm.sample_rate, original.pcm.sample_rate);
  EXPECT_EQ(restored.pcm.channels, original.pcm.channels);
  EXPECT_EQ(restored.pcm.samples, original.pcm.samples);
  EXPECT_EQ(restored.pcm.samples.size(), 1600u);
}

TEST_F(CliTest, CompressedImagesStayByteExactByDefault) {
  const std::string jpg = read_file(kData / "io_gradient.jpg");
  put("photo.jpg", jpg);
  ASSERT_EQ(mbz("compress -q photo.jpg").code(), 0);
  const Result info = mbz("info --json photo.jpg.mbz");
  EXPECT_NE(info.out.find("\"modality\":\"raw\""), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\"restores\":\"byte-exact original\""), std::string::npos) << info.out;
  fs::remove(at("photo.jpg"));
  ASSERT_EQ(mbz("decompress -q photo.jpg.mbz").code(), 0);
  EXPECT_EQ(get("photo.jpg"), jpg);
}

TEST_F(CliTest, ForcedReadingsThatCannotBeDoneAreRefused) {
  put("words.txt", text_bytes(3000, 1));
  const Result image = mbz("compress --as image words.txt");
  EXPECT_EQ(image.code(), 5) << image;
  EXPECT_NE(image.err.find("mbz: unsupported: "), std::string::npos) << image.err;
  EXPECT_EQ(names(), std::set<std::string>{"words.txt"});  // no output left behind
  // --pixels concerns images only: text stays text (so that it can be given for a mix).
  const Result pixels = mbz("compress -v --pixels words.txt");
  EXPECT_EQ(pixels.code(), 0) << pixels;
  EXPECT_NE(pixels.err.find("coded as text"), std::string::npos) << pixels.err;
  EXPECT_EQ(mbz("compress --as picture words.txt").code(), 6);
  EXPECT_EQ(mbz("compress --tile 5 words.txt").code(), 6);
}

TEST_F(CliTest, ScoreReportsModalitiesAndUnits) {
  put("img.ppm", make_ppm(32, 16));
  put("tone.wav", read_file(kData / "io_tone.wav"));
  put("words.txt", text_bytes(2000, 2));
  const Result r = mbz("score --json img.ppm tone.wav words.txt");
  ASSERT_EQ(r.code(), 0) << r;
  for (const char* want :
       {"\"modality\":\"image\"", "\"modality\":\"audio\"", "\"modality\":\"text\"",
        "\"bits_per_subpixel\"", "\"bits_per_sample\"", "\"modalities\""})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in " << r.out;
  const Result text = mbz("score img.ppm");
  EXPECT_NE(text.out.find(" image "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bits/subpixel"), std::string::npos) << text.out;
}

}  // namespace
