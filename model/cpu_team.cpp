#include "model/cpu_team.h"

#include <chrono>
#include <system_error>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mbz::model {

namespace {

inline void pause() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// How long an idle helper spins before it sleeps: longer than the gaps inside a step (the
// range coder's work between bytes), far shorter than the time a step takes to notice.
constexpr auto kSpin = std::chrono::microseconds(200);

}  // namespace

CpuTeam::CpuTeam(unsigned threads, int64_t min_work) : min_work_(min_work) {
  errors_.resize(std::max(1u, threads));
  for (unsigned p = 1; p < threads; ++p) {
    try {
      helpers_.emplace_back(&CpuTeam::helper, this);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the team is those started
    }
  }
  errors_.resize(size());
}

CpuTeam::~CpuTeam() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

void CpuTeam::part(unsigned p) {
  const int64_t parts = size();
  try {
    call_(fn_, p, n_ * p / parts, n_ * (p + 1) / parts);
  } catch (...) {
    errors_[p] = std::current_exception();
  }
}

// Parts go to whoever claims them first, the caller included: on a busy machine, where a
// helper may not run for a while, the caller takes its parts instead of waiting for it.
void CpuTeam::work() {
  for (unsigned p; (p = next_.fetch_add(1, std::memory_order_acq_rel)) < size();) {
    part(p);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void CpuTeam::dispatch(int64_t n) {
  n_ = n;
  done_.store(0, std::memory_order_relaxed);
  next_.store(0, std::memory_order_release);  // publishes call_, fn_, n_: parts open
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  work();
  // Only parts a helper is running are left: a short wait, unless it was preempted.
  for (int i = 0; done_.load(std::memory_order_acquire) != size(); ++i) {
    if (i < 4096)
      pause();
    else
      std::this_thread::yield();
  }
  // The first part's error in part order; the others go with it (a later run starts clean).
  std::exception_ptr first;
  for (std::exception_ptr& e : errors_)
    if (e && !first) first = std::exchange(e, nullptr);
    else e = nullptr;
  if (first) std::rethrow_exception(first);
}

void CpuTeam::helper() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    if (now == seen) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int i = 1; (now = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        pause();
        if (i % 64 == 0 && std::chrono::steady_clock::now() > until) {
          generation_.wait(seen, std::memory_order_acquire);
          i = 0;
        }
      }
    }
    seen = now;
    if (stop_.load(std::memory_order_relaxed)) return;
    work();
  }
}

}  // namespace mbz::model
