// Byte sources and sinks the container reads and writes: files, standard streams and
// memory. Nothing seeks, so pipes work on both sides.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace mbz {

class Reader {
 public:
  virtual ~Reader() = default;
  // Reads up to out.size() bytes; returns fewer only at the end of the input.
  virtual size_t read(std::span<uint8_t> out) = 0;
  // Bytes handed out so far: the offset that error messages cite.
  uint64_t offset() const { return offset_; }

 protected:
  uint64_t offset_ = 0;
};

class Writer {
 public:
  virtual ~Writer() = default;
  virtual void write(std::span<const uint8_t> bytes) = 0;
  virtual void flush() {}
};

// Over a FILE* it does not own (stdin/stdout) or owns (opened by path).
class FileReader final : public Reader {
 public:
  explicit FileReader(std::FILE* file, std::string name);
  size_t read(std::span<uint8_t> out) override;

 private:
  std::FILE* file_;
  std::string name_;
};

class FileWriter final : public Writer {
 public:
  explicit FileWriter(std::FILE* file, std::string name);
  void write(std::span<const uint8_t> bytes) override;
  void flush() override;

 private:
  std::FILE* file_;
  std::string name_;
};

class MemoryReader final : public Reader {
 public:
  explicit MemoryReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  size_t read(std::span<uint8_t> out) override;

 private:
  std::span<const uint8_t> bytes_;
};

class MemoryWriter final : public Writer {
 public:
  void write(std::span<const uint8_t> bytes) override {
    data.insert(data.end(), bytes.begin(), bytes.end());
  }
  std::vector<uint8_t> data;
};

// Reads exactly out.size() bytes or throws kCorruptTruncated naming `what` and the offset.
void read_exact(Reader& in, std::span<uint8_t> out, const char* what);

}  // namespace mbz
