// `mbz train`, `mbz score --model` and `mbz quantize` from the command line: a tiny model
// trained for a few steps writes its checkpoint and CSV log where asked, resumes from it,
// the checkpoint scores files, and its exact model file codes archives that decode only
// with that model; `mbz train --qat` fine-tunes a float checkpoint and writes its exact
// model file itself.
#include "cli_test_util.h"

namespace {

using namespace mbz::cli_test;
namespace fs = std::filesystem;

TEST_F(CliTest, TrainWritesCheckpointsThatResumeAndScore) {
  fs::create_directories(at("data"));
  for (int i = 0; i < 4; ++i) put("data/f" + std::to_string(i) + ".txt", text_bytes(20000, 40 + i));
  const Result t =
      mbz("train -q --config tiny --data data --valid data --steps 20 --batch 4 "
          "--checkpoint-every 10 --eval-every 10 --device cpu --out run");
  ASSERT_EQ(t.code(), 0) << t;
  EXPECT_TRUE(fs::exists(at("run/step-00000010.mbzm"))) << t.err;
  EXPECT_TRUE(fs::exists(at("run/step-00000020.mbzm"))) << t.err;
  const std::vector<std::string> csv = lines_of(get("run/train.csv"));
  ASSERT_GE(csv.size(), 2u);
  EXPECT_EQ(csv[0].rfind("step,lr,train_bpb,", 0), 0u) << csv[0];

  const Result r =
      mbz("train -q --config tiny --data data --steps 30 --batch 4 --device cpu "
          "--out run --resume run/step-00000020.mbzm");
  ASSERT_EQ(r.code(), 0) << r;
  EXPECT_TRUE(fs::exists(at("run/step-00000030.mbzm"))) << r.err;

  const Result s = mbz("score --json --model run/step-00000030.mbzm data/f0.txt");
  ASSERT_EQ(s.code(), 0) << s;
  EXPECT_NE(s.out.find("\"bits_per_byte\""), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("step-00000030.mbzm"), std::string::npos) << s.out;

  // An unknown preset is read as a JSON file's path, and is refused before any data loads.
  const Result bad = mbz("train --config huge --data data --steps 1 --out run2");
  EXPECT_EQ(bad.code(), 1) << bad;
  EXPECT_NE(bad.err.find("huge: cannot open model config (presets: tiny, small, medium, base)"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("files:"), std::string::npos) << bad.err;
}

// --gpus N starts N - 1 more processes of mbz (on the CPU here, all on the CPU) that each
// take a share of every batch: the run takes the steps of one process (up to the float
// rounding of the summed gradient), writes one CSV and one set of checkpoints, and leaves
// no process or shared memory behind.
TEST_F(CliTest, TrainGpusSplitsEachBatchBetweenProcesses) {
  fs::create_directories(at("data"));
  for (int i = 0; i < 2; ++i) put("data/f" + std::to_string(i) + ".txt", text_bytes(20000, 60 + i));
  const std::string common = "train -q --config tiny --data data --steps 12 --batch 6 --log-every 4 ";
  const Result one = mbz(common + "--out one");
  ASSERT_EQ(one.code(), 0) << one;
  const Result two = mbz(common + "--gpus 2 --out two");
  ASSERT_EQ(two.code(), 0) << two;
  const std::vector<std::string> a = lines_of(get("one/train.csv")), b = lines_of(get("two/train.csv"));
  ASSERT_EQ(a.size(), 4u);  // header, steps 4, 8, 12
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 1; i < a.size(); ++i) {
    const double la = std::stod(a[i].substr(a[i].find(',', a[i].find(',') + 1) + 1));
    const double lb = std::stod(b[i].substr(b[i].find(',', b[i].find(',') + 1) + 1));
    EXPECT_NEAR(la, lb, 1e-3) << a[i] << " / " << b[i];
  }
  EXPECT_TRUE(fs::exists(at("two/step-00000012.mbzm")));
  EXPECT_FALSE(fs::exists(at("two/step-00000012.mbzm.000")));

  const Result bad = mbz("train -q --config tiny --data data --steps 2 --batch 2 --gpus 3 --out three");
  EXPECT_EQ(bad.code(), 6) << bad;  // usage
  EXPECT_NE(bad.err.find("--batch 2 is smaller than the 3 ranks"), std::string::npos) << bad.err;
}

TEST_F(CliTest, QuantizedModelCompressesAndDecompressesExactly) {
  fs::create_directories(at("data"));
  for (int i = 0; i < 2; ++i) put("data/f" + std::to_string(i) + ".txt", text_bytes(6000, 50 + i));
  ASSERT_EQ(mbz("train -q --config tiny --data data --steps 40 --batch 4 --out run").code(), 0);
  const Result q = mbz("quantize -q run/step-00000040.mbzm -o tiny.mbzq --calibrate data");
  ASSERT_EQ(q.code(), 0) << q;

  // Longer than the tiny model's 128-byte context, so the decoder restarts its window.
  put("in.txt", text_bytes(700, 7));
  const Result c = mbz("compress -q --zstd-level 0 --model tiny.mbzq in.txt -o in.mbz");
  ASSERT_EQ(c.code(), 0) << c;
  const Result i = mbz("info in.mbz");
  EXPECT_NE(i.out.find("tiny.mbzq (id "), std::string::npos) << i.out;
  // The model codes the chunk, alone or mixed with the context mixer (level 3).
  EXPECT_TRUE(i.out.find("model       1 chunks") != std::string::npos ||
              i.out.find("hybrid      1 chunks") != std::string::npos)
      << i.out;
  // score with the model file gives the ideal size of what compress coded.
  const Result sc = mbz("score --json --model tiny.mbzq in.txt");
  ASSERT_EQ(sc.code(), 0) << sc;
  EXPECT_NE(sc.out.find("\"name\":\"tiny.mbzq\""), std::string::npos) << sc.out;
  const Result d = mbz("decompress -q --model tiny.mbzq in.mbz -o out.txt");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("out.txt"), get("in.txt"));

