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
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collapse/backoff_model.hpp"

namespace collapse {

constexpr int kMaxNGramOrder = 8;

struct CountedOrder {
  int n = 0;
  std::vector<WordId> words;           // rows * n ids, rows sorted lexicographically
  std::vector<std::uint32_t> raw;      // occurrences per row
  std::vector<std::uint32_t> adjusted; // Kneser-Ney adjusted count per row
  std::vector<std::uint32_t> suffix;   // row of words[1..n) in order n-1 (empty for n = 1)

  std::size_t size() const { return adjusted.size(); }
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
};

// A corpus as the core sees it: flat ids and document offsets (n_docs + 1 entries).
struct CorpusView {
  const WordId* tokens = nullptr;
  std::size_t n_tokens = 0;
  const std::int64_t* offsets = nullptr;
  std::size_t n_docs = 0;
  std::size_t doc_length(std::size_t d) const { return static_cast<std::size_t>(offsets[d + 1] - offsets[d]); }
};

// Counts orders 1..order. Ids must be below vocab_size and never <s> or </s>.
// Throws std::invalid_argument on bad input. threads <= 0: all hardware threads.
NGramCounts count_ngrams(const CorpusView& corpus, std::size_t vocab_size, int order, int threads);

// Vocabulary compaction, as lmplz's vocabulary: only the words that occur, numbered in
// order of first appearance after <unk>, <s>, </s>. Returns the remapped tokens and
// fills new_to_old (new id -> old id, new_to_old[0..2] = 0..2).
std::vector<WordId> compact_vocabulary(const CorpusView& corpus, std::size_t vocab_size,
                                       std::vector<WordId>& new_to_old);

// True if compact_vocabulary would be the identity: every id >= 3 occurs, and ids >= 3
// first appear in increasing order (so no copy is needed).
bool is_compact_vocabulary(const CorpusView& corpus, std::size_t vocab_size);

}  // namespace collapse
