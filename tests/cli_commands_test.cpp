// The command line as a user meets it: the built `mbz` binary runs as a subprocess, each
// test in a fresh directory, and every check looks at stdout, stderr and the exit status.
// Each start of mbz costs about a second (LibTorch loads), so the tests use few runs and
// small inputs; archives that only need to be broken are made in-process by the codec.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "codec/archive.h"
#include "codec/format.h"
#include "codec/order2_model.h"

namespace {

using namespace mbz::cli_test;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The one-line summary compress prints on stderr for a file.
std::string summary_prefix(const std::string& name, size_t size) {
  return name + ": " + std::to_string(size) + " => ";
}

// ---- Files in, files out ------------------------------------------------------------------

TEST_F(CliTest, CompressAndDecompressFileKeepInputs) {
  const std::string data = text_bytes(20000, 1);
  put("t", data);

  const Result c = mbz("compress t");
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_EQ(c.out, "");
  EXPECT_EQ(c.err.rfind(summary_prefix("t", data.size()), 0), 0u) << c.err;
  EXPECT_NE(c.err.find(", t.mbz\n"), std::string::npos) << c.err;
  EXPECT_EQ(get("t"), data);  // kept by default
  const std::string archive = get("t.mbz");
  ASSERT_GE(archive.size(), 4u);
  EXPECT_EQ(archive.substr(0, 4), "\x89MBZ");
  EXPECT_LT(archive.size(), data.size() / 2);

  fs::rename(at("t"), at("t.orig"));
  const Result d = mbz("decompress t.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(d.out, "");
  EXPECT_EQ(d.err, "");  // decompress reports only with -v
  EXPECT_EQ(get("t"), data);
  EXPECT_EQ(get("t.mbz"), archive);  // kept by default
  EXPECT_EQ(names(), (std::set<std::string>{"t", "t.mbz", "t.orig"}));
}

TEST_F(CliTest, OutputOptionStdoutAndStdinAgree) {
  const std::string data = text_bytes(5000, 2);
  put("t", data);

  const Result o = mbz("compress -k -o named t");
  ASSERT_EQ(o.code(), 0) << o;
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find(", named\n"), std::string::npos) << o.err;
  EXPECT_EQ(get("t"), data);  // -k is accepted and keeps the input
  const std::string archive = get("named");

  const Result c = mbz("compress -c t");
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_EQ(c.out, archive);
  EXPECT_EQ(c.err.rfind(summary_prefix("t", data.size()), 0), 0u) << c.err;

  // From a pipe the size is unknown, so the header differs from the file's archive; "-"
  // and no argument are the same thing.
  const Result dash = mbz("compress -", data);
  const Result none = mbz("compress", data);
  ASSERT_EQ(dash.code(), 0) << dash;
  ASSERT_EQ(none.code(), 0) << none;
  EXPECT_EQ(dash.out, none.out);
  EXPECT_NE(dash.out, archive);
  EXPECT_EQ(dash.err.rfind(summary_prefix("stdin", data.size()), 0), 0u) << dash.err;
  EXPECT_EQ(names(), (std::set<std::string>{"t", "named"}));

  const Result dec_o = mbz("decompress -o restored named");
  ASSERT_EQ(dec_o.code(), 0) << dec_o;
  EXPECT_EQ(get("restored"), data);
  const Result dec_c = mbz("decompress -c named");
  ASSERT_EQ(dec_c.code(), 0) << dec_c;
  EXPECT_EQ(dec_c.out, data);
  const Result dec_dash = mbz("decompress -", dash.out);
  ASSERT_EQ(dec_dash.code(), 0) << dec_dash;
  EXPECT_EQ(dec_dash.out, data);
  const Result dec_none = mbz("decompress", archive);
  ASSERT_EQ(dec_none.code(), 0) << dec_none;
  EXPECT_EQ(dec_none.out, data);
  EXPECT_EQ(dec_none.err, "");
  EXPECT_EQ(names(), (std::set<std::string>{"t", "named", "restored"}));
}

TEST_F(CliTest, RmRemovesInputOnlyAfterSuccess) {
  const std::string data = text_bytes(3000, 3);
  put("t", data);
  // As zstd: what went to stdout may not have been kept anywhere, so the input stays.
  const Result to_stdout = mbz("compress -q --rm -c t");
  ASSERT_EQ(to_stdout.code(), 0) << to_stdout;
  EXPECT_EQ(to_stdout.out.substr(0, 4), "\x89MBZ");
  EXPECT_EQ(names(), (std::set<std::string>{"t"}));

  const Result c = mbz("compress --rm t");
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_EQ(names(), (std::set<std::string>{"t.mbz"}));

  // Cut inside the payload: decoding has begun and fails.
  const std::string cut = get("t.mbz").substr(0, get("t.mbz").size() - 30);
  put("cut.mbz", cut);
  const Result bad = mbz("decompress --rm cut.mbz");
  EXPECT_EQ(bad.code(), 3) << bad;
  EXPECT_EQ(get("cut.mbz"), cut);

  const Result d = mbz("decompress --rm t.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("t"), data);
  EXPECT_EQ(names(), (std::set<std::string>{"t", "cut.mbz"}));
}

TEST_F(CliTest, ExistingOutputIsReplacedOnlyWithForce) {
  const std::string data = text_bytes(3000, 4);
  put("t", data);
  put("t.mbz", "old");

  const Result c = mbz("compress t");
  EXPECT_EQ(c.code(), 1) << c;
  EXPECT_NE(c.err.find("t.mbz"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("already exists"), std::string::npos) << c.err;
  EXPECT_EQ(get("t.mbz"), "old");
  EXPECT_EQ(names(), (std::set<std::string>{"t", "t.mbz"}));

  const Result cf = mbz("compress -f t");
  ASSERT_EQ(cf.code(), 0) << cf;
  const std::string archive = get("t.mbz");
  EXPECT_EQ(archive.substr(0, 4), "\x89MBZ");

  put("t", "other");
  const Result d = mbz("decompress t.mbz");
  EXPECT_EQ(d.code(), 1) << d;
  EXPECT_NE(d.err.find("already exists"), std::string::npos) << d.err;
  EXPECT_EQ(get("t"), "other");
  EXPECT_EQ(get("t.mbz"), archive);
  EXPECT_EQ(names(), (std::set<std::string>{"t", "t.mbz"}));
}

TEST_F(CliTest, SameFileAsInputAndOutputIsRefused) {
  const std::string data = text_bytes(2000, 5);
  put("t", data);
  // Even with -f: the output replaces the input, and --rm would then delete both.
  const Result c = mbz("compress -f --rm -o t t");
  EXPECT_EQ(c.code(), 6) << c;
  EXPECT_NE(c.err.find("same file"), std::string::npos) << c.err;
  EXPECT_EQ(get("t"), data);
  EXPECT_EQ(names(), (std::set<std::string>{"t"}));
}

TEST_F(CliTest, RefusesCompressedDataToATerminal) {
  put("t", "tiny");
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminal: " << std::strerror(errno);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int tty = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(tty, 0) << std::strerror(errno);
  termios raw;
  ASSERT_EQ(tcgetattr(tty, &raw), 0);
  cfmakeraw(&raw);  // so that binary bytes come through the master unchanged
  ASSERT_EQ(tcsetattr(tty, TCSANOW, &raw), 0);
  const int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int err = open_capture("stderr");
  auto run = [&](const std::string& args, int in, int out) {
    EXPECT_EQ(ftruncate(err, 0), 0);
    lseek(err, 0, SEEK_SET);
    Result r;
    r.status = finish(start(args, in, out, err));
    r.err = read_file(root_ / "stderr");
    return r;
  };
  auto drain = [&] {
    std::string got;
    fcntl(master, F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (ssize_t n; (n = read(master, buf, sizeof buf)) > 0;) got.append(buf, n);
    return got;
  };

  const Result c = run("compress -c t", dev_null, tty);
  EXPECT_EQ(c.code(), 6) << c;
  EXPECT_NE(c.err.find("refusing to write compressed data to a terminal"), std::string::npos)
      << c.err;
  EXPECT_EQ(drain(), "");

  const Result d = run("decompress", tty, dev_null);
  EXPECT_EQ(d.code(), 6) << d;
  EXPECT_NE(d.err.find("refusing to read compressed data from a terminal"), std::string::npos)
      << d.err;

  const Result forced = run("compress -f -c t", dev_null, tty);
  EXPECT_EQ(forced.code(), 0) << forced;
  EXPECT_EQ(drain().substr(0, 4), "\x89MBZ");
  EXPECT_EQ(names(), (std::set<std::string>{"t"}));
  for (int fd : {master, tty, dev_null, err}) close(fd);
}

TEST_F(CliTest, SuffixRules) {
  put("t", "plain");
  put("x.mbz", "looks compressed");
  const Result d = mbz("decompress t");
  EXPECT_EQ(d.code(), 6) << d;
  EXPECT_NE(d.err.find("t: unknown suffix"), std::string::npos) << d.err;

  const Result c = mbz("compress x.mbz");
  EXPECT_EQ(c.code(), 6) << c;
  EXPECT_NE(c.err.find("x.mbz: already has the .mbz suffix"), std::string::npos) << c.err;
  EXPECT_EQ(names(), (std::set<std::string>{"t", "x.mbz"}));

  const Result cf = mbz("compress -q -f x.mbz");
  EXPECT_EQ(cf.code(), 0) << cf;
  EXPECT_EQ(cf.err, "");
  EXPECT_EQ(names(), (std::set<std::string>{"t", "x.mbz", "x.mbz.mbz"}));
}

TEST_F(CliTest, ProgressLineGivesWayToTheSummary) {
  // A second or so of model work on one thread: progress is drawn a few times a second.
  const std::string data = skewed_bytes(1 << 20, 15);
  put("f", data);
  const Result r = mbz("compress --progress --threads 1 --chunk-size 64K --zstd-level 0 --model order2-v1 f");
  ASSERT_EQ(r.code(), 0) << r;
  ASSERT_NE(r.err.find("\r\033[Kf: "), std::string::npos) << "no progress was drawn";
  // The progress line is cleared before the summary, which is the one complete line.
  const size_t at = r.err.find(summary_prefix("f", data.size()));
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.substr(at - 4, 4), "\r\033[K") << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

// ---- Options that must not change the bytes -----------------------------------------------

TEST_F(CliTest, ThreadsVerifyAndChunkSize) {
  const std::string data = skewed_bytes(6000, 6) + text_bytes(6000, 7);
  put("f", data);
  const Result one = mbz("compress -q --threads 1 --chunk-size 1K --model order2-v1 -o a1.mbz f");
  ASSERT_EQ(one.code(), 0) << one;
  EXPECT_EQ(one.err, "");  // -q
  EXPECT_EQ(one.out, "");

  const Result two = mbz("compress -v --verify --threads 2 --chunk-size 1K --model order2-v1 -o a2.mbz f");
  ASSERT_EQ(two.code(), 0) << two;
  EXPECT_EQ(get("a1.mbz"), get("a2.mbz"));
  // -v: after the summary, one line per method used; together they cover all 12 chunks.
  const std::vector<std::string> lines = lines_of(two.err);
  ASSERT_GE(lines.size(), 2u) << two.err;
  EXPECT_EQ(lines[0].rfind(summary_prefix("f", data.size()), 0), 0u) << two.err;
  const std::regex method_line(
      R"(  (stored|zstd|model|cm|hybrid) +(\d+) chunks, (\d+) => (\d+) bytes)");
  uint64_t chunks = 0, raw = 0;
  std::set<std::string> methods;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].rfind("  coded as ", 0) == 0) continue;  // what io/ made of f
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, method_line)) << lines[i];
    methods.insert(m[1]);
    chunks += std::stoull(m[2]);
    raw += std::stoull(m[3]);
  }
  EXPECT_EQ(chunks, 12u);
  EXPECT_EQ(raw, data.size());
  // The skewed half suits the byte model, alone or mixed with the context mixer.
  EXPECT_TRUE(methods.count("model") || methods.count("hybrid")) << two.err;

  const Result def = mbz("compress -q -o d.mbz f");
  ASSERT_EQ(def.code(), 0) << def;
  const std::string a1 = get("a1.mbz"), d = get("d.mbz");
  ASSERT_GT(std::min(a1.size(), d.size()), 16u);
  EXPECT_EQ(a1[16], 10);  // chunk log in the header (FORMAT.md)
  EXPECT_EQ(d[16], 24);  // the default segment, 16 MiB

  const Result back = mbz("decompress a2.mbz d.mbz");
  ASSERT_EQ(back.code(), 0) << back;
  EXPECT_EQ(get("a2"), data);
  EXPECT_EQ(get("d"), data);
}

