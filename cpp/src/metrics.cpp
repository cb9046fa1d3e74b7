// Distinct n-grams by sorting packed keys. Why sorting and not a hash set: the keys of a
// corpus fit in one flat array, and an LSD radix sort over only the bytes the keys use
// is several times faster than hashing 10^7 keys.
#include "collapse/metrics.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace collapse {
namespace {

int bits_for(std::uint32_t max_id) {
  int b = 1;
  while (b < 32 && (std::uint64_t(1) << b) <= max_id) ++b;
  return b;
}

// LSD radix sort on the low `key_bits` bits of 64-bit keys, 11 bits per pass (a 2048-entry
// histogram stays in L1 cache; 44-bit keys of 4-grams over an 11-bit vocabulary take 4 passes).
void radix_sort(std::vector<std::uint64_t>& keys, std::vector<std::uint64_t>& tmp, int key_bits) {
  constexpr int kDigit = 11;
  constexpr std::size_t kBuckets = std::size_t(1) << kDigit;
  tmp.resize(keys.size());
  std::vector<std::size_t> count(kBuckets + 1);
  for (int shift = 0; shift < key_bits; shift += kDigit) {
    std::fill(count.begin(), count.end(), 0);
    for (std::uint64_t k : keys) ++count[((k >> shift) & (kBuckets - 1)) + 1];
    for (std::size_t i = 0; i < kBuckets; ++i) count[i + 1] += count[i];
    for (std::uint64_t k : keys) tmp[count[(k >> shift) & (kBuckets - 1)]++] = k;
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
  std::vector<std::uint64_t> keys, tmp;
  for (int n = 1; n <= max_n; ++n) {
    std::size_t positions = 0;
    for (std::size_t d = 0; d < num_docs; ++d) {
      const std::int64_t len = offsets[d + 1] - offsets[d];
      if (len >= n) positions += static_cast<std::size_t>(len - n + 1);
    }
    out.total.push_back(positions);
    if (n == 1 && max_id < (1u << 26)) {  // distinct unigrams: a presence table (<= 64 MiB), no sort
      std::vector<char> seen(static_cast<std::size_t>(max_id) + 1, 0);
      std::uint64_t distinct = 0;
      for (std::size_t i = 0; i < num_tokens; ++i) {
        distinct += !seen[tokens[i]];
        seen[tokens[i]] = 1;
      }
      out.distinct.push_back(distinct);
    } else if (n * bits <= 64) {
      keys.clear();
      keys.reserve(positions);
      for (std::size_t d = 0; d < num_docs; ++d)
        for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) keys.push_back(narrow_key(tokens + i, n, bits));
      radix_sort(keys, tmp, n * bits);
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
  std::vector<std::uint64_t>().swap(keys);
  std::vector<std::uint64_t>().swap(tmp);

  // Repetition within documents: per document, sort its n-gram keys and count duplicates.
  const int n = repeat_n;
  const bool narrow = n * bits <= 64;
  std::vector<std::uint64_t> doc_narrow;
  std::vector<Wide> doc_wide;
  for (std::size_t d = 0; d < num_docs; ++d) {
    std::size_t size = 0, distinct = 0;
    if (narrow) {
      doc_narrow.clear();
      for (std::int64_t i = offsets[d]; i + n <= offsets[d + 1]; ++i) doc_narrow.push_back(narrow_key(tokens + i, n, bits));
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
    out.repeat_total += size;
    out.repeated += size - distinct;
  }
  return out;
}

}  // namespace collapse
