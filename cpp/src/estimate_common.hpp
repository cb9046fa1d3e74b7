// Private helpers shared by the estimators.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "collapse/estimate.hpp"

namespace collapse::detail {

inline float to_log10(double p) {
  if (!(p > 0.0)) return kLog10Zero;
  const double l = std::log10(p);
  return l < kLog10Zero ? kLog10Zero : static_cast<float>(l);
}

// Calls fn(context_row, begin, end) for each block [begin, end) of rows of `order` (n >= 2)
// sharing their first n-1 words; context_row is that context's row in `lower` (order n-1).
// Both tables are sorted, so the contexts are found by one forward walk.
template <class Fn>
void for_each_context(const CountedOrder& order, const CountedOrder& lower, Fn&& fn) {
  const std::size_t n = static_cast<std::size_t>(order.n), rows = order.size();
  std::size_t ctx = 0;
  for (std::size_t b = 0; b < rows;) {
    const WordId* h = order.row(b);
    std::size_t e = b + 1;
    while (e < rows && std::equal(h, h + n - 1, order.row(e))) ++e;
    while (ctx < lower.size() && std::lexicographical_compare(lower.row(ctx), lower.row(ctx) + n - 1, h, h + n - 1))
      ++ctx;
    if (ctx >= lower.size() || !std::equal(h, h + n - 1, lower.row(ctx)))
      throw std::logic_error("n-gram context missing from the order below");
    fn(ctx, b, e);
    b = e;
  }
}

// Moves the counts' id arrays into an empty BackoffModel with the right table shapes.
// allocate = false: the value arrays are left empty, for an estimator that allocates each
// order's when it gets to it (a lower peak).
inline BackoffModel model_shell(NGramCounts& counts, const char* smoothing, bool allocate = true) {
  BackoffModel model;
  model.order = counts.order;
  model.smoothing = smoothing;
  model.tables.resize(counts.order);
  for (int k = 0; k < counts.order; ++k) {
    NGramTable& t = model.tables[k];
    t.n = k + 1;
    if (!allocate) continue;
    t.log10_prob.assign(counts.orders[k].size(), 0.0f);
    t.log10_backoff.assign(counts.orders[k].size(), 0.0f);
  }
  return model;
}

inline void move_words(NGramCounts& counts, BackoffModel& model) {
  for (int k = 0; k < counts.order; ++k) model.tables[k].words = std::move(counts.orders[k].words);
}

}  // namespace collapse::detail
