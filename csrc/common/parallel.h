// transferlab: OpenMP helpers. No exception may escape a parallel region (it would call
// std::terminate and kill the Python process): ParallelFor captures the first exception thrown by
// any iteration, lets the other threads finish, and rethrows it on the calling thread
// (the faiss / hnswlib pattern).
#pragma once

#include <omp.h>

#include <cstdint>
#include <exception>
#include <mutex>

namespace tl {

// Number of threads a kernel uses when the caller passes num_threads <= 0.
inline int resolve_threads(int num_threads) {
  return num_threads > 0 ? num_threads : omp_get_max_threads();
}

// Threads for a call doing about `work` elementary operations: one thread per `grain` of work, at
// most the resolved count. Tiny calls (a one-row streaming update) then run on the calling thread
// instead of paying a parallel region's barrier. Kernels whose bits do not depend on the thread
// count may use it freely.
inline int threads_for_work(int num_threads, double work, double grain = 65536.0) {
  const int cap = resolve_threads(num_threads);
  const double want = work / grain;
  return want >= cap ? cap : (want < 1.0 ? 1 : static_cast<int>(want));
}

class ExceptionCapture {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr first_;
};

// Calls body(i, thread_id) for i in [0, n) with dynamic scheduling in chunks of `chunk`.
// Results must not depend on which thread ran which i (callers keep per-item outputs or
// per-thread partials that they merge in a fixed order).
template <class Body>
void parallel_for(int64_t n, int num_threads, int64_t chunk, Body&& body) {
  ExceptionCapture capture;
  // No more threads than chunks: a thread with no chunk would only join the region's barrier, which
  // costs milliseconds on a loaded machine (tiny calls, e.g. one-row streaming updates). Results
  // do not depend on the thread count, so the cap is free.
  const int64_t chunks = chunk > 0 ? (n + chunk - 1) / chunk : n;
  int threads = resolve_threads(num_threads);
  if (chunks < threads) threads = chunks < 1 ? 1 : static_cast<int>(chunks);
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    capture.run([&] { body(i, omp_get_thread_num()); });
  }
  capture.rethrow();
}

}  // namespace tl
