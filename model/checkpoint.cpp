// The checkpoint format of model/CHECKPOINT.md: writing, splitting into parts, and a
// reader that checks every bound before it trusts a number.
#include "model/checkpoint.h"

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "codec/checksum.h"
#include "codec/endian.h"
#include "codec/error.h"

namespace mbz::model {

namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "checkpoint tensors are copied as little-endian memory");

constexpr uint64_t kAlign = 64;  // tensor data offsets: aligned for mmap-style use later
constexpr int kMaxDims = 8;

// dtype codes of the tensor table; values never change meaning.
enum class Dtype : uint8_t { kFloat32 = 0, kBFloat16 = 1, kInt64 = 2, kInt8 = 3, kInt32 = 4 };

Dtype dtype_code(const std::string& name, torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return Dtype::kFloat32;
    case torch::kBFloat16:
      return Dtype::kBFloat16;
    case torch::kLong:
      return Dtype::kInt64;
    case torch::kChar:
      return Dtype::kInt8;
    case torch::kInt:
      return Dtype::kInt32;
    default:
      throw Error(ErrorCode::kUnsupportedFeature,
                  "checkpoint: tensor " + name + " has a dtype the format does not store");
  }
}

std::string shape_text(torch::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string part_name(const std::string& path, size_t k) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, ".%03zu", k);
  return path + suffix;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(ErrorCode::kIoWrite, tmp + ": cannot create checkpoint file");
  const bool ok = std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    throw Error(ErrorCode::kIoWrite, tmp + ": cannot write checkpoint file");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorCode::kIoWrite, path + ": cannot rename into place: " + ec.message());
}

// Room for a model file's bytes: on Linux anonymous memory that asks for transparent huge
// pages, elsewhere (or where mmap fails) new[]. In 4 KiB pages every page's first touch is a
// fault: reading a 13 MB model and checking its sum took ~60 ms so on a 2-core VM, against
// ~5 ms in 2 MiB pages (measured).
std::shared_ptr<uint8_t[]> file_buffer(uint64_t size) {
#ifdef __linux__
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  if (size >= kHuge) {
    const uint64_t length = (size + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align
    void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base != MAP_FAILED) {
      auto* start = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) &
                                               ~(kHuge - 1));
      madvise(start, length - kHuge, MADV_HUGEPAGE);  // advice only: 4 KiB pages if refused
      return std::shared_ptr<uint8_t[]>(start, [base, length](uint8_t*) { munmap(base, length); });
    }
  }
#endif
  return std::shared_ptr<uint8_t[]>(new uint8_t[std::max<uint64_t>(size, 1)]);
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kIoOpen, path + ": cannot open checkpoint (" + ec.message() + ")");
  return size;
}

// Reads the whole of `path`, which must have `size` bytes, into `out`.
void read_file(const std::string& path, uint8_t* out, uint64_t size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(ErrorCode::kIoOpen, path + ": cannot open checkpoint");
  const size_t n = size ? std::fread(out, 1, size, f) : 0;
  const bool failed = std::ferror(f) || n != size || std::fgetc(f) != EOF;
  std::fclose(f);
  if (failed)
    throw Error(ErrorCode::kIoRead, path + ": cannot read checkpoint (" + std::to_string(size) +
                                        " bytes expected; did it change while read?)");
}

// Reads fields front to back, refusing to run past the end.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> data, uint64_t end, const std::string& path)
      : data_(data), end_(end), path_(path) {}
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > end_ - pos_)
      throw Error(ErrorCode::kCorruptTruncated, path_ + ": checkpoint " + what + " at offset " +
                                                    std::to_string(pos_) + " needs " +
                                                    std::to_string(n) + " bytes, " +
                                                    std::to_string(end_ - pos_) + " left");
    const uint8_t* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t u(int bytes, const char* what) { return load_le(take(bytes, what), bytes); }
  std::string str(uint64_t n, const char* what) {
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  uint64_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> data_;
  uint64_t end_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

}  // namespace

