#include "codec/cm/zeroed_memory.h"

#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace mbz::cm {
namespace {

constexpr size_t kLine = 64;
constexpr size_t kHugePage = size_t{2} << 20;  // x86-64 and arm64 with 4 KiB base pages

void* align_up(void* p, size_t alignment) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<void*>((address + alignment - 1) & ~uintptr_t{alignment - 1});
}

}  // namespace

ZeroedMemory::ZeroedMemory(size_t bytes, bool huge_pages) {
#if defined(__linux__)
  if (huge_pages && bytes >= 2 * kHugePage) {
    const size_t total = bytes + kHugePage;  // room to start on a huge-page boundary
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = p;
    mapped_ = total;
    data_ = align_up(p, kHugePage);
    madvise(data_, bytes, MADV_HUGEPAGE);  // a hint: without THP it changes nothing
    return;
  }
#endif
  (void)huge_pages;
  base_ = std::calloc(1, bytes + kLine);
  if (base_ == nullptr) throw std::bad_alloc();
  data_ = align_up(base_, kLine);
}

ZeroedMemory::~ZeroedMemory() {
#if defined(__linux__)
  if (mapped_ != 0) {
    munmap(base_, mapped_);
    return;
  }
#endif
  std::free(base_);
}

}  // namespace mbz::cm