TEST_F(CliTest, LevelsLanesAndInfoMethods) {
  const std::string data = text_bytes(16384, 20) + random_bytes(8192, 21);  // 3 segments
  put("f", data);
  std::vector<size_t> sizes;
  for (int level = 0; level <= 3; ++level) {
    const std::string out = "l" + std::to_string(level) + ".mbz";
    const Result c = mbz("compress -q --chunk-size 8K --model order2-v1 --level " +
                         std::to_string(level) + " -o " + out + " f");
    ASSERT_EQ(c.code(), 0) << c;
    sizes.push_back(get(out).size());
    const Result d = mbz("decompress -q -f -o back " + out);
    ASSERT_EQ(d.code(), 0) << d;
    EXPECT_EQ(get("back"), data) << level;
  }
  EXPECT_LT(sizes[2], sizes[0]);  // the context mixer beats zstd on text
  // Level 3's lanes and methods, and --lanes, are recorded and shown.
  const Result info = mbz("info l3.mbz");
  // (24 KiB: too small for level 3's two lanes, so one)
  EXPECT_NE(info.out.find("  lanes           1 (context mixer revision 1"), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("    stored      1 chunks, 8192 => 8192 bytes"), std::string::npos)
      << info.out;
  EXPECT_TRUE(info.out.find("    hybrid ") != std::string::npos ||
              info.out.find("    cm ") != std::string::npos)
      << info.out;
  put("big", text_bytes(70000, 22));  // large enough for two lanes of 32 KiB
  ASSERT_EQ(mbz("compress -q -f --model order2-v1 --level 3 -o big.mbz big").code(), 0);
  EXPECT_NE(mbz("info big.mbz").out.find("  lanes           2 ("), std::string::npos);
  // From a pipe: a small input is known whole after the first read, a large one is not.
  ASSERT_EQ(mbz("compress -q -f --model order2-v1 --level 3 -o pipe.mbz -", data).code(), 0);
  EXPECT_NE(mbz("info pipe.mbz").out.find("  lanes           1 ("), std::string::npos);
  ASSERT_EQ(mbz("compress -q -f --model order2-v1 --level 3 -o pipe.mbz -", get("big")).code(), 0);
  EXPECT_NE(mbz("info pipe.mbz").out.find("  lanes           2 ("), std::string::npos);
  ASSERT_EQ(mbz("compress -q -f --chunk-size 8K --model order2-v1 --lanes 5 -o k5.mbz f").code(), 0);
  const Result json = mbz("info --json k5.mbz");
  EXPECT_NE(json.out.find(R"("lanes":5,"cm":{"revision":1,"context_bits":24,"match_bits":22})"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find(R"("hybrid":{"chunks":)"), std::string::npos) << json.out;
  ASSERT_EQ(mbz("decompress -q -f -o back k5.mbz").code(), 0);
  EXPECT_EQ(get("back"), data);
  // Help names every level; out-of-range values are usage errors.
  const Result help = mbz("compress --help");
  for (int level = 0; level <= 3; ++level)
    EXPECT_NE(help.out.find(" " + std::to_string(level) + ": "), std::string::npos) << help.out;
  EXPECT_EQ(mbz("compress -q --level 4 f").code(), 6);
  EXPECT_EQ(mbz("compress -q --lanes 0 f").code(), 6);
  EXPECT_EQ(mbz("compress -q --lanes 4097 f").code(), 6);
}

TEST_F(CliTest, UsageErrors) {
  put("t", "x");
  const Result chunk = mbz("compress --chunk-size 3000 t");
  EXPECT_EQ(chunk.code(), 6) << chunk;
  EXPECT_NE(chunk.err.find("--chunk-size must be a power of two"), std::string::npos) << chunk.err;
  EXPECT_NE(chunk.err.find("'3000'"), std::string::npos) << chunk.err;

  // A number that wraps around to 1024 when read as unsigned.
  const Result wrapped = mbz("compress --chunk-size=-18446744073709550592 t");
  EXPECT_EQ(wrapped.code(), 6) << wrapped;
  EXPECT_NE(wrapped.err.find("--chunk-size must be a power of two"), std::string::npos)
      << wrapped.err;

  const Result unknown = mbz("compress --frobnicate t");
  EXPECT_EQ(unknown.code(), 6) << unknown;
  EXPECT_NE(unknown.err.find("--frobnicate"), std::string::npos) << unknown.err;
  EXPECT_EQ(names(), (std::set<std::string>{"t"}));
}

TEST_F(CliTest, DirectoryInputIsAnIoError) {
  fs::create_directory(at("dir"));
  const Result dir = mbz("compress dir");
  EXPECT_EQ(dir.code(), 1) << dir;
  EXPECT_EQ(dir.err, "mbz: i/o error: dir: is a directory\n");
  EXPECT_EQ(dir.out, "");
  EXPECT_EQ(names(), (std::set<std::string>{"dir"}));
  EXPECT_TRUE(fs::is_empty(at("dir")));
}

TEST_F(CliTest, SeveralInputsGoOnAfterAMissingOne) {
  put("a", text_bytes(1000, 8));
  put("b", "bee");
  const Result c = mbz("compress a missing b");
  EXPECT_EQ(c.code(), 1) << c;
  const std::vector<std::string> lines = lines_of(c.err);
  ASSERT_EQ(lines.size(), 3u) << c.err;
  EXPECT_EQ(lines[0].rfind(summary_prefix("a", 1000), 0), 0u) << c.err;
  EXPECT_EQ(lines[1], "mbz: i/o error: missing: cannot open: No such file or directory");
  EXPECT_EQ(lines[2].rfind(summary_prefix("b", 3), 0), 0u) << c.err;
  EXPECT_EQ(names(), (std::set<std::string>{"a", "a.mbz", "b", "b.mbz"}));

  fs::remove(at("a"));
  fs::remove(at("b"));
  const Result d = mbz("decompress a.mbz missing.mbz b.mbz");
  EXPECT_EQ(d.code(), 1) << d;
  EXPECT_NE(d.err.find("missing.mbz: cannot open"), std::string::npos) << d.err;
  EXPECT_EQ(get("a"), text_bytes(1000, 8));
  EXPECT_EQ(get("b"), "bee");
}

// ---- info and score -----------------------------------------------------------------------

TEST_F(CliTest, InfoDescribesArchives) {
  const std::string data = text_bytes(2500, 9);
  put("f.mbz", make_archive(data, 10));
  const Result piped = mbz("compress -q", data);
  ASSERT_EQ(piped.code(), 0) << piped;
  put("p.mbz", piped.out);

  const Result text = mbz("info f.mbz p.mbz");
  ASSERT_EQ(text.code(), 0) << text;
  EXPECT_EQ(text.err, "");
  const std::string& t = text.out;
  EXPECT_EQ(t.rfind("f.mbz\n", 0), 0u) << t;
  EXPECT_NE(t.find("  format version  4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  lanes           1 (context mixer revision 1, tables 2^24 and 2^22)\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("  original size   2500\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  chunk size      1024\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  chunks          3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  model           order2-v1 (id "), std::string::npos) << t;
  EXPECT_NE(t.find("\np.mbz\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  original size   not recorded (input from a pipe"), std::string::npos) << t;
  EXPECT_NE(t.find("  chunk size      16777216\n"), std::string::npos) << t;  // the default
  EXPECT_NE(t.find(std::string("  model           ") + kDefaultModelName + " (id "), std::string::npos) << t;

  const Result json = mbz("info --json f.mbz p.mbz");
  ASSERT_EQ(json.code(), 0) << json;
  const std::string& j = json.out;
  EXPECT_EQ(j.front(), '[');
  EXPECT_EQ(j.substr(j.size() - 2), "]\n");
  EXPECT_EQ(std::count(j.begin(), j.end(), '{'), std::count(j.begin(), j.end(), '}'));
  EXPECT_NE(j.find(R"({"file":"f.mbz","format_version":4,"original_size":2500,)"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(R"({"file":"p.mbz","format_version":4,"original_size":null,)"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(std::string(R"("model":{"name":")") + kModelName + "\""), std::string::npos);
  // f.mbz's three chunks: 1024, 1024 and 452 bytes, the first right after the header.
  const std::regex chunks(
      R"re("chunks":\[\{"offset":55,"method":"\w+","raw_size":1024,"payload_size":\d+\},)re"
      R"re(\{"offset":\d+,"method":"\w+","raw_size":1024,"payload_size":\d+\},)re"
      R"re(\{"offset":\d+,"method":"\w+","raw_size":452,"payload_size":\d+\}\])re");
  EXPECT_TRUE(std::regex_search(j, chunks)) << j;
}

TEST_F(CliTest, ScoreReportsFilesAndWalksDirectories) {
  put("same", std::string(4096, 'z'));
  fs::create_directories(at("dir/sub"));
  put("dir/sub/random", random_bytes(4096, 10));
  put("dir/text", text_bytes(1000, 11));

  const Result r = mbz("score --threads 1 same dir");
  ASSERT_EQ(r.code(), 0) << r;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = lines_of(r.out);
  // heading, three files, a total for each of the two modalities, the grand total
  ASSERT_EQ(lines.size(), 7u) << r.out;
  // bytes, modality, the model's bits per byte, zstd -19's, the file
  const std::regex row(R"( *(\d+) (\w*) +(\d+\.\d+) +(\d+\.\d+)  (.+))");
  std::vector<std::string> files, modalities;
  std::vector<double> bpb, zstd;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, row)) << lines[i];
    modalities.push_back(m[2]);
    files.push_back(m[5]);
    bpb.push_back(std::stod(m[3]));
    zstd.push_back(std::stod(m[4]));
  }
  EXPECT_EQ(files, (std::vector<std::string>{"same", "dir/sub/random", "dir/text",
                                             "total raw (1 files)", "total text (2 files)",
                                             std::string("total (model ") + kDefaultModelName + ")"}));
  EXPECT_EQ(modalities, (std::vector<std::string>{"text", "raw", "text", "raw", "text", ""}));
  EXPECT_LT(bpb[0], 0.5);  // one repeated byte
  EXPECT_GT(bpb[1], 7.5);  // random bytes
  EXPECT_GT(bpb[2], bpb[0]);
  EXPECT_LT(bpb[2], bpb[1]);
  EXPECT_NE(lines[6].find(std::to_string(4096 + 4096 + 1000)), std::string::npos) << lines[6];
  // zstd -19 of each file on its own, with its frame header and checksum
  EXPECT_LT(zstd[0], 0.1);
  EXPECT_GT(zstd[1], 8.0);  // random bytes grow
  EXPECT_DOUBLE_EQ(zstd[1], zstd[3]);  // the raw total is that one file
  EXPECT_GT(zstd[2], bpb[0]);

  const Result j = mbz("score --json dir");
  ASSERT_EQ(j.code(), 0) << j;
  EXPECT_NE(
      j.out.find(R"({"file":"dir/sub/random","modality":"raw","bytes":4096,"bits_per_byte":)"),
      std::string::npos)
      << j.out;
  EXPECT_NE(j.out.find(R"({"file":"dir/text","modality":"text","bytes":1000,"bits_per_byte":)"),
            std::string::npos)
      << j.out;
  EXPECT_NE(j.out.find(R"("total":{"files":2,"bytes":5096,"bits_per_byte":)"), std::string::npos)
      << j.out;
  EXPECT_NE(j.out.find(R"("zstd19_bytes":)"), std::string::npos) << j.out;

  const Result n = mbz("score --json --no-zstd dir");
  ASSERT_EQ(n.code(), 0) << n;
  EXPECT_EQ(n.out.find("zstd19"), std::string::npos) << n.out;
  EXPECT_NE(
      n.out.find(R"({"file":"dir/sub/random","modality":"raw","bytes":4096,"bits_per_byte":)"),
      std::string::npos)
      << n.out;
}

// ---- Damaged archives ---------------------------------------------------------------------

TEST_F(CliTest, TruncatedArchiveIsCorruptAndLeavesNoOutput) {
  const std::string archive = make_archive(text_bytes(2500, 12), 10);
  const size_t header = 55, payload0 = le32(archive, header + 5), n = archive.size();
  ASSERT_EQ(archive.substr(0, 4), "\x89MBZ");
  ASSERT_GT(payload0, 8u);
  // name, cut, what the message must name
  const std::vector<std::tuple<std::string, size_t, std::string>> cuts = {
      {"in-header", 10, "bytes of header at offset 5, found 5"},
      {"in-chunk-header", header + 5, "bytes of chunk header at offset 56, found 4"},
      {"in-payload", header + 13 + payload0 / 2,
       "bytes of chunk payload at offset " + std::to_string(header + 13) + ", found " +
           std::to_string(payload0 / 2)},
      {"before-end-marker", n - 25,
       "byte of chunk header or end marker at offset " + std::to_string(n - 25) + ", found 0"},
      {"in-trailer", n - 10, "bytes of trailer at offset " + std::to_string(n - 24) + ", found 14"},
  };
  std::string args = "decompress";
  std::set<std::string> inputs;
  for (const auto& [name, cut, what] : cuts) {
    put(name + ".mbz", archive.substr(0, cut));
    args += " " + name + ".mbz";
    inputs.insert(name + ".mbz");
  }
  const Result d = mbz(args);
  EXPECT_EQ(d.code(), 3) << d;
  const std::vector<std::string> lines = lines_of(d.err);
  ASSERT_EQ(lines.size(), cuts.size()) << d.err;
  for (size_t i = 0; i < cuts.size(); ++i) {
    const auto& [name, cut, what] = cuts[i];
    EXPECT_EQ(lines[i].rfind("mbz: corrupt archive: " + name + ".mbz: archive is truncated", 0), 0u)
        << lines[i];
    EXPECT_NE(lines[i].find(what), std::string::npos) << lines[i];
  }
  EXPECT_EQ(names(), inputs);  // neither outputs nor temporary files

  put("in-magic.mbz", archive.substr(0, 2));
  const Result magic = mbz("decompress in-magic.mbz");
  EXPECT_EQ(magic.code(), 2) << magic;
  EXPECT_NE(magic.err.find("not an mbz archive"), std::string::npos) << magic.err;
  inputs.insert("in-magic.mbz");
  EXPECT_EQ(names(), inputs);
}

TEST_F(CliTest, FlippedPayloadBitNamesTheChunk) {
  const std::string data = skewed_bytes(3000, 13);
  std::string archive = make_archive(data, 10);
  archive[55 + 13 + 3] ^= 0x10;  // inside chunk 0's payload
  put("flipped.mbz", archive);
  const Result d = mbz("decompress flipped.mbz");
  EXPECT_EQ(d.code(), 3) << d;
  EXPECT_NE(d.err.find("chunk 0 (offset 55)"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("flipped.mbz"), std::string::npos) << d.err;
  EXPECT_EQ(d.out, "");
  EXPECT_EQ(names(), (std::set<std::string>{"flipped.mbz"}));
}

TEST_F(CliTest, NotAnArchiveAndNewerVersionAreFormatErrors) {
  std::string archive = make_archive("hello", 10);
  archive[4] = 9;
  put("v9.mbz", archive);
  put("text.mbz", "just some text\n");
  const Result d = mbz("decompress text.mbz v9.mbz");
  EXPECT_EQ(d.code(), 2) << d;
  const std::vector<std::string> lines = lines_of(d.err);
  ASSERT_EQ(lines.size(), 2u) << d.err;
  EXPECT_EQ(lines[0].rfind("mbz: format error: text.mbz: not an mbz archive", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("found 6a 75 73 74"), std::string::npos) << lines[0];  // "just"
  EXPECT_EQ(lines[1].rfind("mbz: format error: v9.mbz: unsupported format version 9", 0), 0u)
      << lines[1];
  EXPECT_EQ(names(), (std::set<std::string>{"text.mbz", "v9.mbz"}));
}

// ---- Signals and sizes --------------------------------------------------------------------

TEST_F(CliTest, SigintRemovesPartialOutput) {
  // Random bytes take the model a few seconds per MiB on one thread: far longer than the wait.
  put("big", random_bytes(20 << 20, 14));
  const int dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
  const int err = open_capture("stderr");
  pid_t pid = start("compress --threads 1 big", dev_null, dev_null, err);
  ASSERT_GT(pid, 0);
  struct Reaper {  // a failed assertion must not leave mbz running for half a minute
    pid_t& pid;
    ~Reaper() {
      if (pid > 0) kill(pid, SIGKILL), waitpid(pid, nullptr, 0);
    }
  } reaper{pid};
  // Wait for the temporary output: then main() runs and the handler is installed.
  bool seen = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!seen && std::chrono::steady_clock::now() < deadline &&
         waitpid(pid, &status, WNOHANG) == 0) {
    for (const std::string& name : names()) seen |= name.starts_with("big.mbz.mbz-tmp");
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(seen) << "no temporary output appeared";
  std::this_thread::sleep_for(milliseconds(300));
  kill(pid, SIGINT);
  status = finish(pid);
  pid = -1;
  close(dev_null);
  close(err);
  ASSERT_TRUE(WIFSIGNALED(status))
      << "exit status " << WEXITSTATUS(status) << ": " << read_file(root_ / "stderr");
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  EXPECT_EQ(names(), (std::set<std::string>{"big"}));
}

TEST_F(CliTest, TwentyMebibytesThroughPipes) {
  // Mixed random and text megabytes, so that chunks are both stored and coded. Level 0
  // (zstd alone): the byte model and the context mixer at about a second per MiB would
  // make this the slowest test by far, and their paths are covered above; this one is
  // about streaming at size.
  std::string data;
  for (uint32_t i = 0; data.size() < (20u << 20); ++i)
    data += i % 2 ? text_bytes(1 << 20, i) : random_bytes(1 << 20, i);
  const Result c = mbz("compress --threads 2 --level 0 --zstd-level 1", data);
  ASSERT_EQ(c.code(), 0) << c;
  EXPECT_EQ(c.err.rfind(summary_prefix("stdin", data.size()), 0), 0u) << c.err;
  EXPECT_LT(c.out.size(), data.size());
  const Result d = mbz("decompress --threads 2 -", c.out);
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(d.err, "");
  EXPECT_TRUE(d.out == data) << "restored " << d.out.size() << " bytes differ";
  EXPECT_TRUE(names().empty());
}

TEST_F(CliTest, EdgeContentsRoundTrip) {
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  put("empty", "");
  put("one", "\x7f");
  put("all", all);
  const Result c = mbz("compress -q empty one all");
  ASSERT_EQ(c.code(), 0) << c;
  for (const char* name : {"empty", "one", "all"})
    fs::rename(at(name), at(std::string(name) + ".orig"));
  const Result d = mbz("decompress empty.mbz one.mbz all.mbz");
  ASSERT_EQ(d.code(), 0) << d;
  EXPECT_EQ(get("empty"), "");
  EXPECT_TRUE(fs::exists(at("empty")));
  EXPECT_EQ(get("one"), "\x7f");
  EXPECT_EQ(get("all"), all);
  // 46 header bytes and the model's name, no chunk, end marker and trailer (FORMAT.md).
  const size_t empty_size = 46 + std::strlen(kDefaultModelName) + 1 + 24;
  EXPECT_EQ(get("empty.mbz").size(), empty_size);

  const Result piped = mbz("compress -");
  ASSERT_EQ(piped.code(), 0) << piped;
  EXPECT_EQ(piped.out.size(), empty_size);
  EXPECT_EQ(piped.err.rfind(summary_prefix("stdin", 0), 0), 0u) << piped.err;
  const Result back = mbz("decompress -", piped.out);
  ASSERT_EQ(back.code(), 0) << back;
  EXPECT_EQ(back.out, "");
  EXPECT_EQ(back.err, "");
}

}  // namespace

namespace {

using namespace mbz::cli_test;
namespace fs = std::filesystem;

// Outputs that are not plain files: a device is written through and never replaced (and
// --rm then keeps the input, since nothing was kept), a symbolic link keeps pointing at
// the file it names, and several archives are never run together on stdout.
TEST_F(CliTest, DevicesLinksAndSeveralInputsToStdout) {
  const std::string data = text_bytes(3000, 21);
  put("t", data);
  const Result null = mbz("compress -q --rm -o /dev/null t");
  ASSERT_EQ(null.code(), 0) << null;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_EQ(get("t"), data);

  put("real.mbz", "old");
  fs::create_symlink("real.mbz", at("link.mbz"));
  const Result link = mbz("compress -q -f -o link.mbz t");
  ASSERT_EQ(link.code(), 0) << link;
  EXPECT_TRUE(fs::is_symlink(at("link.mbz")));
  EXPECT_EQ(get("real.mbz").substr(0, 4), "\x89MBZ");

  put("u", data);
  const Result two = mbz("compress -c t u");
  EXPECT_EQ(two.code(), 6) << two;
  EXPECT_EQ(two.out, "");
  EXPECT_NE(two.err.find("give one input"), std::string::npos) << two.err;
}

}  // namespace
