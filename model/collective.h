// Data-parallel training across processes of one host: the ranks of a run share a region
// of POSIX shared memory and, once per step, sum their gradients in it.
//
// Why processes and not threads: copies of the model driven from threads of one process
// did not scale (measured on an H200 x4 machine: one GPU 1.93 MB/s; four GPUs from four
// threads 2.7 MB/s in all; four processes 1.93 MB/s each), and a process per device is
// what NCCL-less LibTorch builds can always do. No torch in this header.
//
// The sum is the same on every rank and in every run: each rank reduces one slice of the
// vector, adding the ranks' values in rank order, so the result depends only on the
// inputs and the number of ranks, never on timing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace mbz::model {

class Collective {
 public:
  // Rank 0 creates the region `name` (a POSIX shared memory name, "/mbz-..."), sized for
  // `floats` values per rank; the other ranks open it, waiting up to `open_seconds` for
  // rank 0 to create it. `alive` is called about once a second while a rank waits for the
  // others: returning false (a peer process died) makes the wait throw.
  Collective(std::string name, int rank, int world, size_t floats,
             std::function<bool()> alive = nullptr, double open_seconds = 300);
  ~Collective();
  Collective(const Collective&) = delete;
  Collective& operator=(const Collective&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }

  // This rank's floats() values for the next sum(), to be written in place (a device can
  // copy straight into it).
  float* input() const { return slot(rank_); }
  // Every rank's input() summed, added in rank order: floats() values, valid until this
  // rank calls sum() again; `scalar` becomes the sum of the ranks' scalars. Blocks until
  // every rank has called it.
  const float* sum(double* scalar);
  // Rank 0's `value`, on every rank (the others' arguments are ignored).
  bool agree(bool value);
  // Tells the other ranks that this one failed: their waits throw instead of hanging.
  void abort();

  size_t floats() const { return floats_; }

 private:
  struct Header;
  void barrier();
  float* slot(int rank) const;
  float* result() const;

  std::string name_;
  int rank_, world_;
  size_t floats_;
  std::function<bool()> alive_;
  void* memory_ = nullptr;
  size_t bytes_ = 0;
  Header* header_ = nullptr;
  uint64_t barriers_ = 0;  // barriers this rank has passed
};

}  // namespace mbz::model
