// The model file: round trips, splitting into parts, and a loader that refuses what does not
// fit, saying what it expected and what it found.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "codec/error.h"
#include "model/checkpoint.h"

namespace mbz::model {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("mbz_model_checkpoint_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

Checkpoint tiny_checkpoint(uint64_t seed) {
  torch::manual_seed(seed);
  Megabyte model(preset("tiny"));
  Checkpoint c;
  c.config_json = model->config.to_json();
  c.train_json = R"({"seed": 1})";
  c.step = 1234;
  c.tensors = model_tensors(model);
  c.tensors.push_back({"optim.extra", torch::arange(5, torch::kLong)});
  c.tensors.push_back({"optim.half", torch::randn({3, 2}).to(torch::kBFloat16)});
  c.tensors.push_back({"optim.int32", torch::tensor({-(int64_t{1} << 31), int64_t{1} << 25}).to(torch::kInt)});
  c.tensors.push_back({"optim.empty", torch::zeros({0, 4})});
  return c;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.config_json, b.config_json);
  EXPECT_EQ(a.train_json, b.train_json);
  EXPECT_EQ(a.step, b.step);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].tensor.scalar_type(), b.tensors[i].tensor.scalar_type());
    EXPECT_TRUE(torch::equal(a.tensors[i].tensor, b.tensors[i].tensor)) << a.tensors[i].name;
  }
}

TEST(Checkpoint, RoundTripOneFile) {
  const fs::path dir = temp_dir("one");
  const Checkpoint c = tiny_checkpoint(1);
  const auto files = write_checkpoint((dir / "m.mbzm").string(), c);
  ASSERT_EQ(files.size(), 1u);
  const Checkpoint back = read_checkpoint((dir / "m.mbzm").string());
  expect_same(c, back);
  // The model built from it computes the same function.
  torch::manual_seed(1);
  Megabyte original(preset("tiny"));
  Megabyte loaded = model_from_checkpoint(back, torch::kCPU);
  const torch::Tensor x = torch::randint(0, 256, {2, 50}, torch::kLong);
  const torch::Tensor m = torch::tensor({1, 2}, torch::kLong);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(original->forward(x, m), loaded->forward(x, m)));
}

TEST(Checkpoint, SplitsIntoParts) {
  const fs::path dir = temp_dir("parts");
  const Checkpoint c = tiny_checkpoint(2);
  const std::string path = (dir / "m.mbzm").string();
  write_checkpoint(path, c);  // one file first: splitting must remove it
  const auto files = write_checkpoint(path, c, 100'000);
  ASSERT_GT(files.size(), 2u);
  for (const std::string& f : files) EXPECT_LE(fs::file_size(f), 100'000u);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(files[0], path + ".000");
  expect_same(c, read_checkpoint(path));
  // A missing last part is reported as truncation.
  fs::remove(files.back());
  try {
    read_checkpoint(path);
    FAIL() << "a missing part was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptTruncated) << e.what();
    EXPECT_NE(std::string(e.what()).find("part missing"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RejectsDamage) {
  const fs::path dir = temp_dir("damage");
  const std::string path = (dir / "m.mbzm").string();
  write_checkpoint(path, tiny_checkpoint(3));
  std::vector<char> bytes(fs::file_size(path));
  std::ifstream(path, std::ios::binary).read(bytes.data(), bytes.size());
  auto code_of = [&](const std::vector<char>& b) {
    std::ofstream(path, std::ios::binary).write(b.data(), b.size());
    try {
      read_checkpoint(path);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kUsageBadArgument;  // not thrown at all
  };
  std::vector<char> b = bytes;
  b[0] = 'X';
  EXPECT_EQ(code_of(b), ErrorCode::kFormatMagic);
  b = bytes;
  b[4] = 2;
  EXPECT_EQ(code_of(b), ErrorCode::kFormatVersion);
  b = bytes;
  b[b.size() / 2] ^= 1;
  EXPECT_EQ(code_of(b), ErrorCode::kCorruptChunk);
  b = bytes;
  b.resize(b.size() - 100);
  EXPECT_EQ(code_of(b), ErrorCode::kCorruptTruncated);
  EXPECT_THROW(read_checkpoint((dir / "absent.mbzm").string()), Error);
}

TEST(Checkpoint, NamesTheMismatchedShape) {
  Checkpoint c = tiny_checkpoint(4);
  Config other = preset("tiny");
  other.local_width = 32;
  Megabyte model(other);
  try {
    load_model_tensors(model, c.tensors);
    FAIL() << "a model of another shape loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
    EXPECT_NE(std::string(e.what()).find("expected shape"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("file has"), std::string::npos) << e.what();
  }
  c.tensors.erase(c.tensors.begin());
  Megabyte same(preset("tiny"));
  EXPECT_THROW(load_model_tensors(same, c.tensors), Error);  // a tensor missing
}

}  // namespace
}  // namespace mbz::model
