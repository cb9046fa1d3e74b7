// Private helpers of the counting stages: n-grams packed into fixed-width integer keys
// whose integer order is the lexicographic order of the word ids, and a threaded sort.
//
// Why packed keys: sorting W machine words compares far faster than comparing id arrays,
// and a window of the corpus packs without touching anything but the tokens.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/ngram_count.hpp"

#include "collapse/parallel.hpp"

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
  // Element and shift of word i (precomputed: no division in the inner loops).
  static constexpr int kMaxWords = 64;
  std::uint8_t elem[kMaxWords];
  std::uint8_t shift[kMaxWords];

  explicit Packing(std::size_t vocab_size) {
    bits = 1;
    while (bits < 32 && (std::uint64_t{1} << bits) < vocab_size) ++bits;
    per = 64 / bits;
    mask = (std::uint64_t{1} << bits) - 1;
    for (int i = 0; i < kMaxWords; ++i) {
      elem[i] = static_cast<std::uint8_t>(i / per);
      shift[i] = static_cast<std::uint8_t>((per - 1 - i % per) * bits);
    }
  }
  // Shift that brings the 16 most significant used bits of element 0 down (bucket sorts).
  int top16_shift() const { return per * bits > 16 ? per * bits - 16 : 0; }
  // Elements needed for an n-gram of order n.
  int width(int n) const { return (n + per - 1) / per; }

  template <int W>
  void set(Key<W>& k, int i, WordId w) const {
    k.v[elem[i]] |= static_cast<std::uint64_t>(w) << shift[i];
  }
  template <int W>
  WordId get(const Key<W>& k, int i) const {
    return static_cast<WordId>((k.v[elem[i]] >> shift[i]) & mask);
  }
  // The key of words 1..n-1 of an n-gram (its suffix, one word shorter): every word moves
  // up one slot; the first word of each element moves to the last slot of the one before.
  template <int W>
  Key<W> drop_first(const Key<W>& k, int /*n*/) const {
    const std::uint64_t used = per * bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << (per * bits)) - 1;
    const int top_shift = (per - 1) * bits;
    Key<W> out{};
    for (int e = 0; e < W; ++e) {
      out.v[e] = (k.v[e] << bits) & used;
      if (e + 1 < W) out.v[e] |= (k.v[e + 1] >> top_shift) & mask;
    }
    return out;
  }
};

using collapse::resolve_threads;
using collapse::run_threads;

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

// Turns per-thread bucket counts hist[t][b] into exclusive scatter offsets (in place: bucket
// by bucket, thread by thread), so each thread scatters without locking; returns the start
// of each of the B buckets, plus the total at [B].
inline std::vector<std::size_t> scatter_offsets(std::vector<std::vector<std::size_t>>& hist, std::size_t B) {
  std::vector<std::size_t> bucket_start(B + 1, 0);
  std::size_t pos = 0;
  for (std::size_t b = 0; b < B; ++b) {
    bucket_start[b] = pos;
    for (auto& h : hist) {
      const std::size_t c = h[b];
      h[b] = pos;
      pos += c;
    }
  }
  bucket_start[B] = pos;
  return bucket_start;
}

// Sorts v by an MSD split on the top 16 bits of the key (one counting pass, one scatter
// into a buffer), then std::sort within each bucket; buckets are small and cache-resident,
// and threads take them dynamically. top16(x) must be monotone in the order `less`.
template <class T, class Top16, class Less>
void bucket_sort(std::vector<T>& v, int threads, Top16 top16, Less less) {
  const std::size_t n = v.size();
  if (n < (1u << 15)) {
    std::sort(v.begin(), v.end(), less);
    return;
  }
  constexpr std::size_t B = 1u << 16;
  threads = std::max(1, threads);
  std::vector<std::vector<std::size_t>> hist(threads, std::vector<std::size_t>(B, 0));
  auto lo = [&](int t) { return n * static_cast<std::size_t>(t) / threads; };
  run_threads(threads, [&](int t) {
    auto& h = hist[t];
    for (std::size_t i = lo(t); i < lo(t + 1); ++i) ++h[top16(v[i])];
  });
  const std::vector<std::size_t> bucket_start = scatter_offsets(hist, B);
  std::vector<T> buf(n);
  run_threads(threads, [&](int t) {
    auto& h = hist[t];
    for (std::size_t i = lo(t); i < lo(t + 1); ++i) buf[h[top16(v[i])]++] = v[i];
  });
  std::atomic<std::size_t> next{0};
  run_threads(threads, [&](int) {
    for (;;) {
      const std::size_t b0 = next.fetch_add(256);
      if (b0 >= B) break;
      for (std::size_t b = b0; b < std::min(B, b0 + 256); ++b)
        if (bucket_start[b + 1] - bucket_start[b] > 1)
          std::sort(buf.begin() + bucket_start[b], buf.begin() + bucket_start[b + 1], less);
    }
  });
  v.swap(buf);
}