std::vector<std::string> write_checkpoint(const std::string& path, const Checkpoint& checkpoint,
                                          uint64_t part_bytes) {
  // Header and tensor table.
  std::vector<uint8_t> out(kCheckpointMagic, kCheckpointMagic + 4);
  store_le(out, kCheckpointVersion, 4);
  const size_t total_at = out.size();
  store_le(out, 0, 8);  // total size, filled in below
  store_le(out, static_cast<uint64_t>(checkpoint.step), 8);
  for (const std::string* s : {&checkpoint.config_json, &checkpoint.train_json}) {
    store_le(out, s->size(), 4);
    out.insert(out.end(), s->begin(), s->end());
  }
  store_le(out, checkpoint.tensors.size(), 4);
  std::vector<torch::Tensor> cpu;
  uint64_t offset = 0;
  for (const NamedTensor& t : checkpoint.tensors) {
    if (t.name.empty() || t.name.size() > 0xffff || t.tensor.dim() > kMaxDims)
      throw Error(ErrorCode::kUsageBadArgument, "checkpoint: bad tensor name or rank: " + t.name);
    const Dtype dtype = dtype_code(t.name, t.tensor.scalar_type());
    cpu.push_back(t.tensor.detach().to(torch::kCPU).contiguous());
    store_le(out, t.name.size(), 2);
    out.insert(out.end(), t.name.begin(), t.name.end());
    out.push_back(static_cast<uint8_t>(dtype));
    out.push_back(static_cast<uint8_t>(t.tensor.dim()));
    for (int64_t d : t.tensor.sizes()) store_le(out, static_cast<uint64_t>(d), 8);
    const uint64_t nbytes = cpu.back().numel() * cpu.back().element_size();
    store_le(out, offset, 8);
    store_le(out, nbytes, 8);
    offset += (nbytes + kAlign - 1) / kAlign * kAlign;
  }
  out.resize((out.size() + kAlign - 1) / kAlign * kAlign, 0);
  // Tensor data, then the checksum.
  const size_t data_at = out.size();
  out.resize(data_at + offset, 0);
  uint64_t at = data_at;
  for (const torch::Tensor& t : cpu) {
    const uint64_t nbytes = t.numel() * t.element_size();
    if (nbytes) std::memcpy(out.data() + at, t.data_ptr(), nbytes);
    at += (nbytes + kAlign - 1) / kAlign * kAlign;
  }
  const uint64_t total = out.size() + 8;
  for (int i = 0; i < 8; ++i) out[total_at + i] = static_cast<uint8_t>(total >> (8 * i));
  store_le(out, xxh64(out), 8);

  // One file, or numbered parts; remove what a previous checkpoint of the other form left.
  std::vector<std::string> written;
  std::error_code ec;
  if (out.size() <= part_bytes) {
    write_file(path, out.data(), out.size());
    written.push_back(path);
    for (size_t k = 0; fs::remove(part_name(path, k), ec); ++k) {
    }
  } else {
    size_t k = 0;
    for (uint64_t pos = 0; pos < out.size(); pos += part_bytes, ++k) {
      write_file(part_name(path, k), out.data() + pos,
                 std::min<uint64_t>(part_bytes, out.size() - pos));
      written.push_back(part_name(path, k));
    }
    for (; fs::remove(part_name(path, k), ec); ++k) {
    }
    fs::remove(path, ec);
  }
  return written;
}

