#include "codec/stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec/error.h"

namespace mbz {

FileReader::FileReader(std::FILE* file, std::string name) : file_(file), name_(std::move(name)) {}

size_t FileReader::read(std::span<uint8_t> out) {
  const size_t n = std::fread(out.data(), 1, out.size(), file_);
  if (n < out.size() && std::ferror(file_))
    throw Error(ErrorCode::kIoRead, name_ + ": read failed: " + std::strerror(errno));
  offset_ += n;
  return n;
}

FileWriter::FileWriter(std::FILE* file, std::string name) : file_(file), name_(std::move(name)) {}

void FileWriter::write(std::span<const uint8_t> bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    throw Error(ErrorCode::kIoWrite, name_ + ": write failed: " + std::strerror(errno));
}

void FileWriter::flush() {
  if (std::fflush(file_) != 0)
    throw Error(ErrorCode::kIoWrite, name_ + ": write failed: " + std::strerror(errno));
}

size_t MemoryReader::read(std::span<uint8_t> out) {
  const size_t n = std::min(out.size(), bytes_.size() - static_cast<size_t>(offset_));
  std::copy_n(bytes_.data() + offset_, n, out.data());
  offset_ += n;
  return n;
}

void read_exact(Reader& in, std::span<uint8_t> out, const char* what) {
  const uint64_t at = in.offset();
  const size_t n = in.read(out);
  if (n != out.size())
    throw Error(ErrorCode::kCorruptTruncated,
                std::string("archive is truncated: expected ") + std::to_string(out.size()) +
                    (out.size() == 1 ? " byte of " : " bytes of ") + what + " at offset " +
                    std::to_string(at) + ", found " + std::to_string(n));
}

}  // namespace mbz
