// Private helpers of the counting stages: n-grams packed into fixed-width integer keys
// whose integer order is the lexicographic order of the word ids, and a threaded sort.
//
// Why packed keys: sorting W machine words compares far faster than comparing id arrays,
// and a window of the corpus packs without touching anything but the tokens.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/ngram_count.hpp"

namespace collapse::detail {

// An n-gram as W 64-bit words, most significant first. Words never straddle two
// elements: each element holds `per` ids of `bits` bits, the first id in the top bits.
template <int W>
struct Key {
  std::uint64_t v[W];
  bool operator<(const Key& o) const {
    for (int i = 0; i < W; ++i)
      if (v[i] != o.v[i]) return v[i] < o.v[i];
    return false;
  }
  bool operator==(const Key& o) const {
    for (int i = 0; i < W; ++i)
      if (v[i] != o.v[i]) return false;
    return true;
  }
  bool operator!=(const Key& o) const { return !(*this == o); }
};

struct Packing {
  int bits = 1;  // bits per id
  int per = 64;  // ids per 64-bit element
  std::uint64_t mask = 1;

  explicit Packing(std::size_t vocab_size) {
    bits = 1;
    while (bits < 32 && (std::uint64_t{1} << bits) < vocab_size) ++bits;
    per = 64 / bits;
    mask = (bits == 64) ? ~std::uint64_t{0} : ((std::uint64_t{1} << bits) - 1);
  }
  // Elements needed for an n-gram of order n.
  int width(int n) const { return (n + per - 1) / per; }

  template <int W>
  void set(Key<W>& k, int i, WordId w) const {
    k.v[i / per] |= static_cast<std::uint64_t>(w) << ((per - 1 - i % per) * bits);
  }
  template <int W>
  WordId get(const Key<W>& k, int i) const {
    return static_cast<WordId>((k.v[i / per] >> ((per - 1 - i % per) * bits)) & mask);
  }
  // The key of words 1..n-1 of an n-gram (its suffix, one word shorter).
  template <int W>
  Key<W> drop_first(const Key<W>& k, int n) const {
    Key<W> out{};
    for (int i = 1; i < n; ++i) set(out, i - 1, get(k, i));
    return out;
  }
};

inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

// Runs fn(t) for t in [0, threads) on threads (the calling thread runs t = 0).
template <class Fn>
void run_threads(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& th : pool) th.join();
}

// Sorts v with `threads` threads: chunks sorted in parallel, then merged pairwise.
template <class T, class Less>
void parallel_sort(std::vector<T>& v, int threads, Less less) {
  const std::size_t n = v.size();
  if (threads <= 1 || n < (1u << 16)) {
    std::sort(v.begin(), v.end(), less);
    return;
  }
  std::vector<std::size_t> bounds;
  for (int t = 0; t <= threads; ++t) bounds.push_back(n * static_cast<std::size_t>(t) / threads);
  run_threads(threads, [&](int t) { std::sort(v.begin() + bounds[t], v.begin() + bounds[t + 1], less); });
  std::vector<T> buf(n);
  std::vector<T>* src = &v;
  std::vector<T>* dst = &buf;
  while (bounds.size() > 2) {
    std::vector<std::size_t> next;
    const std::size_t runs = bounds.size() - 1;
    const std::size_t pairs = runs / 2;
    run_threads(static_cast<int>(std::min<std::size_t>(pairs + (runs % 2), threads)), [&](int t) {
      for (std::size_t p = t; p < pairs + (runs % 2); p += std::min<std::size_t>(pairs + (runs % 2), threads)) {
        const std::size_t a = bounds[2 * p];
        if (2 * p + 2 < bounds.size()) {
          std::merge(src->begin() + a, src->begin() + bounds[2 * p + 1], src->begin() + bounds[2 * p + 1],
                     src->begin() + bounds[2 * p + 2], dst->begin() + a, less);
        } else {
          std::copy(src->begin() + a, src->begin() + bounds[2 * p + 1], dst->begin() + a);
        }
      }
    });
    for (std::size_t i = 0; i < bounds.size(); i += 2) next.push_back(bounds[i]);
    if (next.back() != n) next.push_back(n);
    bounds.swap(next);
    std::swap(src, dst);
  }
  if (src != &v) v.swap(buf);
}

// One order while counting: distinct keys in sorted order and their counts.
template <int W>
struct KeyedOrder {
  std::vector<Key<W>> keys;
  std::vector<std::uint32_t> raw;
  std::vector<std::uint32_t> adjusted;
  std::vector<std::uint32_t> suffix;  // row of the suffix in the order below
};

// The padded document <s> w1 .. wk </s> read at position p (0 <= p < k + 2).
inline WordId padded_word(const WordId* doc, std::size_t k, std::size_t p) {
  if (p == 0) return kBos;
  if (p == k + 1) return kEos;
  return doc[p - 1];
}

}  // namespace collapse::detail
