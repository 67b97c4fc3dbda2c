// Config presets, checks and the flat JSON form used by config files and checkpoints.
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "codec/error.h"
#include "model/megabyte.h"

namespace mbz::model {

namespace {

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorCode::kUsageBadArgument, "model config: " + message);
}

}  // namespace

std::map<std::string, std::string> parse_flat_json(const std::string& text) {
  std::map<std::string, std::string> fields;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto expect = [&](char c) {
    skip();
    if (i >= text.size() || text[i] != c)
      bad(std::string("JSON: expected '") + c + "' at offset " + std::to_string(i));
    ++i;
  };
  auto string = [&] {
    expect('"');
    std::string s;
    while (i < text.size() && text[i] != '"') {
      if (text[i] == '\\')
        bad("JSON: escapes are not supported (offset " + std::to_string(i) + ")");
      s += text[i++];
    }
    expect('"');
    return s;
  };
  expect('{');
  skip();
  if (i < text.size() && text[i] == '}') return fields;
  for (;;) {
    const std::string key = string();
    expect(':');
    skip();
    std::string value;
    if (i < text.size() && text[i] == '"') {
      value = string();
    } else {
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                                 text[i] == '-' || text[i] == '+' || text[i] == '.'))
        value += text[i++];
      if (value.empty()) bad("JSON: expected a number or string for '" + key + "'");
    }
    fields[key] = value;
    skip();
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    expect('}');
    skip();
    if (i != text.size()) bad("JSON: trailing text at offset " + std::to_string(i));
    return fields;
  }
}

namespace {

int64_t to_int(const std::string& key, const std::string& value) {
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != value.size()) bad("'" + key + "' must be an integer, got '" + value + "'");
  return v;
}

}  // namespace

void Config::validate() const {
  auto range = [](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      bad(std::string(field) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
          "], got " + std::to_string(v));
  };
  range("patch", patch, 1, 64);
  range("global_width", global_width, 1, 8192);
  range("global_layers", global_layers, 1, 128);
  range("global_heads", global_heads, 1, 128);
  range("local_width", local_width, 1, 8192);
  range("local_layers", local_layers, 1, 128);
  range("local_heads", local_heads, 1, 128);
  range("context", context, 1, 1 << 20);
  range("mlp_ratio", mlp_ratio, 1, 16);
  if (global_width % patch)
    bad("global_width " + std::to_string(global_width) + " is not a multiple of patch " +
        std::to_string(patch));
  if (global_width % global_heads) bad("global_width is not a multiple of global_heads");
  if (local_width % local_heads) bad("local_width is not a multiple of local_heads");
  if (norm != "rmsnorm") bad("norm must be \"rmsnorm\", got \"" + norm + "\"");
  if (activation != "relu2" && activation != "gelu")
    bad("activation must be \"relu2\" or \"gelu\", got \"" + activation + "\"");
}

std::string Config::to_json() const {
  std::ostringstream s;
  s << "{\"name\": \"" << name << "\", \"patch\": " << patch
    << ", \"global_width\": " << global_width << ", \"global_layers\": " << global_layers
    << ", \"global_heads\": " << global_heads << ", \"local_width\": " << local_width
    << ", \"local_layers\": " << local_layers << ", \"local_heads\": " << local_heads
    << ", \"context\": " << context << ", \"mlp_ratio\": " << mlp_ratio << ", \"norm\": \"" << norm
    << "\", \"activation\": \"" << activation << "\"}";
  return s.str();
}

double Config::forward_flops_per_byte(int64_t window) const {
  const double p = double(patch), dg = double(global_width), dl = double(local_width);
  const double k = std::ceil(double(window) / p), r = double(mlp_ratio);
  // One block of width D: qkv and out (4 D^2), MLP (2 r D^2); attention scores and the
  // weighted sum over, on average, half the causal context: 2 * 2 * (n / 2) * D.
  auto block = [&](double d, double n) { return 2 * (4 + 2 * r) * d * d + 2 * n * d; };
  const double global = double(global_layers) * block(dg, k) / p;  // once per patch
  const double local = double(local_layers) * block(dl, p);
  const double glue = 2 * (dg / p) * dl + 2 * dl * double(kByteValues);  // projection, head
  return global + local + glue;
}

Config preset(const std::string& name) {
  Config c;
  c.name = name;
  if (name == "tiny") {  // ~0.1M parameters, 128-byte context: trains in seconds in tests
    c.patch = 4, c.global_width = 64, c.global_layers = 2, c.global_heads = 2;
    c.local_width = 64, c.local_layers = 1, c.local_heads = 2, c.context = 32;
  } else if (name == "small") {  // ~3.6M parameters, 8 KiB context: a 2-core CPU
    c.patch = 8, c.global_width = 256, c.global_layers = 4, c.global_heads = 4;
    c.local_width = 128, c.local_layers = 2, c.local_heads = 4, c.context = 1024;
  } else if (name == "medium") {  // ~11.5M parameters, 8 KiB context: the bundled model's size
    // (int8 under 16 MiB) at about half small's speed on a CPU; the extra width is in the
    // global model, which runs once per patch
    c.patch = 8, c.global_width = 384, c.global_layers = 6, c.global_heads = 6;
    c.local_width = 128, c.local_layers = 2, c.local_heads = 4, c.context = 1024;
  } else if (name == "base") {  // ~30M parameters (~60 MB bf16), 32 KiB context: one GPU
    c.patch = 8, c.global_width = 512, c.global_layers = 8, c.global_heads = 8;
    c.local_width = 256, c.local_layers = 3, c.local_heads = 4, c.context = 4096;
  } else {
    throw Error(
        ErrorCode::kUsageBadArgument,
        "unknown model config '" + name + "' (presets: tiny, small, medium, base, or a .json file)");
  }
  c.validate();
  return c;
}

Config config_from_json(const std::string& json) {
  Config c;
  for (const auto& [key, value] : parse_flat_json(json)) {
    if (key == "name")
      c.name = value;
    else if (key == "patch")
      c.patch = to_int(key, value);
    else if (key == "global_width")
      c.global_width = to_int(key, value);
    else if (key == "global_layers")
      c.global_layers = to_int(key, value);
    else if (key == "global_heads")
      c.global_heads = to_int(key, value);
    else if (key == "local_width")
      c.local_width = to_int(key, value);
    else if (key == "local_layers")
      c.local_layers = to_int(key, value);
    else if (key == "local_heads")
      c.local_heads = to_int(key, value);
    else if (key == "context")
      c.context = to_int(key, value);
    else if (key == "mlp_ratio")
      c.mlp_ratio = to_int(key, value);
    else if (key == "norm")
      c.norm = value;
    else if (key == "activation")
      c.activation = value;
    else
      bad("unknown field '" + key + "'");
  }
  c.validate();
  return c;
}

Config load_config(const std::string& name_or_path) {
  if (name_or_path == "tiny" || name_or_path == "small" || name_or_path == "medium" ||
      name_or_path == "base")
    return preset(name_or_path);
  std::ifstream in(name_or_path, std::ios::binary);
  if (!in)
    throw Error(ErrorCode::kIoOpen,
                name_or_path + ": cannot open model config (presets: tiny, small, medium, base)");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return config_from_json(text.str());
  } catch (const Error& e) {
    throw Error(e.code(), name_or_path + ": " + e.what());
  }
}

}  // namespace mbz::model
