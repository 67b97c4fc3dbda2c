#include "model/collective.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "codec/error.h"

namespace mbz::model {

// The region: this header, then `world` slots of `floats` values, then the result vector.
// Atomics on lock-free 64-bit integers work across processes that map the same memory.
struct Collective::Header {
  std::atomic<uint64_t> arrived;  // barrier arrivals, all ranks, all barriers so far
  std::atomic<uint32_t> failed;   // a rank gave up
  std::atomic<uint32_t> flag;     // agree(): rank 0's value
  uint64_t floats, world;         // written by rank 0; checked by the others
  double scalars[64];             // one per rank (sum's scalar); world <= 64
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

namespace {

constexpr int kMaxWorld = 64;
using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorCode::kUsageBadArgument, "train (data parallel): " + what);
}

size_t align_up(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

Collective::Collective(std::string name, int rank, int world, size_t floats,
                       std::function<bool()> alive, double open_seconds)
    : name_(std::move(name)), rank_(rank), world_(world), floats_(floats), alive_(std::move(alive)) {
  if (world < 1 || world > kMaxWorld || rank < 0 || rank >= world)
    fail("rank " + std::to_string(rank) + " of " + std::to_string(world) + " ranks");
  bytes_ = align_up(sizeof(Header)) + align_up(floats * sizeof(float)) * (world + 1);
  int fd = -1;
  if (rank == 0) {
    shm_unlink(name_.c_str());  // a stale region of a crashed run of the same name
    fd = shm_open(name_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, off_t(bytes_)) != 0)
      fail("cannot create shared memory " + name_ + ": " + std::strerror(errno));
  } else {
    const auto deadline = Clock::now() + std::chrono::duration<double>(open_seconds);
    for (;;) {  // rank 0 creates it once it knows the model's size
      fd = shm_open(name_.c_str(), O_RDWR, 0600);
      struct stat st{};
      if (fd >= 0 && fstat(fd, &st) == 0 && size_t(st.st_size) == bytes_) break;
      if (fd >= 0) close(fd);
      if (Clock::now() > deadline || (alive_ && !alive_()))
        fail("rank " + std::to_string(rank) + " found no shared memory " + name_ + " of " +
             std::to_string(bytes_) + " bytes");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (memory_ == MAP_FAILED) {
    memory_ = nullptr;
    fail("cannot map shared memory " + name_ + ": " + std::strerror(errno));
  }
  header_ = static_cast<Header*>(memory_);
  if (rank == 0) {  // ftruncate zeroed the memory: arrived = failed = 0
    header_->floats = floats;
    header_->world = uint64_t(world);
  }
  // Every rank has mapped the region (rank 0's fields are written) once this passes; the
  // size check above already ties `floats` and `world` together.
  barrier();
  if (header_->floats != floats || header_->world != uint64_t(world))
    fail("ranks disagree on the model's size");
}

Collective::~Collective() {
  if (std::uncaught_exceptions() > 0 && header_) abort();
  if (memory_) munmap(memory_, bytes_);
  if (rank_ == 0) shm_unlink(name_.c_str());
}

float* Collective::slot(int rank) const {
  return reinterpret_cast<float*>(static_cast<char*>(memory_) + align_up(sizeof(Header)) +
                                  align_up(floats_ * sizeof(float)) * size_t(rank));
}
float* Collective::result() const { return slot(world_); }

void Collective::abort() { header_->failed.store(1); }

void Collective::barrier() {
  header_->arrived.fetch_add(1);
  const uint64_t target = uint64_t(world_) * ++barriers_;
  auto next_check = Clock::now() + std::chrono::seconds(1);
  for (int spins = 0; header_->arrived.load() < target; ++spins) {
    if (header_->failed.load()) fail("another rank failed");
    if (spins < 1000) continue;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    if (Clock::now() > next_check) {
      if (alive_ && !alive_()) {
        abort();
        fail("a rank's process ended");
      }
      next_check = Clock::now() + std::chrono::seconds(1);
    }
  }
}

const float* Collective::sum(double* scalar) {
  header_->scalars[rank_] = *scalar;
  barrier();
  // Read the scalars now: after the next barrier a faster rank may write its next ones.
  double total = 0;
  for (int r = 0; r < world_; ++r) total += header_->scalars[r];
  // This rank's slice of the result: every rank's values added in rank order.
  const size_t begin = floats_ * size_t(rank_) / size_t(world_);
  const size_t end = floats_ * size_t(rank_ + 1) / size_t(world_);
  float* out = result();
  std::memcpy(out + begin, slot(0) + begin, (end - begin) * sizeof(float));
  for (int r = 1; r < world_; ++r) {
    const float* in = slot(r);
    for (size_t i = begin; i < end; ++i) out[i] += in[i];
  }
  barrier();
  *scalar = total;
  return out;
}

bool Collective::agree(bool value) {
  if (rank_ == 0) header_->flag.store(value ? 1 : 0);
  barrier();
  return header_->flag.load() != 0;
}

}  // namespace mbz::model