namespace {

// parse_checkpoint; where `owner` holds `data`, the tensors are views into it, which keep it
// alive, rather than copies.
Checkpoint parse(std::shared_ptr<uint8_t[]> owner, std::span<const uint8_t> data,
                 const std::string& path) {
  if (data.size() < 16 || std::memcmp(data.data(), kCheckpointMagic, 4) != 0)
    throw Error(ErrorCode::kFormatMagic, path + ": not an mbz model file (expected magic MBZM)");
  Cursor header(data, data.size(), path);
  header.take(4, "magic");
  const uint64_t version = header.u(4, "version");
  if (version != kCheckpointVersion)
    throw Error(ErrorCode::kFormatVersion, path + ": model file version " +
                                               std::to_string(version) + ", this mbz reads " +
                                               std::to_string(kCheckpointVersion));
  const uint64_t total = header.u(8, "total size");
  if (total != data.size())
    throw Error(ErrorCode::kCorruptTruncated,
                path + ": model file should have " + std::to_string(total) + " bytes, found " +
                    std::to_string(data.size()) + " (a part missing or truncated?)");
  const uint64_t stored = le64(data.data() + data.size() - 8);
  const uint64_t actual = xxh64({data.data(), data.size() - 8});
  if (stored != actual)
    throw Error(ErrorCode::kCorruptChunk, path + ": model file checksum mismatch");

  Cursor c(data, data.size() - 8, path);
  c.take(16, "header");
  Checkpoint checkpoint;
  checkpoint.step = static_cast<int64_t>(c.u(8, "step"));
  checkpoint.config_json = c.str(c.u(4, "config length"), "config");
  checkpoint.train_json = c.str(c.u(4, "train state length"), "train state");
  const uint64_t count = c.u(4, "tensor count");
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    uint64_t offset, nbytes;
  };
  std::vector<Entry> entries;
  for (uint64_t i = 0; i < count; ++i) {
    Entry e;
    e.name = c.str(c.u(2, "tensor name length"), "tensor name");
    const uint64_t dtype = c.u(1, "dtype");
    if (dtype > 4)
      throw Error(ErrorCode::kFormatField,
                  path + ": tensor " + e.name + ": unknown dtype " + std::to_string(dtype));
    e.dtype = static_cast<Dtype>(dtype);
    const uint64_t ndim = c.u(1, "rank");
    if (ndim > kMaxDims)
      throw Error(ErrorCode::kFormatField, path + ": tensor " + e.name + ": rank " +
                                               std::to_string(ndim) + " above " +
                                               std::to_string(kMaxDims));
    uint64_t elements = 1;
    for (uint64_t d = 0; d < ndim; ++d) {
      const uint64_t dim = c.u(8, "dimension");
      if (dim > (uint64_t{1} << 40) || (dim && elements > (uint64_t{1} << 40) / dim))
        throw Error(ErrorCode::kFormatField, path + ": tensor " + e.name + ": shape too large");
      elements *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    e.offset = c.u(8, "tensor offset");
    e.nbytes = c.u(8, "tensor size");
    const uint64_t expected = elements * (e.dtype == Dtype::kBFloat16 ? 2
                                          : e.dtype == Dtype::kInt64  ? 8
                                          : e.dtype == Dtype::kInt8   ? 1
                                                                      : 4);
    if (e.nbytes != expected)
      throw Error(ErrorCode::kCorruptChunk,
                  path + ": tensor " + e.name + " of shape " + shape_text(e.shape) + ": expected " +
                      std::to_string(expected) + " bytes, table says " + std::to_string(e.nbytes));
    entries.push_back(std::move(e));
  }
  const uint64_t data_at = (c.pos() + kAlign - 1) / kAlign * kAlign;
  const uint64_t data_size = data.size() - 8 - std::min<uint64_t>(data_at, data.size() - 8);
  for (const Entry& e : entries) {
    if (e.offset > data_size || e.nbytes > data_size - e.offset)
      throw Error(ErrorCode::kCorruptTruncated,
                  path + ": tensor " + e.name + " at data offset " + std::to_string(e.offset) +
                      " (" + std::to_string(e.nbytes) + " bytes) runs past the data (" +
                      std::to_string(data_size) + " bytes)");
    const torch::ScalarType type = e.dtype == Dtype::kFloat32    ? torch::kFloat
                                   : e.dtype == Dtype::kBFloat16 ? torch::kBFloat16
                                   : e.dtype == Dtype::kInt8     ? torch::kChar
                                   : e.dtype == Dtype::kInt32    ? torch::kInt
                                                                 : torch::kLong;
    const uint8_t* at = data.data() + data_at + e.offset;
    torch::Tensor t;
    if (owner && e.nbytes) {
      // The buffer's start is aligned for any element type (file_buffer: 2 MiB, or operator
      // new's) and every tensor's offset is a multiple of kAlign.
      t = torch::from_blob(
          const_cast<uint8_t*>(at), e.shape, [owner](void*) {}, torch::dtype(type));
    } else {
      t = torch::empty(e.shape, torch::dtype(type));
      if (e.nbytes) std::memcpy(t.data_ptr(), at, e.nbytes);
    }
    checkpoint.tensors.push_back({e.name, t});
  }
  return checkpoint;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& named) {
  std::error_code ec;
  // The first part names the whole checkpoint too: NAME.000 reads NAME.000, NAME.001, ...
  const bool first_part = named.size() > 4 && named.ends_with(".000");
  const std::string path = first_part ? named.substr(0, named.size() - 4) : named;
  std::vector<std::string> files;
  if (fs::exists(path, ec) || !fs::exists(part_name(path, 0), ec)) {
    files.push_back(path);
  } else {
    for (size_t k = 0; fs::exists(part_name(path, k), ec); ++k) files.push_back(part_name(path, k));
  }
  // The bytes go straight into one buffer of the whole size, uninitialized until read
  // (growing a vector block by block copied a model file's bytes several times over), and
  // the tensors parsed from it share it rather than copying it once more.
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  for (const std::string& file : files) total += sizes.emplace_back(file_size(file));
  const std::shared_ptr<uint8_t[]> bytes = file_buffer(total);
  uint64_t at = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    read_file(files[k], bytes.get() + at, sizes[k]);
    at += sizes[k];
  }
  return parse(bytes, {bytes.get(), total}, path);
}

