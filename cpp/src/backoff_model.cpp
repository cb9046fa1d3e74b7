#include "collapse/backoff_model.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace collapse {

std::int64_t find_row(const NGramTable& t, const WordId* words) {
  const std::size_t n = static_cast<std::size_t>(t.n);
  std::size_t lo = 0, hi = t.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const WordId* r = t.row(mid);
    if (std::lexicographical_compare(r, r + n, words, words + n))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < t.size() && std::equal(words, words + n, t.row(lo))) return static_cast<std::int64_t>(lo);
  return -1;
}

void sort_tables(BackoffModel& model) {
  for (NGramTable& t : model.tables) {
    const std::size_t rows = t.size();
    const std::size_t n = static_cast<std::size_t>(t.n);
    std::vector<std::size_t> perm(rows);
    std::iota(perm.begin(), perm.end(), 0);
    const WordId* w = t.words.data();
    std::sort(perm.begin(), perm.end(), [w, n](std::size_t a, std::size_t b) {
      return std::lexicographical_compare(w + a * n, w + a * n + n, w + b * n, w + b * n + n);
    });
    NGramTable sorted;
    sorted.n = t.n;
    sorted.words.resize(t.words.size());
    sorted.log10_prob.resize(rows);
    sorted.log10_backoff.resize(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      std::copy(w + perm[i] * n, w + perm[i] * n + n, sorted.words.begin() + i * n);
      sorted.log10_prob[i] = t.log10_prob[perm[i]];
      sorted.log10_backoff[i] = t.log10_backoff[perm[i]];
    }
    t = std::move(sorted);
  }
}

void validate(const BackoffModel& model) {
  if (model.order < 1) throw std::invalid_argument("model order must be at least 1");
  if (static_cast<int>(model.tables.size()) != model.order)
    throw std::invalid_argument("model has " + std::to_string(model.tables.size()) +
                                " n-gram tables for order " + std::to_string(model.order));
  if (model.vocab.size() < 3 || model.vocab[kUnk] != "<unk>" || model.vocab[kBos] != "<s>" ||
      model.vocab[kEos] != "</s>")
    throw std::invalid_argument("model vocabulary must begin with <unk>, <s>, </s>");
  const std::size_t v = model.vocab.size();
  for (int k = 0; k < model.order; ++k) {
    const NGramTable& t = model.tables[k];
    if (t.n != k + 1) throw std::invalid_argument("n-gram table of wrong order");
    if (t.words.size() != t.size() * static_cast<std::size_t>(t.n) || t.log10_backoff.size() != t.size())
      throw std::invalid_argument("n-gram table arrays of inconsistent sizes");
    for (WordId w : t.words)
      if (w >= v) throw std::invalid_argument("n-gram word id outside the vocabulary");
  }
}

}  // namespace collapse
