// The bundled default model from the command line: text, image and audio samples compress
// with it (no --model) and decompress exactly; the model file given by path is the same
// model; a damaged or different model is the model error (exit 4) naming what is needed.
#include "cli_test_util.h"

namespace {

using namespace mbz::cli_test;
namespace fs = std::filesystem;

const fs::path kData = fs::path(MBZ_TEST_DATA_DIR) / "data";
const fs::path kBundledFile = fs::path(MBZ_TEST_DATA_DIR).parent_path() / "model" / "weights" / "mbz-medium-1.mbzq";

// A grey PPM with smooth gradients: the kind of image the model predicts well.
std::string gradient_ppm(uint32_t w, uint32_t h) {
  std::string ppm = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) ppm += static_cast<char>((x * 2 + y + c * 9) & 255);
  return ppm;
}

TEST_F(CliTest, BundledModelCodesTextImageAndAudioExactly) {
  const std::string text = text_bytes(20000, 5), ppm = gradient_ppm(48, 40),
                    wav = read_file(kData / "io_tone.wav");
  put("notes.txt", text);
  put("picture.ppm", ppm);
  put("tone.wav", wav);
  const Result c = mbz("compress --zstd-level 0 notes.txt picture.ppm tone.wav");
  ASSERT_EQ(c.code(), 0) << c;
  for (const char* name : {"notes.txt.mbz", "picture.ppm.mbz", "tone.wav.mbz"}) {
    const Result info = mbz(std::string("info --json ") + name);
    EXPECT_NE(info.out.find(R"("model":{"name":"mbz-medium-1.mbzq")"), std::string::npos)
        << name << ": " << info.out;
  }
  // On text the model does far better than storing (zstd was not tried). The synthetic
  // image and tone are unlike its training data: only exactness is asked of them here.
  EXPECT_LT(fs::file_size(at("notes.txt.mbz")), text.size() / 2);
  for (const char* name : {"notes.txt", "picture.ppm", "tone.wav"}) fs::remove(at(name));
  const Result d = mbz("decompress notes.txt.mbz picture.ppm.mbz tone.wav.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("notes.txt"), text);
  EXPECT_EQ(get("picture.ppm"), ppm);
  EXPECT_EQ(get("tone.wav"), wav);
}

TEST_F(CliTest, BundledModelFileIsTheSameModelAndOthersAreRefused) {
  const std::string text = text_bytes(3000, 6);
  put("a.txt", text);
  // Level 3 for both: without --level, --model would choose it and the default would not.
  ASSERT_EQ(mbz("compress -q --level 3 -o default.mbz a.txt").code(), 0);
  ASSERT_EQ(mbz("compress -q --level 3 -o byfile.mbz --model " + quote(kBundledFile.string()) + " a.txt").code(), 0);
  EXPECT_EQ(get("default.mbz"), get("byfile.mbz"));

  // A damaged copy of the model file: refused as a model error, never wrong output.
  std::string damaged = read_file(kBundledFile);
  damaged[damaged.size() / 2] ^= 0x10;
  put("damaged.mbzq", damaged);
  const Result bad = mbz("decompress -o out.txt --model damaged.mbzq default.mbz");
  EXPECT_EQ(bad.code(), 4) << bad;
  EXPECT_NE(bad.err.find("damaged.mbzq is not a usable model file"), std::string::npos) << bad.err;
  // A different model: the mismatch names the model and id the archive needs.
  const Result other = mbz("decompress -o out.txt --model order2-v1 default.mbz");
  EXPECT_EQ(other.code(), 4) << other;
  EXPECT_NE(other.err.find("archive needs model mbz-medium-1.mbzq (id "), std::string::npos)
      << other.err;
  EXPECT_FALSE(fs::exists(at("out.txt")));
}

TEST_F(CliTest, NoCmCodesWithTheByteModelAlone) {
  const std::string text = text_bytes(6000, 8);
  put("t", text);
  ASSERT_EQ(mbz("compress -q --level 3 --no-cm --zstd-level 0 -o m.mbz t").code(), 0);
  ASSERT_EQ(mbz("compress -q --level 3 --zstd-level 0 -o h.mbz t").code(), 0);
  const Result info = mbz("info --json m.mbz");
  EXPECT_NE(info.out.find(R"("method":"model")"), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find(R"("method":"hybrid")"), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find(R"("method":"cm")"), std::string::npos) << info.out;
  // With the context mixer the hybrid wins this text: the flag changed what was tried.
  EXPECT_NE(get("m.mbz"), get("h.mbz"));
  ASSERT_EQ(mbz("decompress -q -o back m.mbz").code(), 0);
  EXPECT_EQ(get("back"), text);
}

TEST_F(CliTest, BatchThreadsAndDeviceChangeSpeedNeverBytes) {
  // Level 3 and two segments of 16 KiB: the model runs 4 lanes of each in a batch.
  const std::string text = text_bytes(30000, 7);
  put("t", text);
  const std::string compress = "compress -q -f --level 3 --lanes 4 --chunk-size 16K --zstd-level 0 ";
  ASSERT_EQ(mbz(compress + "-o ref.mbz t").code(), 0);
  for (const char* flags : {"--batch 1 -T 1", "--batch 3 -T 2", "--batch 64 -T 1", "--device auto"}) {
    const Result c = mbz(compress + "-o again.mbz " + flags + " t");
    ASSERT_EQ(c.code(), 0) << flags << ": " << c;
    EXPECT_EQ(get("again.mbz"), get("ref.mbz")) << flags;
    const Result d = mbz(std::string("decompress -q -f -o back ") + flags + " ref.mbz");
    ASSERT_EQ(d.code(), 0) << flags << ": " << d;
    EXPECT_EQ(get("back"), text) << flags;
  }
  EXPECT_EQ(mbz("compress -q -f --batch 0 -o x.mbz t").code(), 6);
}

}  // namespace
