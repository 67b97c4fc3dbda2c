// Threads that share the loops of one decoding step with the caller. A step of one stream
// is a few dozen matrix-vector products of some ten to a thousand microseconds each, too
// short for codec/parallel.h's threads per call: a team's helpers stay up between loops,
// spinning a little while for the next one (handing a loop out then costs well under a
// microsecond), then sleeping until one comes. Which thread takes which part never changes
// a result: every part is computed by the same code from the same inputs.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <type_traits>
#include <vector>

namespace mbz::model {

class CpuTeam {
 public:
  // `threads` in all, the caller's among them (1: no helpers, run() calls fn directly).
  // Loops of fewer than `min_work` multiply-adds are not worth sharing out (a few
  // microseconds at the default); users ask worth_sharing() first.
  explicit CpuTeam(unsigned threads, int64_t min_work = int64_t{1} << 17);
  ~CpuTeam();
  CpuTeam(const CpuTeam&) = delete;
  CpuTeam& operator=(const CpuTeam&) = delete;

  unsigned size() const { return unsigned(helpers_.size()) + 1; }
  bool worth_sharing(int64_t work) const { return !helpers_.empty() && work >= min_work_; }

  // fn(part, begin, end) for the size() contiguous parts of [0, n), each on whichever
  // thread claims it first, the caller's among them; returns when all are done, rethrowing
  // a part's exception.
  template <class Fn>
  void run(int64_t n, Fn&& fn) {
    if (helpers_.empty() || n < 2) {
      fn(0u, int64_t{0}, n);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    call_ = [](void* f, unsigned part, int64_t b, int64_t e) { (*static_cast<F*>(f))(part, b, e); };
    fn_ = &fn;
    dispatch(n);
  }

 private:
  void dispatch(int64_t n);
  void helper();
  void work();
  void part(unsigned part);

  void (*call_)(void*, unsigned, int64_t, int64_t) = nullptr;
  void* fn_ = nullptr;
  int64_t n_ = 0, min_work_;
  std::vector<std::exception_ptr> errors_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<unsigned> next_{~0u};  // the next part to claim; all claimed from size() on
  std::atomic<unsigned> done_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> helpers_;
};

}  // namespace mbz::model
