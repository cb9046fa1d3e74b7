// An accumulating pool of n-gram counts: the counts of R + S_0 + ... + S_{t-1} kept from
// one generation to the next, each new corpus counted on its own and merged in (sorted
// tables, no recount of earlier text). An estimate from the pool is exactly the estimate
// from the concatenated text (same vocabulary numbering, same counts, same discounts),
// so Accumulate costs O(new text + table size) per generation rather than O(pool).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collapse/estimate.hpp"
#include "collapse/ngram_count.hpp"

namespace collapse {

class NGramPool {
 public:
  NGramPool(int order, const CountOptions& options);

  // Adds a corpus whose ids name words of a source vocabulary of vocab_size words; the
  // source vocabulary may grow between calls but ids keep their meaning (as
  // collapse.concatenate grows the first corpus's vocabulary).
  void add(const CorpusView& corpus, std::size_t vocab_size);

  // The model of everything added so far; vocab names the source ids (at least as many
  // as the largest id added). options.order must be the pool's.
  BackoffModel estimate(const std::vector<std::string>& vocab, const FitOptions& options) const;

  int order() const { return order_; }
  std::uint64_t documents() const { return documents_; }
  std::uint64_t tokens() const { return tokens_; }
  // Distinct words of the source vocabulary that occur (<unk>, <s>, </s> not counted).
  std::size_t num_words() const { return new_to_old_.size() - 3; }
  // Distinct n-grams of the highest order.
  std::size_t top_rows() const { return base_.top_raw.size(); }
  // Bytes held by the pool's tables.
  std::size_t bytes() const;

 private:
  int order_;
  CountOptions options_;
  std::vector<WordId> old_to_new_;  // source id -> compact id (kUnseen: not yet seen)
  std::vector<WordId> new_to_old_;  // compact id -> source id, lmplz's first-appearance order
  BaseCounts base_;
  std::uint64_t documents_ = 0, tokens_ = 0;
};

}  // namespace collapse