  // Without the model file, or with another model, the archive is refused (exit 4).
  const Result missing = mbz("decompress -q in.mbz -o out2.txt");
  EXPECT_EQ(missing.code(), 4) << missing;
  EXPECT_NE(missing.err.find("archive needs model tiny.mbzq (id "), std::string::npos) << missing.err;
  ASSERT_EQ(mbz("train -q --config tiny --data data --steps 41 --batch 4 --out run "
                "--resume run/step-00000040.mbzm").code(), 0);
  ASSERT_EQ(mbz("quantize -q run/step-00000041.mbzm -o other.mbzq --calibrate data").code(), 0);
  const Result wrong = mbz("decompress -q --model other.mbzq in.mbz -o out3.txt");
  EXPECT_EQ(wrong.code(), 4) << wrong;
  EXPECT_NE(wrong.err.find("but other.mbzq is model id"), std::string::npos) << wrong.err;
  EXPECT_FALSE(fs::exists(at("out3.txt")));
}

// Quantization-aware fine-tuning of a float checkpoint: float checkpoints as usual, and the
// last one's exact model file beside it, which codes a file that decodes exactly.
TEST_F(CliTest, QatFineTuningWritesAnExactModelThatCodesExactly) {
  fs::create_directories(at("data"));
  for (int i = 0; i < 2; ++i) put("data/f" + std::to_string(i) + ".txt", text_bytes(6000, 60 + i));
  ASSERT_EQ(mbz("train -q --config tiny --data data --steps 30 --batch 4 --out run").code(), 0);
  EXPECT_FALSE(fs::exists(at("run/step-00000030.mbzq")));  // only --qat writes one
  const Result t =
      mbz("train --qat --data data --steps 40 --batch 4 --out qat "
          "--resume run/step-00000030.mbzm");
  ASSERT_EQ(t.code(), 0) << t;
  EXPECT_NE(t.err.find("mbz train: exact model qat/step-00000040.mbzq"), std::string::npos)
      << t.err;
  EXPECT_TRUE(fs::exists(at("qat/step-00000040.mbzm")));
  ASSERT_TRUE(fs::exists(at("qat/step-00000040.mbzq")));

  put("in.txt", text_bytes(700, 8));
  const Result c =
      mbz("compress -q --zstd-level 0 --model qat/step-00000040.mbzq in.txt -o in.mbz");
  ASSERT_EQ(c.code(), 0) << c;
  const std::string info = mbz("info in.mbz").out;
  EXPECT_TRUE(info.find("model       1 chunks") != std::string::npos ||
              info.find("hybrid      1 chunks") != std::string::npos)
      << info;
  const Result d = mbz("decompress -q --model qat/step-00000040.mbzq in.mbz -o out.txt");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("out.txt"), get("in.txt"));

  // The QAT run's checkpoint is a float checkpoint: it scores and resumes like any other.
  EXPECT_EQ(mbz("score -q --model qat/step-00000040.mbzm in.txt").code(), 0);
  const Result again =
      mbz("train -q --data data --steps 41 --batch 4 --out qat --resume qat/step-00000040.mbzm");
  ASSERT_EQ(again.code(), 0) << again;
  EXPECT_FALSE(fs::exists(at("qat/step-00000041.mbzq")));
}

}  // namespace
