// Counting all n-grams of orders 1..N of a corpus, as lmplz counts them.
//
// Every document is the sequence <s> w1 .. wk </s>; an n-gram is any window of n
// consecutive ids of that sequence (so <s> only ever comes first and </s> last, and
// nothing crosses a document boundary). For each order the distinct n-grams are kept in
// lexicographic order, with
//   raw:      the number of occurrences;
//   adjusted: what Kneser-Ney estimates from (Chen & Goodman's N1+(. w)): at the highest
//             order and for n-grams beginning with <s> the raw count, otherwise the
//             number of distinct words seen just before the n-gram. The unigram <s> gets
//             adjusted count 0, as in lmplz (it is never predicted).
// The unigram table always holds <unk> (count 0 when the corpus has none).
//
// Widths. Counts are 64-bit values (CountColumn: 32-bit cells, the rare count that does
// not fit kept aside), corpus offsets and window totals are 64-bit. Row numbers of one
// order's table stay 32-bit: a table of 2^32 rows would need more than 48 GB, and every
// place that narrows a row number checks the bound and throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "collapse/backoff_model.hpp"

namespace collapse {

constexpr int kMaxNGramOrder = 8;

// Counts at or above this limit leave the 32-bit cells (2^32 - 1 normally). Tests lower it
// (set_narrow_count_limit) to drive the 64-bit path with small corpora.
std::uint64_t narrow_count_limit();
// Sets the limit (clamped to [1, 2^32 - 1]) and returns the previous one. Test hook.
std::uint64_t set_narrow_count_limit(std::uint64_t limit);
// Counts stored aside since the process started (test hook: shows the path was taken).
std::uint64_t escaped_count_total();

namespace detail {
extern std::atomic<std::uint64_t> g_narrow_count_limit;
extern std::atomic<std::uint64_t> g_escaped_counts;
extern std::mutex g_escape_mutex;
}  // namespace detail

// A column of 64-bit counts in 32-bit cells: a cell holds the count itself when it is below
// the narrow limit, else kEscape, and the count is kept in a side map. Counts of a corpus
// below 4G tokens never escape; above, only a handful do (the most frequent n-grams).
class CountColumn {
 public:
  static constexpr std::uint32_t kEscape = 0xFFFFFFFFu;

