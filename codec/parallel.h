// The one threading primitive mbz needs: independent work items spread over a few
// threads, each thread owning per-thread state (a model instance) by its slot number.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace mbz {

// Runs job(slot, item) for items 0..n-1 on min(threads, n) threads, the caller's among
// them; slot < threads names the thread. After all are done, rethrows the exception of the
// lowest-numbered item that threw, so errors come out in input order whatever the timing.
template <class Job>
void parallel_for(unsigned threads, size_t n, Job job) {
  threads = static_cast<unsigned>(std::min<size_t>(std::max(1u, threads), n));
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto run = [&](unsigned slot) {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        job(slot, i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned slot = 1; slot < threads; ++slot) {
    try {
      pool.emplace_back(run, slot);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: those started and this one share the work
    }
  }
  run(0);
  for (auto& thread : pool) thread.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace mbz