// Sorts [lo, hi), whose keys already share the bits above `shift + 16` of element 0: a
// large range is first split by the next 16 bits (counting sort through `scratch`), then
// the pieces are sorted; small ranges go straight to std::sort. Frequent first words
// make some top-level buckets large, and this keeps their sorts cache-sized.
template <int W>
void sort_large_bucket(Key<W>* lo, Key<W>* hi, int shift, std::vector<Key<W>>& scratch) {
  const std::size_t n = static_cast<std::size_t>(hi - lo);
  if (n <= 4096 || shift < 16) {
    std::sort(lo, hi);
    return;
  }
  const int s = shift - 16;
  std::vector<std::uint32_t> count(1u << 16, 0);
  for (Key<W>* p = lo; p < hi; ++p) ++count[(p->v[0] >> s) & 0xFFFF];
  std::vector<std::uint32_t> start(count.size() + 1, 0);
  for (std::size_t i = 0; i < count.size(); ++i) start[i + 1] = start[i] + count[i];
  scratch.resize(n);
  std::vector<std::uint32_t> pos(start.begin(), start.end() - 1);
  for (Key<W>* p = lo; p < hi; ++p) scratch[pos[(p->v[0] >> s) & 0xFFFF]++] = *p;
  std::copy(scratch.begin(), scratch.begin() + n, lo);
  for (std::size_t i = 0; i < count.size(); ++i)
    if (count[i] > 1) std::sort(lo + start[i], lo + start[i + 1]);
}

// One order while counting: distinct keys in sorted order and their counts.
template <int W>
struct KeyedOrder {
  std::vector<Key<W>> keys;
  CountColumn raw;
  CountColumn adjusted;
  std::vector<std::uint32_t> suffix;  // row of the suffix in the order below
};

// The distinct beginnings (first n padded words) of the documents and how many documents
// begin so: the n-grams of order n < N that start with <s>.
template <int W>
struct PrefixTable {
  std::vector<Key<W>> keys;
  CountColumn count;
};

// Keys -> rows of n ids; the keys are freed (the conversion holds both only for one order).
template <int W>
CountedOrder to_counted_order(KeyedOrder<W>& src, int n, const Packing& pk) {
  CountedOrder dst;
  dst.n = n;
  const std::size_t N = static_cast<std::size_t>(n);
  dst.words.resize(src.keys.size() * N);
  for (std::size_t r = 0; r < src.keys.size(); ++r)
    for (std::size_t i = 0; i < N; ++i) dst.words[r * N + i] = pk.get(src.keys[r], static_cast<int>(i));
  std::vector<Key<W>>().swap(src.keys);
  dst.raw = std::move(src.raw);
  dst.adjusted = std::move(src.adjusted);
  dst.suffix = std::move(src.suffix);
  return dst;
}

// Largest row number a 32-bit row reference can hold (see ngram_count.hpp, "Widths").
constexpr std::size_t kMaxRows32 = 0xFFFFFFFEu;

// The padded document <s> w1 .. wk </s> read at position p (0 <= p < k + 2).
inline WordId padded_word(const WordId* doc, std::size_t k, std::size_t p) {
  if (p == 0) return kBos;
  if (p == k + 1) return kEos;
  return doc[p - 1];
}

// The same through a corpus's id map (CorpusView::id_map; the boundaries are not mapped).
inline WordId padded_word(const CorpusView& corpus, const WordId* doc, std::size_t k, std::size_t p) {
  if (p == 0) return kBos;
  if (p == k + 1) return kEos;
  return corpus.id(doc[p - 1]);
}

}  // namespace collapse::detail