  std::size_t size() const { return cells_.size(); }
  bool empty() const { return cells_.empty(); }
  std::uint64_t operator[](std::size_t i) const {
    const std::uint32_t c = cells_[i];
    return c != kEscape ? c : wide_.at(i);
  }
  void push_back(std::uint64_t v) {
    if (v < detail::g_narrow_count_limit.load(std::memory_order_relaxed)) {
      cells_.push_back(static_cast<std::uint32_t>(v));
    } else {
      wide_[cells_.size()] = v;
      cells_.push_back(kEscape);
      detail::g_escaped_counts.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void set(std::size_t i, std::uint64_t v) {
    if (cells_[i] == kEscape) wide_.erase(i);
    if (v < detail::g_narrow_count_limit.load(std::memory_order_relaxed)) {
      cells_[i] = static_cast<std::uint32_t>(v);
    } else {
      wide_[i] = v;
      cells_[i] = kEscape;
      detail::g_escaped_counts.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void insert_front(std::uint64_t v) {
    std::unordered_map<std::size_t, std::uint64_t> shifted;
    for (const auto& [i, w] : wide_) shifted[i + 1] = w;
    wide_.swap(shifted);
    cells_.insert(cells_.begin(), 0);
    set(0, v);
  }
  // n zero counts.
  void resize(std::size_t n) { cells_.assign(n, 0); wide_.clear(); }
  // set() for a cell that holds 0 and no escape, safe from several threads at once for
  // distinct cells (the rare escape takes a lock).
  void set_concurrent(std::size_t i, std::uint64_t v) {
    if (v < detail::g_narrow_count_limit.load(std::memory_order_relaxed)) {
      cells_[i] = static_cast<std::uint32_t>(v);
      return;
    }
    std::lock_guard<std::mutex> lock(detail::g_escape_mutex);
    wide_[i] = v;
    cells_[i] = kEscape;
    detail::g_escaped_counts.fetch_add(1, std::memory_order_relaxed);
  }
  void reserve(std::size_t n) { cells_.reserve(n); }
  void shrink_to_fit() { cells_.shrink_to_fit(); }
  void clear() {
    std::vector<std::uint32_t>().swap(cells_);
    wide_.clear();
  }
  std::size_t bytes() const { return cells_.capacity() * sizeof(std::uint32_t) + wide_.size() * 32; }
  std::size_t escaped() const { return wide_.size(); }
  // The cells, for prefetching (a cell is the count unless it is kEscape).
  const std::uint32_t* cells() const { return cells_.data(); }
  std::vector<std::uint64_t> to_vector() const {
    std::vector<std::uint64_t> out(cells_.begin(), cells_.end());
    for (const auto& [i, w] : wide_) out[i] = w;
    return out;
  }

 private:
  std::vector<std::uint32_t> cells_;
  std::unordered_map<std::size_t, std::uint64_t> wide_;
};

struct CountedOrder {
  int n = 0;
  std::vector<WordId> words;           // rows * n ids, rows sorted lexicographically
  CountColumn raw;                     // occurrences per row
  CountColumn adjusted;                // Kneser-Ney adjusted count per row
  std::vector<std::uint32_t> suffix;   // row of words[1..n) in order n-1 (empty for n = 1)

  // From the words, so that the counts can be freed while the rows are still read.
  std::size_t size() const { return n > 0 ? words.size() / static_cast<std::size_t>(n) : 0; }
  const WordId* row(std::size_t i) const { return words.data() + i * static_cast<std::size_t>(n); }
};

struct NGramCounts {
  int order = 0;
  std::size_t vocab_size = 0;
  std::vector<CountedOrder> orders;  // orders[n-1]
  // The last window of the highest order in lmplz's suffix order (compare the last word,
  // then the one before, ...), over windows padded on the left with <s>. lmplz's
  // adjust_counts records the raw rather than the adjusted count of this window's
  // lower-order suffixes in its counts of counts; discount.cpp reproduces that.
  std::vector<WordId> last_in_suffix_order;
  // Where the lower orders' raw counts were not kept (CountOptions::keep_lower_raw false):
  // per order n < N, the raw count of the suffix of length n of last_in_suffix_order (the
  // only raw count Kneser-Ney's discounts read), 0 if absent.
  std::vector<std::uint64_t> last_suffix_raw;
};

// A corpus as the core sees it: flat ids and document offsets (n_docs + 1 entries).
// With an id map (vocabulary compaction without a renumbered copy of the tokens, which
// would be 4 bytes a token on top of the peak memory), counting reads token t as
// id_map[t]; every token must be below id_map_size.
struct CorpusView {
  const WordId* tokens = nullptr;
  std::size_t n_tokens = 0;
  const std::int64_t* offsets = nullptr;
  std::size_t n_docs = 0;
  const WordId* id_map = nullptr;
  std::size_t id_map_size = 0;
  std::size_t doc_length(std::size_t d) const { return static_cast<std::size_t>(offsets[d + 1] - offsets[d]); }
  WordId id(WordId token) const { return id_map ? id_map[token] : token; }
};

// How counting may use memory and disk.
struct CountOptions {
  int threads = 0;             // <= 0: all hardware threads
  // Bytes for the sort buffers and the sorted runs kept in memory (the n-gram tables
  // themselves come on top). 0: default_count_memory(). When a corpus's windows do not
  // fit, they are counted in chunks, each chunk's sorted run is kept or written to disk,
  // and the runs are merged: every token is read a bounded number of times.
  std::uint64_t memory = 0;
  std::string temp_dir;        // where runs are spilled; empty: $TMPDIR or /tmp
  // Raw counts of orders below the highest (MLE and add-k read them; Kneser-Ney does not,
  // and dropping them as soon as each order is derived lowers the peak memory).
  bool keep_lower_raw = true;
};

// Hands memory freed by the previous stage back to the system (glibc keeps freed blocks
// below its mmap threshold in the heap, where they would still count in the peak RSS).
void release_free_memory();

// A quarter of the physical memory (lmplz's -S takes a fraction of RAM likewise).
std::uint64_t default_count_memory();

// Counts orders 1..order. Ids must be below vocab_size and never <s> or </s>.
// Throws std::invalid_argument on bad input.
NGramCounts count_ngrams(const CorpusView& corpus, std::size_t vocab_size, int order, const CountOptions& options);
inline NGramCounts count_ngrams(const CorpusView& corpus, std::size_t vocab_size, int order, int threads) {
  CountOptions o;
  o.threads = threads;
  return count_ngrams(corpus, vocab_size, order, o);
}

// Vocabulary compaction, as lmplz's vocabulary: only the words that occur, numbered in
// order of first appearance after <unk>, <s>, </s>. Returns the map old id -> new id for
// CorpusView::id_map (ids that do not occur map to 0xFFFFFFFF and are never read; no copy
// of the tokens) and fills new_to_old (new id -> old id, new_to_old[0..2] = 0..2).
std::vector<WordId> compact_id_map(const CorpusView& corpus, std::size_t vocab_size, std::vector<WordId>& new_to_old);

// True if compact_id_map would be the identity: every id >= 3 occurs, and ids >= 3
// first appear in increasing order (so no copy is needed).
bool is_compact_vocabulary(const CorpusView& corpus, std::size_t vocab_size);

// The counts of the highest order and of the documents' beginnings: all that the lower
// orders, the adjusted counts and hence any estimate derive from. Two corpora's
// BaseCounts merge (merge_base_counts) into exactly the BaseCounts of their
// concatenation, which is how an accumulating pool is kept without recounting its text.
struct BaseCounts {
  int order = 0;
  // Highest order: rows * order ids, sorted, with raw counts.
  std::vector<WordId> top_words;
  CountColumn top_raw;
  // Per length n = 1..order-1 (prefix[n-1]): the distinct first n padded words of the
  // documents (<s> w1 ..), sorted, and how many documents begin so.
  std::vector<std::vector<WordId>> prefix_words;
  std::vector<CountColumn> prefix_count;
  std::vector<WordId> last_in_suffix_order;  // as in NGramCounts
  std::uint64_t windows = 0;                 // highest-order windows counted
};

// Counts a corpus into BaseCounts (ids below vocab_size, as count_ngrams).
BaseCounts count_base(const CorpusView& corpus, std::size_t vocab_size, int order, const CountOptions& options);
// a += b (same order).
void merge_base_counts(BaseCounts& a, const BaseCounts& b);
// All orders' counts from BaseCounts (vocab_size bounds the ids).
NGramCounts derive_counts(const BaseCounts& base, std::size_t vocab_size, int threads, bool keep_lower_raw = true);

}  // namespace collapse
