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

namespace collapse {
namespace {

bool row_less(const WordId* a, const WordId* b, std::size_t n) { return std::lexicographical_compare(a, a + n, b, b + n); }

// First row of t at or after `from` that is not less than key (t.n words): galloping
// from `from`, then binary search, so a sorted run of keys costs little more than a merge.
std::size_t lower_bound_from(const NGramTable& t, std::size_t from, const WordId* key) {
  const std::size_t n = static_cast<std::size_t>(t.n), size = t.size();
  std::size_t lo = from, step = 1, hi = from;
  while (hi < size && row_less(t.row(hi), key, n)) {
    lo = hi + 1;
    hi += step;
    step *= 2;
  }
  hi = std::min(hi, size);
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (row_less(t.row(mid), key, n))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// The (n-1)-grams that rows of table t (order n) need in `lower` and do not find there:
// their prefixes (sorted like t's rows: one merge) and their suffixes (sorted within a
// run of rows sharing their first word: one galloping merge per run). Flat, unsorted,
// possibly repeated.
std::vector<WordId> missing_lower(const NGramTable& t, const NGramTable& lower) {
  const std::size_t n = static_cast<std::size_t>(t.n), m = n - 1;
  std::vector<WordId> missing;
  std::size_t p = 0;
  for (std::size_t r = 0; r < t.size(); ++r) {
    const WordId* prefix = t.row(r);
    if (r > 0 && std::equal(prefix, prefix + m, t.row(r - 1))) continue;
    p = lower_bound_from(lower, p, prefix);
    if (p == lower.size() || !std::equal(prefix, prefix + m, lower.row(p))) missing.insert(missing.end(), prefix, prefix + m);
  }
  for (std::size_t r = 0; r < t.size();) {
    std::size_t s = 0;
    const WordId first = t.row(r)[0];
    for (; r < t.size() && t.row(r)[0] == first; ++r) {
      const WordId* suffix = t.row(r) + 1;
      s = lower_bound_from(lower, s, suffix);
      if (s == lower.size() || !std::equal(suffix, suffix + m, lower.row(s))) missing.insert(missing.end(), suffix, suffix + m);
    }
  }
  return missing;
}

}  // namespace

std::vector<std::size_t> insert_blanks(BackoffModel& model) {
  const int order = model.order;
  std::vector<std::size_t> added(static_cast<std::size_t>(std::max(order, 0)), 0);
  std::vector<std::vector<char>> blank(added.size());
  // Top down: blanks added to order n-1 may themselves lack entries of order n-2. Order 1
  // never does: every word of a stored n-gram is a unigram.
  for (int n = order; n >= 3; --n) {
    NGramTable& lower = model.tables[n - 2];
    const std::size_t m = static_cast<std::size_t>(n - 1);
    std::vector<WordId> missing = missing_lower(model.tables[n - 1], lower);
    if (missing.empty()) continue;
    const std::size_t k = missing.size() / m;
    std::vector<std::size_t> idx(k);
    std::iota(idx.begin(), idx.end(), 0);
    const WordId* w = missing.data();
    std::sort(idx.begin(), idx.end(), [w, m](std::size_t a, std::size_t b) { return row_less(w + a * m, w + b * m, m); });
    idx.erase(std::unique(idx.begin(), idx.end(),
                          [w, m](std::size_t a, std::size_t b) { return std::equal(w + a * m, w + a * m + m, w + b * m); }),
              idx.end());
    // Merge the sorted blanks into the sorted table.
    NGramTable merged;
    merged.n = lower.n;
    const std::size_t rows = lower.size() + idx.size();
    merged.words.reserve(rows * m);
    merged.log10_prob.reserve(rows);
    merged.log10_backoff.reserve(rows);
    std::vector<char>& is_blank = blank[m - 1];
    is_blank.reserve(rows);
    std::size_t i = 0, j = 0;
    while (i < lower.size() || j < idx.size()) {
      const bool take_blank = i == lower.size() || (j < idx.size() && row_less(w + idx[j] * m, lower.row(i), m));
      if (take_blank) {
        merged.words.insert(merged.words.end(), w + idx[j] * m, w + idx[j] * m + m);
        merged.log10_prob.push_back(0.0f);  // set below, orders going up
        merged.log10_backoff.push_back(0.0f);
        is_blank.push_back(1);
        ++j;
      } else {
        merged.words.insert(merged.words.end(), lower.row(i), lower.row(i) + m);
        merged.log10_prob.push_back(lower.log10_prob[i]);
        merged.log10_backoff.push_back(lower.log10_backoff[i]);
        is_blank.push_back(0);
        ++i;
      }
    }
    lower = std::move(merged);
    added[m - 1] = idx.size();
  }
  // Bottom up, so that a blank's suffix (maybe a blank itself) already has its value:
  // log10 p(wn | w1..w(n-1)) = backoff(w1..w(n-1)) + log10 p(wn | w2..w(n-1)).
  for (int n = 2; n <= order; ++n) {
    if (blank[n - 1].empty()) continue;
    NGramTable& t = model.tables[n - 1];
    const NGramTable& lower = model.tables[n - 2];
    for (std::size_t r = 0; r < t.size(); ++r) {
      if (!blank[n - 1][r]) continue;
      const std::int64_t suffix = find_row(lower, t.row(r) + 1), prefix = find_row(lower, t.row(r));
      if (suffix < 0 || prefix < 0) throw std::logic_error("insert_blanks: a blank lacks its prefix or suffix");
      const float below = lower.log10_prob[static_cast<std::size_t>(suffix)];
      t.log10_prob[r] = below <= kLog10Zero ? kLog10Zero : below + lower.log10_backoff[static_cast<std::size_t>(prefix)];
    }
  }
  return added;
}

}  // namespace collapse
