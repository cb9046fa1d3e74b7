// Distinct n-grams by sorting packed keys. Why sorting and not a hash set: the keys of a
// corpus fit in one flat array, and an LSD radix sort over only the bytes the keys use
// is several times faster than hashing 10^7 keys.
//
// Why one sort for every order: when max_n ids (plus a padding id) fit in 64 bits, the key
// of position i holds the max_n ids from i, padded past the document's end. Sorted, the
// keys sharing an n-id prefix are adjacent, so one sort counts the distinct n-grams of
// every order at once (a prefix that holds padding is not an n-gram). The sort is split
// by the first id's top bits into buckets that threads sort and count independently
// (keys in different buckets differ in their first id).
#include "collapse/metrics.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "collapse/parallel.hpp"

namespace collapse {
namespace {

int bits_for(std::uint64_t max_value) {
  int b = 1;
  while (b < 64 && (std::uint64_t(1) << b) <= max_value) ++b;
  return b;
}

constexpr int kDigit = 11;  // a 2048-entry histogram stays in L1 cache
constexpr std::size_t kDigitBuckets = std::size_t(1) << kDigit;
constexpr std::size_t kSmallBucket = 512;  // below this a comparison sort beats radix passes

// LSD radix sort of keys[0, n) on their low `key_bits` bits, tmp (same size) as scratch;
// the result ends in keys.
void radix_sort(std::uint64_t* keys, std::uint64_t* tmp, std::size_t n, int key_bits) {
  if (n < kSmallBucket) {
    std::sort(keys, keys + n);
    return;
  }
  std::vector<std::size_t> count(kDigitBuckets + 1);
  std::uint64_t* src = keys;
  std::uint64_t* dst = tmp;
  for (int shift = 0; shift < key_bits; shift += kDigit) {
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t i = 0; i < n; ++i) ++count[((src[i] >> shift) & (kDigitBuckets - 1)) + 1];
    for (std::size_t i = 0; i < kDigitBuckets; ++i) count[i + 1] += count[i];
    for (std::size_t i = 0; i < n; ++i) dst[count[(src[i] >> shift) & (kDigitBuckets - 1)]++] = src[i];
    std::swap(src, dst);
  }
  if (src != keys) std::copy(src, src + n, keys);
}

template <class Key>
std::uint64_t count_distinct_sorted(const std::vector<Key>& keys) {
  if (keys.empty()) return 0;
  std::uint64_t d = 1;
  for (std::size_t i = 1; i < keys.size(); ++i) d += keys[i] != keys[i - 1];
  return d;
}

using Wide = std::pair<std::uint64_t, std::uint64_t>;

// Key of the n-gram starting at p: ids packed `bits` apart (narrow when n * bits <= 64).
inline std::uint64_t narrow_key(const std::uint32_t* p, int n, int bits) {
  std::uint64_t k = 0;
  for (int j = 0; j < n; ++j) k = (k << bits) | p[j];
  return k;
}

inline Wide wide_key(const std::uint32_t* p, int n) {
  std::uint64_t hi = 0, lo = 0;
  for (int j = 0; j < n; ++j) {
    if (j < n - 2) hi = (hi << 32) | p[j];  // ids before the last two (at most 2 for n <= 4)
    else lo = (lo << 32) | p[j];
  }
  return {hi, lo};
}

// Documents [0, num_docs) cut into `parts` ranges of about equal token counts.
std::vector<std::size_t> split_documents(const std::int64_t* offsets, std::size_t num_docs, int parts) {
  std::vector<std::size_t> cut(static_cast<std::size_t>(parts) + 1, num_docs);
  cut[0] = 0;
  const std::int64_t total = offsets[num_docs];
  std::size_t d = 0;
  for (int p = 1; p < parts; ++p) {
    const std::int64_t goal = total / parts * p;
    while (d < num_docs && offsets[d] < goal) ++d;
    cut[static_cast<std::size_t>(p)] = d;
  }
  return cut;
}

// Distinct n-grams of every order 1..max_n with one sort (max_n * bits <= 64, bits for ids
// up to the padding id max_id + 1).
void distinct_by_prefix(const std::uint32_t* tokens, const std::int64_t* offsets, std::size_t num_docs, int max_n,
                        int bits, std::uint64_t pad, int threads, NGramDiversity& out) {
  const std::size_t num_keys = static_cast<std::size_t>(offsets[num_docs]);
  const int key_bits = max_n * bits;
  const int top_bits = std::min(bits, kDigit);  // bucket = the first id's top bits
  const int top_shift = key_bits - top_bits;
  const std::size_t num_buckets = std::size_t(1) << top_bits;
  const std::vector<std::size_t> docs = split_documents(offsets, num_docs, threads);

  std::vector<std::uint64_t> keys(num_keys), sorted(num_keys);
  // Keys in document order and each thread's bucket histogram.
  std::vector<std::vector<std::size_t>> hist(static_cast<std::size_t>(threads), std::vector<std::size_t>(num_buckets));
  run_threads(threads, [&](int t) {
    auto& h = hist[static_cast<std::size_t>(t)];
    for (std::size_t d = docs[t]; d < docs[t + 1]; ++d) {
      const std::int64_t end = offsets[d + 1];
      for (std::int64_t i = offsets[d]; i < end; ++i) {
        std::uint64_t k = 0;
        for (int j = 0; j < max_n; ++j) k = (k << bits) | (i + j < end ? tokens[i + j] : pad);
        keys[static_cast<std::size_t>(i)] = k;
        ++h[k >> top_shift];
      }
    }
  });
  // Bucket b of thread t starts at start[b] + (counts of b in threads before t).
  std::vector<std::size_t> start(num_buckets + 1, 0);
  for (std::size_t b = 0; b < num_buckets; ++b) {
    std::size_t at = start[b];
    for (auto& h : hist) {
      const std::size_t c = h[b];
      h[b] = at;
      at += c;
    }
    start[b + 1] = at;
  }
  run_threads(threads, [&](int t) {
    auto& h = hist[static_cast<std::size_t>(t)];
    const std::size_t lo = static_cast<std::size_t>(offsets[docs[t]]);
    const std::size_t hi = static_cast<std::size_t>(offsets[docs[t + 1]]);
    for (std::size_t i = lo; i < hi; ++i) sorted[h[keys[i] >> top_shift]++] = keys[i];
  });

  // Buckets taken largest first by whichever thread is free; each sorts its bucket (the
  // same range of `keys` as scratch) and counts, per order, the keys whose valid n-prefix
  // differs from the previous key's.
  std::vector<std::size_t> order(num_buckets);
  for (std::size_t b = 0; b < num_buckets; ++b) order[b] = b;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return start[a + 1] - start[a] > start[b + 1] - start[b];
  });
  std::atomic<std::size_t> next{0};
  std::vector<std::vector<std::uint64_t>> distinct(static_cast<std::size_t>(threads),
                                                   std::vector<std::uint64_t>(static_cast<std::size_t>(max_n)));
  run_threads(threads, [&](int t) {
    // Counted in locals and stored once: the threads' result vectors can share a cache line.
    std::uint64_t dist[4] = {0, 0, 0, 0};
    const std::uint64_t id_mask = (std::uint64_t(1) << bits) - 1;
    for (std::size_t i = next++; i < num_buckets; i = next++) {
      const std::size_t b = order[i];
      const std::size_t n = start[b + 1] - start[b];
      if (n == 0) break;  // the rest are empty too
      std::uint64_t* s = sorted.data() + start[b];
      radix_sort(s, keys.data() + start[b], n, top_shift);
      for (std::size_t k = 0; k < n; ++k) {
        const std::uint64_t diff = k ? s[k] ^ s[k - 1] : ~std::uint64_t(0);
        for (int m = 1; m <= max_n; ++m) {
          const int shift = (max_n - m) * bits;
          if (((s[k] >> shift) & id_mask) == pad) break;  // this and longer prefixes hold padding
          dist[m - 1] += (diff >> shift) != 0;
        }
      }
    }
    std::copy(dist, dist + max_n, distinct[static_cast<std::size_t>(t)].begin());
  });
  for (int m = 0; m < max_n; ++m) {
    std::uint64_t d = 0;
    for (auto& dist : distinct) d += dist[static_cast<std::size_t>(m)];
    out.distinct.push_back(d);
  }
}

