// Scoring a corpus under a BackoffModel, as kenlm scores a sentence with bos and eos:
// each document is <s> w1 .. wk </s>, every word and </s> is predicted, ids outside the
// model (or <unk>) are scored as <unk>.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/ngram_count.hpp"

namespace collapse {

// Hash index over a model's n-grams (open addressing), built once per model.
class NGramIndex {
 public:
  explicit NGramIndex(std::shared_ptr<const BackoffModel> model);
  // Row of the n-gram words[0..n) in table n, or -1.
  std::int64_t find(const WordId* words, int n) const;
  const BackoffModel& model() const { return *model_; }

 private:
  struct Slot {
    std::uint64_t hash;
    std::uint32_t row_plus_one;  // 0: empty
  };
  std::shared_ptr<const BackoffModel> model_;
  std::vector<std::vector<Slot>> slots_;  // per order
  std::vector<std::uint64_t> masks_;
};

struct ScoreResult {
  std::vector<double> log10_prob;  // per document, </s> included
  std::uint64_t tokens = 0;        // words predicted, </s> excluded
  std::uint64_t oov = 0;           // words scored as <unk>
};

// tokens are model ids (ids >= vocab size count as <unk>).
ScoreResult score_corpus(const NGramIndex& index, const CorpusView& corpus, int threads);

}  // namespace collapse
