#include "cli/json.h"

#include <cmath>
#include <cstdio>

namespace mbz::cli {

void Json::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}

Json& Json::open(char c) {
  separate();
  out_ += c;
  first_.push_back(true);
  return *this;
}

Json& Json::close(char c) {
  out_ += c;
  first_.pop_back();
  return *this;
}

Json& Json::key(const std::string& name) {
  value(name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

Json& Json::value(const std::string& s) {
  separate();
  out_ += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\r':
        out_ += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out_ += buf;
        } else {
          out_ += static_cast<char>(c);
        }
    }
  }
  out_ += '"';
  return *this;
}

Json& Json::value(uint64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}

Json& Json::value(double x) {
  if (!std::isfinite(x)) return null();
  separate();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  out_ += buf;
  return *this;
}

Json& Json::null() {
  separate();
  out_ += "null";
  return *this;
}

Json& Json::raw(const std::string& serialized) {
  separate();
  out_ += serialized;
  return *this;
}

}  // namespace mbz::cli
