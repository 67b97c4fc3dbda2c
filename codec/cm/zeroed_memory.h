// Large zero-filled tables for the context mixer. A fresh counter is the word 0, so a
// table starts as zeroed memory; taking it from the system as such (calloc, mmap) rather
// than clearing it means a table larger than its input costs only the pages the input
// reaches. On Linux, a table of several megabytes that its input fills densely at random
// (the hashed contexts' table) can ask for transparent huge pages: with 4 KiB pages
// nearly every lookup also missed the TLB, and a 300 KB text took 40 % more CPU time with
// a 64 MiB table. A sparsely used table should not: each huge page it touches is zeroed
// whole.
#pragma once

#include <cstddef>

namespace mbz::cm {

class ZeroedMemory {
 public:
  // `bytes` zero bytes aligned to 64 (a cache line), in huge pages if asked for and
  // worthwhile. Throws std::bad_alloc.
  ZeroedMemory(size_t bytes, bool huge_pages);
  ~ZeroedMemory();
  ZeroedMemory(const ZeroedMemory&) = delete;
  ZeroedMemory& operator=(const ZeroedMemory&) = delete;

  void* data() const { return data_; }

 private:
  void* base_ = nullptr;  // what was allocated
  size_t mapped_ = 0;     // its size if it was mapped, 0 if it came from calloc
  void* data_ = nullptr;  // base_ aligned
};

}  // namespace mbz::cm
