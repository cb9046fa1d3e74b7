// Counting-heavy corpus metrics for the experiment loop: distinct n-grams and
// within-document repetition. Documents are given as flat token ids plus offsets (no
// <s>/</s>); n-grams never cross a document boundary.
#pragma once

#include <cstdint>
#include <vector>

namespace collapse {

struct NGramDiversity {
  // Index n-1 holds the value for n-grams of order n (n = 1 .. max_n).
  std::vector<std::uint64_t> distinct;  // number of distinct n-grams in the whole corpus
  std::vector<std::uint64_t> total;     // number of n-gram positions (sum over documents)
  // Occurrences of an n-gram (n = repeat_n) that repeat an earlier occurrence within the
  // same document, and the number of n-gram positions they were counted over.
  std::uint64_t repeated = 0;
  std::uint64_t repeat_total = 0;
};

// Throws std::invalid_argument for max_n outside [1, 4], repeat_n outside [1, max_n] or a
// thread count resolve_threads refuses. The result does not depend on the thread count.
NGramDiversity ngram_diversity(const std::uint32_t* tokens, std::size_t num_tokens, const std::int64_t* offsets,
                               std::size_t num_offsets, int max_n, int repeat_n, int threads = 1);

}  // namespace collapse
