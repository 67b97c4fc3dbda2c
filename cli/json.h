// A small JSON writer for --json output: commas and escaping handled, nothing parsed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mbz::cli {

class Json {
 public:
  Json& begin_object() { return open('{'); }
  Json& end_object() { return close('}'); }
  Json& begin_array() { return open('['); }
  Json& end_array() { return close(']'); }
  Json& key(const std::string& name);
  Json& value(const std::string& s);
  Json& value(const char* s) { return value(std::string(s)); }
  Json& value(uint64_t n);
  Json& value(double x);  // 6 significant digits; NaN and infinities become null
  Json& null();
  template <class T>
  Json& field(const std::string& name, const T& v) {
    return key(name).value(v);
  }
  Json& null_field(const std::string& name) { return key(name).null(); }
  // Inserts an already serialized value (another Json's str()).
  Json& raw(const std::string& serialized);
  const std::string& str() const { return out_; }

 private:
  Json& open(char c);
  Json& close(char c);
  void separate();

  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace mbz::cli