// The per-order sorts, for ids too wide for one key of max_n ids.
void distinct_per_order(const std::uint32_t* tokens, const std::int64_t* offsets,
                        std::size_t num_docs, int max_n, int bits, NGramDiversity& out) {
  std::vector<std::uint64_t> keys, tmp;
  for (int n = 1; n <= max_n; ++n) {
    const std::size_t positions = out.total[static_cast<std::size_t>(n - 1)];
    if (n * bits <= 64) {
      keys.clear();
      keys.reserve(positions);
      for (std::size_t d = 0; d < num_docs; ++d)
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) keys.push_back(narrow_key(tokens + i, n, bits));
      tmp.resize(keys.size());
      radix_sort(keys.data(), tmp.data(), keys.size(), n * bits);
      out.distinct.push_back(count_distinct_sorted(keys));
    } else {
      std::vector<Wide> wide;
      wide.reserve(positions);
      for (std::size_t d = 0; d < num_docs; ++d)
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) wide.push_back(wide_key(tokens + i, n));
      std::sort(wide.begin(), wide.end());
      out.distinct.push_back(count_distinct_sorted(wide));
    }
  }
}

constexpr std::int64_t kSetMaxKeys = 1 << 16;  // longer documents are sorted instead

// Repeats of narrow keys within one document: an open-addressing set sized for the
// document and stamped per document (so it is never cleared); about 4x faster than
// sorting each document's keys.
class DocumentKeySet {
 public:
  // Prepares for a document of `size` keys.
  void start(std::size_t size) {
    std::size_t cap = 16;
    while (cap < 2 * size) cap <<= 1;
    if (cap > slots_.size()) {
      slots_.assign(cap, Slot{0, 0});
      stamp_ = 0;
    }
    mask_ = cap - 1;
    ++stamp_;
  }
  // True when key was already inserted for this document.
  bool insert(std::uint64_t key) {
    std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
    while (slots_[i].stamp == stamp_) {
      if (slots_[i].key == key) return true;
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{key, stamp_};
    return false;
  }

 private:
  struct Slot {
    std::uint64_t key, stamp;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::uint64_t stamp_ = 0;
};

// Repetition within documents: per document, the n-gram keys that repeat an earlier one
// (narrow keys: a set; wide keys: sorted); documents split over threads.
void repetition(const std::uint32_t* tokens, const std::int64_t* offsets, std::size_t num_docs, int n, int bits,
                int threads, NGramDiversity& out) {
  const bool narrow = n * bits <= 64;
  const std::vector<std::size_t> docs = split_documents(offsets, num_docs, threads);
  std::vector<std::uint64_t> repeated(static_cast<std::size_t>(threads)), total(static_cast<std::size_t>(threads));
  run_threads(threads, [&](int t) {
    DocumentKeySet seen;
    std::vector<std::uint64_t> doc_narrow;
    std::vector<Wide> doc_wide;
    std::uint64_t rep = 0, tot = 0;
    for (std::size_t d = docs[t]; d < docs[t + 1]; ++d) {
      std::size_t size = 0, distinct = 0;
      const std::int64_t len = offsets[d + 1] - offsets[d];
      if (narrow && len <= kSetMaxKeys) {
        size = len >= n ? static_cast<std::size_t>(len - n + 1) : 0;
        seen.start(size);
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i)
          distinct += !seen.insert(narrow_key(tokens + i, n, bits));
      } else if (narrow) {  // a long document: sorting needs 8 bytes a key, the set 32
        doc_narrow.clear();
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i)
          doc_narrow.push_back(narrow_key(tokens + i, n, bits));
        std::sort(doc_narrow.begin(), doc_narrow.end());
        size = doc_narrow.size();
        distinct = count_distinct_sorted(doc_narrow);
      } else {
        doc_wide.clear();
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) doc_wide.push_back(wide_key(tokens + i, n));
        std::sort(doc_wide.begin(), doc_wide.end());
        size = doc_wide.size();
        distinct = count_distinct_sorted(doc_wide);
      }
      tot += size;
      rep += size - distinct;
    }
    repeated[static_cast<std::size_t>(t)] = rep;
    total[static_cast<std::size_t>(t)] = tot;
  });
  for (int t = 0; t < threads; ++t) {
    out.repeated += repeated[static_cast<std::size_t>(t)];
    out.repeat_total += total[static_cast<std::size_t>(t)];
  }
}

}  // namespace

