// Distinct n-grams by sorting packed keys. Why sorting and not a hash set: the keys of a
// corpus fit in one flat array, and an LSD radix sort over only the bytes the keys use
// is several times faster than hashing 10^7 keys.
#include "collapse/metrics.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

namespace collapse {
namespace {

int bits_for(std::uint32_t max_id) {
  int b = 1;
  while (b < 32 && (std::uint64_t(1) << b) <= max_id) ++b;
  return b;
}

// LSD radix sort on the low `key_bits` bits of 64-bit keys, 8 bits per pass.
void radix_sort(std::vector<std::uint64_t>& keys, int key_bits) {
  std::vector<std::uint64_t> tmp(keys.size());
  for (int shift = 0; shift < key_bits; shift += 8) {
    std::array<std::size_t, 257> count{};
    for (std::uint64_t k : keys) ++count[((k >> shift) & 0xFF) + 1];
    for (int i = 0; i < 256; ++i) count[i + 1] += count[i];
    for (std::uint64_t k : keys) tmp[count[(k >> shift) & 0xFF]++] = k;
    keys.swap(tmp);
  }
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

}  // namespace

NGramDiversity ngram_diversity(const std::uint32_t* tokens, std::size_t num_tokens, const std::int64_t* offsets,
                               std::size_t num_offsets, int max_n, int repeat_n) {
  if (max_n < 1 || max_n > 4) throw std::invalid_argument("max_n must be in [1, 4], got " + std::to_string(max_n));
  if (repeat_n < 1 || repeat_n > max_n)
    throw std::invalid_argument("repeat_n must be in [1, max_n], got " + std::to_string(repeat_n));
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
    if (n * bits <= 64) {
      std::vector<std::uint64_t> keys;
      keys.reserve(positions);
      for (std::size_t d = 0; d < num_docs; ++d)
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) keys.push_back(narrow_key(tokens + i, n, bits));
      radix_sort(keys, n * bits);
      out.distinct.push_back(count_distinct_sorted(keys));
    } else {
      std::vector<Wide> keys;
      keys.reserve(positions);
      for (std::size_t d = 0; d < num_docs; ++d)
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) keys.push_back(wide_key(tokens + i, n));
      std::sort(keys.begin(), keys.end());
      out.distinct.push_back(count_distinct_sorted(keys));
    }
  }

  // Repetition within documents: per document, sort its n-gram keys and count duplicates.
  const int n = repeat_n;
  std::vector<Wide> doc_keys;
  for (std::size_t d = 0; d < num_docs; ++d) {
    doc_keys.clear();
    for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) doc_keys.push_back(wide_key(tokens + i, n));
    std::sort(doc_keys.begin(), doc_keys.end());
    out.repeat_total += doc_keys.size();
    out.repeated += doc_keys.size() - count_distinct_sorted(doc_keys);
  }
  return out;
}

}  // namespace collapse
