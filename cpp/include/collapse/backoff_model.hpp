// The backoff form of an n-gram model: what ARPA files hold, and what scoring and
// sampling read. Every estimator (MLE, add-k, Kneser-Ney) ends in this form.
//
//   p(w | h) = prob(h w)                          if the n-gram h w is stored
//            = backoff(h) * p(w | h without its first word)   otherwise
//
// Stored as log10, as ARPA does. A log10 value of kLog10Zero stands for probability 0
// (ARPA's -99 convention), e.g. the unigram <s>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace collapse {

using WordId = std::uint32_t;

// Fixed ids shared by every Vocab: the Python Vocab and the C++ model agree on them.
constexpr WordId kUnk = 0;
constexpr WordId kBos = 1;
constexpr WordId kEos = 2;

constexpr float kLog10Zero = -99.0f;

// All n-grams of one order n, rows sorted lexicographically by (w1, ..., wn), so the
// successors of a context h are one contiguous block of the order |h|+1 table.
struct NGramTable {
  int n = 0;
  std::vector<WordId> words;       // size() * n ids, row-major
  std::vector<float> log10_prob;   // one per row
  std::vector<float> log10_backoff;  // one per row; 0 at the highest order

  std::size_t size() const { return log10_prob.size(); }
  const WordId* row(std::size_t i) const { return words.data() + i * static_cast<std::size_t>(n); }
};

struct BackoffModel {
  int order = 0;
  std::vector<std::string> vocab;  // id -> word; vocab[0..2] = <unk>, <s>, </s>
  std::vector<NGramTable> tables;  // tables[n-1] holds the n-grams

  // How the model was made: "mkn", "kn", "addk", "mle", or "arpa" when read from a file.
  std::string smoothing = "arpa";
  // Discounting policy actually used per order ("chen-goodman", "fallback", ...); empty
  // for models without discounts.
  std::vector<std::string> discount_policy;
  // Discounts D1, D2, D3+ per order (Kneser-Ney only).
  std::vector<std::vector<double>> discounts;
};

// Row index of the n-gram `words` (t.n ids) in the sorted table t, or -1 (binary search).
std::int64_t find_row(const NGramTable& t, const WordId* words);

// Sort every table's rows lexicographically (and their values along with them).
void sort_tables(BackoffModel& model);

// Throws std::invalid_argument if the model is inconsistent (sizes, ids, order).
void validate(const BackoffModel& model);

// Completes a model whose n-grams lack their prefix or suffix (pruned by SRILM or by
// hand; ARPA allows it) with "blanks", as kenlm does when it loads such a file: every
// missing prefix w1..w(n-1) and suffix w2..wn of a stored n-gram (recursively) is added
// with log10 prob = the backoff formula's value for it (the prob of its suffix plus the
// backoff of its prefix) and log10 backoff 0. A blank changes no probability, so scoring
// and sampling need no special case: they may assume every prefix and suffix stored.
// Needs sorted tables (sort_tables) whose words are all unigrams; keeps them sorted.
// Returns the number of blanks added per order (index n-1).
std::vector<std::size_t> insert_blanks(BackoffModel& model);

}  // namespace collapse