NGramDiversity ngram_diversity(const std::uint32_t* tokens, std::size_t num_tokens, const std::int64_t* offsets,
                               std::size_t num_offsets, int max_n, int repeat_n, int threads) {
  if (max_n < 1 || max_n > 4) throw std::invalid_argument("max_n must be in [1, 4], got " + std::to_string(max_n));
  if (repeat_n < 1 || repeat_n > max_n)
    throw std::invalid_argument("repeat_n must be in [1, max_n], got " + std::to_string(repeat_n));
  threads = resolve_threads(threads);
  const std::size_t num_docs = num_offsets ? num_offsets - 1 : 0;
  std::uint32_t max_id = 0;
  for (std::size_t i = 0; i < num_tokens; ++i) max_id = std::max(max_id, tokens[i]);
  const int bits = bits_for(max_id);

  NGramDiversity out;
  for (int n = 1; n <= max_n; ++n) {
    std::size_t positions = 0;
    for (std::size_t d = 0; d < num_docs; ++d) {
      const std::int64_t len = offsets[d + 1] - offsets[d];
      if (len >= n) positions += static_cast<std::size_t>(len - n + 1);
    }
    out.total.push_back(positions);
  }
  const std::uint64_t pad = std::uint64_t(max_id) + 1;
  const int pad_bits = bits_for(pad);
  if (num_docs && max_n * pad_bits <= 64)
    distinct_by_prefix(tokens, offsets, num_docs, max_n, pad_bits, pad, threads, out);
  else
    distinct_per_order(tokens, offsets, num_docs, max_n, bits, out);
  repetition(tokens, offsets, num_docs, repeat_n, bits, threads, out);
  return out;
}

}  // namespace collapse
