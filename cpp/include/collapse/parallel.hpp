// Threads for the core: one way to count them, one way to start them, and exceptions
// that cross back.
//
// Why: an exception escaping a std::thread calls std::terminate, which would kill the
// Python process (e.g. std::bad_alloc in a worker). run_threads catches what each thread
// throws and rethrows the first (by thread index) in the caller once all have joined, so
// pybind11 turns it into a Python exception. A thread that cannot be started is an
// exception too (after the started ones have joined), never a std::terminate.
//
// Thread counts come from users (--threads, threads=): resolve_threads is the one place
// that checks and caps them, so no caller sizes per-thread buffers from an unchecked
// number (100000 threads once meant 100000 per-thread histograms and an OOM kill).
#pragma once

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace collapse {

// Requests above this are refused; the Python validator (collapse.validate) uses the same.
constexpr int kMaxThreads = 1024;
// Requests above this many threads per hardware thread are cut to it: more cannot help.
constexpr int kThreadsPerCore = 4;

inline int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(std::min<unsigned>(hw, kMaxThreads)) : 1;
}

// threads == 0: every hardware thread; 1..kMaxThreads: as given, at most kThreadsPerCore
// per hardware thread; anything else: std::invalid_argument (ValueError in Python).
inline int resolve_threads(int threads) {
  if (threads < 0 || threads > kMaxThreads)
    throw std::invalid_argument("threads must be between 0 (all cores) and " + std::to_string(kMaxThreads) +
                                ", got " + std::to_string(threads));
  const int hw = hardware_threads();
  if (threads == 0) return hw;
  return std::min(threads, kThreadsPerCore * hw);
}

// Runs fn(t) for t in [0, threads); the calling thread runs t = 0. threads comes from
// resolve_threads (or is derived from it), so it is at most kMaxThreads.
template <class Fn>
void run_threads(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  if (threads > kMaxThreads) throw std::invalid_argument("run_threads: thread count above the limit");
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  std::string start_error;
  for (int t = 1; t < threads; ++t) {
    try {
      pool.emplace_back([&fn, &errors, t] {
        try {
          fn(t);
        } catch (...) {
          errors[static_cast<std::size_t>(t)] = std::current_exception();
        }
      });
    } catch (const std::exception& e) {  // std::system_error (EAGAIN) or std::bad_alloc
      start_error = "could not start thread " + std::to_string(t + 1) + " of " + std::to_string(threads) + " (" +
                    e.what() + "); use fewer threads";
      break;
    }
  }
  // Every part runs or none is trusted: after a failed start the started threads still
  // finish (their parts need no other thread), then the failure is reported.
  if (start_error.empty()) {
    try {
      fn(0);
    } catch (...) {
      errors[0] = std::current_exception();
    }
  }
  for (auto& th : pool) th.join();
  if (!start_error.empty()) throw std::invalid_argument(start_error);
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace collapse