Checkpoint parse_checkpoint(std::span<const uint8_t> data, const std::string& path) {
  return parse(nullptr, data, path);
}

std::vector<NamedTensor> model_tensors(Megabyte& model) {
  std::vector<NamedTensor> tensors;
  for (const auto& item : model->named_parameters()) tensors.push_back({item.key(), item.value()});
  return tensors;
}

void load_model_tensors(Megabyte& model, const std::vector<NamedTensor>& tensors) {
  std::map<std::string, const torch::Tensor*> by_name;
  for (const NamedTensor& t : tensors)
    if (t.name.rfind("optim.", 0) != 0) by_name[t.name] = &t.tensor;
  torch::NoGradGuard no_grad;
  size_t used = 0;
  for (auto& item : model->named_parameters()) {
    const auto found = by_name.find(item.key());
    if (found == by_name.end())
      throw Error(ErrorCode::kModelMismatch,
                  "model file lacks tensor " + item.key() + " " + shape_text(item.value().sizes()));
    const torch::Tensor& t = *found->second;
    if (t.sizes() != item.value().sizes())
      throw Error(ErrorCode::kModelMismatch, "tensor " + item.key() + ": expected shape " +
                                                 shape_text(item.value().sizes()) + ", file has " +
                                                 shape_text(t.sizes()));
    item.value().copy_(t);
    ++used;
  }
  if (used != by_name.size())
    for (const auto& [name, t] : by_name)
      if (!model->named_parameters().contains(name))
        throw Error(ErrorCode::kModelMismatch,
                    "model file has tensor " + name + ", which this model does not");
}

Megabyte model_from_checkpoint(const Checkpoint& checkpoint, torch::Device device) {
  Megabyte model(config_from_json(checkpoint.config_json));
  load_model_tensors(model, checkpoint.tensors);
  model->to(device);
  model->eval();
  return model;
}

int64_t trained_window(const Checkpoint& checkpoint) {
  if (checkpoint.train_json.empty()) return 0;
  const auto fields = parse_flat_json(checkpoint.train_json);
  const auto window = fields.find("window");
  if (window == fields.end()) return 0;
  char* end = nullptr;
  const long long value = std::strtoll(window->second.c_str(), &end, 10);
  return *end == '\0' && value > 0 ? value : 0;
}

}  // namespace mbz::model
