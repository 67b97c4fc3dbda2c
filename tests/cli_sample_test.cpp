// `mbz sample` from the command line, with the bundled model and a few dozen bytes each:
// the seed decides the bytes, the prompt comes back byte for byte (pixels, samples, text),
// outputs have the prompt's shape, and bad requests fail with the documented exit status.
#include "cli_test_util.h"
#include "io/audio.h"
#include "io/image.h"

namespace {

using namespace mbz::cli_test;

std::string as_string(const std::vector<uint8_t>& v) {
  return {v.begin(), v.end()};
}
std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A PNG of smooth gradients, `channels` channels; the last is `alpha` when given.
std::string gradient_png(uint32_t w, uint32_t h, uint32_t channels, int alpha = -1) {
  mbz::io::Image image{w, h, channels, {}};
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (uint32_t c = 0; c < channels; ++c)
        image.pixels.push_back(alpha >= 0 && c == channels - 1
                                   ? uint8_t(alpha)
                                   : uint8_t(40 + x * 9 + y * 5 + c * 30));
  return as_string(mbz::io::encode_png(image));
}

std::string tone_wav(uint32_t rate, uint16_t channels, uint32_t frames) {
  mbz::io::Pcm16 pcm;
  pcm.sample_rate = rate;
  pcm.channels = channels;
  for (uint32_t i = 0; i < frames * channels; ++i)
    pcm.samples.push_back(int16_t(3000 * std::sin(i * 0.3)));
  return as_string(mbz::io::encode_audio(pcm, mbz::io::AudioContainer::kWav, 16));
}

// The first `rows` rows of an image's raster.
std::vector<uint8_t> top_rows(const mbz::io::Image& image, uint32_t rows) {
  return {image.pixels.begin(), image.pixels.begin() + size_t{image.width} * rows * image.channels};
}

const std::string kPrompt = "The archive model draws the bytes that come next. ";

TEST_F(CliTest, SampleTextSeedDecidesTheBytes) {
  put("p.txt", kPrompt);
  const Result a = mbz("sample --prompt p.txt --bytes 24 --seed 7 -o -");
  ASSERT_EQ(a.code(), 0) << a;
  ASSERT_EQ(a.out.size(), kPrompt.size() + 24);
  EXPECT_EQ(a.out.substr(0, kPrompt.size()), kPrompt);
  EXPECT_EQ(mbz("sample --prompt p.txt --bytes 24 --seed 7 -o -").out, a.out);
  EXPECT_NE(mbz("sample --prompt p.txt --bytes 24 --seed 8 -o -").out, a.out);
  // To a file, the same bytes; the file is not overwritten without -f.
  ASSERT_EQ(mbz("sample --prompt p.txt --bytes 24 --seed 7 -o out.txt").code(), 0);
  EXPECT_EQ(get("out.txt"), a.out);
  const Result exists = mbz("sample --prompt p.txt --bytes 24 --seed 7 -o out.txt");
  EXPECT_EQ(exists.code(), 1) << exists;
  EXPECT_EQ(get("out.txt"), a.out);
  EXPECT_EQ(names(), (std::set<std::string>{"out.txt", "p.txt"}));
  // From standard input; and from nothing (the text start patch), or an empty prompt.
  EXPECT_EQ(mbz("sample --prompt - --bytes 24 --seed 7 -o -", kPrompt).out, a.out);
  const Result none = mbz("sample --modality text --bytes 16 --seed 3 -o -");
  ASSERT_EQ(none.code(), 0) << none;
  EXPECT_EQ(none.out.size(), 16u);
  put("empty.txt", "");
  EXPECT_EQ(mbz("sample --prompt empty.txt --bytes 16 --seed 3 -o -").out, none.out);
}

TEST_F(CliTest, SampleTemperatureZeroAndTopPZeroAreTheArgmax) {
  put("p.txt", kPrompt);
  const Result greedy = mbz("sample --prompt p.txt --bytes 20 --seed 1 --temperature 0 -o -");
  ASSERT_EQ(greedy.code(), 0) << greedy;
  EXPECT_EQ(mbz("sample --prompt p.txt --bytes 20 --seed 2 --temperature 0 -o -").out, greedy.out);
  EXPECT_EQ(mbz("sample --prompt p.txt --bytes 20 --seed 3 --top-p 0 -o -").out, greedy.out);
  // A temperature near 0 is almost always the argmax too; a high one is not.
  EXPECT_NE(mbz("sample --prompt p.txt --bytes 20 --seed 2 --temperature 4 -o -").out, greedy.out);
}

TEST_F(CliTest, SampleImageKeepsThePromptAndItsShape) {
  put("p.png", gradient_png(8, 4, 3));
  const Result r = mbz("sample --prompt p.png --tiles 1 --tile 4 --seed 5 -o out.png");
  ASSERT_EQ(r.code(), 0) << r;
  const mbz::io::Image prompt = mbz::io::decode_image(as_bytes(get("p.png")));
  const mbz::io::Image out = mbz::io::decode_image(as_bytes(get("out.png")));
  EXPECT_EQ(out.width, 8u);
  EXPECT_EQ(out.height, 8u);
  EXPECT_EQ(out.channels, 3u);
  EXPECT_EQ(top_rows(out, 4), prompt.pixels);
  ASSERT_EQ(mbz("sample --prompt p.png --tiles 1 --tile 4 --seed 5 -o again.png").code(), 0);
  EXPECT_EQ(get("again.png"), get("out.png"));

  // A height that ends inside a row of tiles: the prompt's pixels there are kept too.
  put("q.png", gradient_png(8, 6, 1));
  ASSERT_EQ(mbz("sample --prompt q.png --height 3 --tile 4 --seed 5 -o q-out.png").code(), 0);
  const mbz::io::Image q = mbz::io::decode_image(as_bytes(get("q-out.png")));
  EXPECT_EQ(q.width, 8u);
  EXPECT_EQ(q.height, 9u);
  EXPECT_EQ(q.channels, 1u);
  EXPECT_EQ(top_rows(q, 6), mbz::io::decode_image(as_bytes(get("q.png"))).pixels);

  // A constant alpha channel is left out of the stream, as compress does, and put back.
  put("a.png", gradient_png(4, 4, 4, 200));
  ASSERT_EQ(mbz("sample --prompt a.png --tiles 1 --tile 4 --seed 5 -o a-out.png").code(), 0);
  const mbz::io::Image a = mbz::io::decode_image(as_bytes(get("a-out.png")));
  ASSERT_EQ(a.channels, 4u);
  EXPECT_EQ(a.height, 8u);
  for (size_t i = 3; i < a.pixels.size(); i += 4) ASSERT_EQ(a.pixels[i], 200) << i;
}

TEST_F(CliTest, SampleImageCropOfAPrompt) {
  put("p.png", gradient_png(20, 12, 3));
  const Result r = mbz("sample --prompt p.png --crop 8x4+5+3 --tiles 1 --tile 4 -o out.png");
  ASSERT_EQ(r.code(), 0) << r;
  const mbz::io::Image prompt = mbz::io::decode_image(as_bytes(get("p.png")));
  const mbz::io::Image out = mbz::io::decode_image(as_bytes(get("out.png")));
  ASSERT_EQ(out.width, 8u);
  ASSERT_EQ(out.height, 8u);
  for (uint32_t y = 0; y < 4; ++y)
    for (uint32_t x = 0; x < 8 * 3; ++x)
      ASSERT_EQ(out.pixels[y * 24 + x], prompt.pixels[(y + 3) * 60 + 15 + x]) << y << " " << x;
  for (const char* bad : {"--crop 9x4+12+0", "--crop 8x4+1", "--crop '-8x4 '"}) {
    const Result e = mbz(std::string("sample --prompt p.png --tiles 1 -o e.png ") + bad);
    EXPECT_EQ(e.code(), 6) << bad << ": " << e;
  }
}

TEST_F(CliTest, SampleAudioKeepsThePromptAndItsShape) {
  put("p.wav", tone_wav(8000, 2, 30));
  const Result r = mbz("sample --prompt p.wav --seconds 0.002 --seed 4 -o out.wav");
  ASSERT_EQ(r.code(), 0) << r;
  const mbz::io::DecodedAudio prompt = mbz::io::decode_audio(as_bytes(get("p.wav")));
  const mbz::io::DecodedAudio out = mbz::io::decode_audio(as_bytes(get("out.wav")));
  EXPECT_EQ(out.pcm.sample_rate, 8000u);
  EXPECT_EQ(out.pcm.channels, 2u);
  EXPECT_EQ(out.pcm.frames(), 46u);  // 30 + 0.002 s at 8 kHz
  EXPECT_TRUE(
      std::equal(prompt.pcm.samples.begin(), prompt.pcm.samples.end(), out.pcm.samples.begin()));
  ASSERT_EQ(mbz("sample --prompt p.wav --seconds 0.002 --seed 4 -o again.wav").code(), 0);
  EXPECT_EQ(get("again.wav"), get("out.wav"));
}

TEST_F(CliTest, SampleFromNothing) {
  const Result image =
      mbz("sample --modality image --width 5 --channels 1 --height 3 --tile 4 -o i.png");
  ASSERT_EQ(image.code(), 0) << image;
  const mbz::io::Image i = mbz::io::decode_image(as_bytes(get("i.png")));
  EXPECT_EQ(i.width, 5u);
  EXPECT_EQ(i.height, 3u);
  EXPECT_EQ(i.channels, 1u);
  const Result audio = mbz("sample --rate 8000 --seconds 0.003 -o a.wav");
  ASSERT_EQ(audio.code(), 0) << audio;
  const mbz::io::DecodedAudio a = mbz::io::decode_audio(as_bytes(get("a.wav")));
  EXPECT_EQ(a.pcm.sample_rate, 8000u);
  EXPECT_EQ(a.pcm.channels, 1u);
  EXPECT_EQ(a.pcm.frames(), 24u);
}

TEST_F(CliTest, SampleRefusesBadRequests) {
  put("p.txt", kPrompt);
  put("p.png", gradient_png(8, 4, 3));
  put("empty", "");
  put("junk.mbzq", "not a model file");
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  const Case cases[] = {
      {"--prompt p.txt -o o", 6, "say how much to add"},
      {"--prompt p.txt --bytes 0 -o o", 6, "say how much to add"},
      {"--prompt p.txt --bytes 100000000 -o o", 6, "at most 67108864"},
      {"--prompt p.txt --bytes 5 --modality audio -o o", 6, "disagrees"},
      {"--prompt p.txt --bytes 5 --temperature 65 -o o", 6, "--temperature"},
      {"--prompt p.txt --bytes 5 --overlap 8192 -o o", 6, "overlap"},
      {"--prompt p.txt --tiles 1 -o o", 5, "p.txt"},
      {"--prompt empty --tiles 1 -o o", 5, "the prompt is empty"},
      {"--prompt missing.png --tiles 1 -o o", 1, "missing.png"},
      {"--prompt p.png --tiles 1 --width 8 -o o", 6, "the prompt gives them"},
      {"--prompt p.png --tiles 99999999999 -o o", 6, "rows"},
      {"--tiles 1 -o o", 6, "--width"},
      {"--seconds -1 -o o", 6, "positive"},
      {"--seconds 1e12 -o o", 6, "at most"},
      {"--prompt p.txt --bytes 5 --model junk.mbzq -o o", 4, "junk.mbzq"},
      {"--prompt p.txt --bytes 5 --model missing.mbzq -o o", 1, "missing.mbzq"},
  };
  for (const Case& c : cases) {
    const Result r = mbz("sample " + c.args);
    EXPECT_EQ(r.code(), c.code) << c.args << ": " << r;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << ": " << r.err;
  }
  EXPECT_EQ(names(), (std::set<std::string>{"empty", "junk.mbzq", "p.png", "p.txt"}));
}

}  // namespace
