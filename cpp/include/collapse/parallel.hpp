// Threads for the core: one way to start them, and exceptions that cross back.
//
// Why: an exception escaping a std::thread calls std::terminate, which would kill the
// Python process (e.g. std::bad_alloc in a worker). run_threads catches what each thread
// throws and rethrows the first (by thread index) in the caller once all have joined, so
// pybind11 turns it into a Python exception.
#pragma once

#include <exception>
#include <thread>
#include <vector>

namespace collapse {

// threads > 0: as given; otherwise every hardware thread (at least 1).
inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

// Runs fn(t) for t in [0, threads); the calling thread runs t = 0.
template <class Fn>
void run_threads(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int t = 1; t < threads; ++t)
    pool.emplace_back([&fn, &errors, t] {
      try {
        fn(t);
      } catch (...) {
        errors[static_cast<std::size_t>(t)] = std::current_exception();
      }
    });
  try {
    fn(0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace collapse
