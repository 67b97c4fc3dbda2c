// `mbz train` and `mbz score --model` from the command line: a tiny model trained for a
// few steps writes its checkpoint and CSV log where asked, resumes from it, and the
// checkpoint scores files.
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
  EXPECT_NE(bad.err.find("huge: cannot open model config (presets: tiny, small, base)"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("files:"), std::string::npos) << bad.err;
}

}  // namespace
