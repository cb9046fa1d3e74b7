// Discounts from counts of adjusted counts (Chen & Goodman 1998, eq. 26), computed in
// single precision as lmplz does, so that the discounts agree to the last bit.
//
// Fallback policy: where lmplz throws BadDiscountException (no n-grams with adjusted count
// 1, 2 or 3 at some order, or a discount outside [0, k]), we use KenLM's
// --discount_fallback defaults D1 = 0.5, D2 = 1, D3+ = 1.5 for that order and record
// "fallback" in the model's discount_policy. Recursively generated corpora hit this often
// (no singletons), and these values keep every probability positive and finite.
#include <algorithm>

#include "collapse/estimate.hpp"

namespace collapse {
namespace {

// t[k] = number of n-grams of this order with adjusted count k (k = 1..4).
std::array<std::uint64_t, 5> count_of_counts(const CountedOrder& order) {
  std::array<std::uint64_t, 5> t{0, 0, 0, 0, 0};
  for (std::size_t r = 0; r < order.size(); ++r) {
    const std::uint64_t a = order.adjusted[r];
    if (a >= 1 && a <= 4) ++t[a];
  }
  return t;
}

// lmplz's counts of counts: as above, except that for each order below the highest the
// n-gram still on adjust_counts' stack when its input ends (the suffix of the last window
// in suffix order) is recorded with its raw count instead of its adjusted count. A quirk
// of KenLM's final flush, reproduced so that the discounts agree exactly even on tiny
// corpora, where a single n-gram can move a discount or decide the fallback.
std::array<std::uint64_t, 5> lmplz_count_of_counts(const NGramCounts& counts, int n) {
  const CountedOrder& order = counts.orders[n - 1];
  auto t = count_of_counts(order);
  const auto& last = counts.last_in_suffix_order;
  if (n >= counts.order || static_cast<int>(last.size()) != counts.order) return t;
  const WordId* suffix = last.data() + (counts.order - n);
  if (suffix[0] == kBos) return t;  // <s>-initial n-grams keep raw counts anyway
  // Binary search for the row of the suffix.
  std::size_t lo = 0, hi = order.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (std::lexicographical_compare(order.row(mid), order.row(mid) + n, suffix, suffix + n))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == order.size() || !std::equal(suffix, suffix + n, order.row(lo))) return t;
  const std::uint64_t adjusted = order.adjusted[lo];
  const std::uint64_t raw = order.raw.empty() ? counts.last_suffix_raw.at(n - 1) : order.raw[lo];
  if (adjusted >= 1 && adjusted <= 4) --t[adjusted];
  if (raw >= 1 && raw <= 4) ++t[raw];
  return t;
}

OrderDiscount fallback() {
  OrderDiscount d;
  d.d = kFallbackDiscounts;
  d.policy = "fallback";
  return d;
}

}  // namespace

std::vector<OrderDiscount> modified_kneser_ney_discounts(const NGramCounts& counts) {
  std::vector<OrderDiscount> out;
  for (int n = 1; n <= counts.order; ++n) {
    const auto t = lmplz_count_of_counts(counts, n);
    if (t[1] == 0 || t[2] == 0 || t[3] == 0) {
      out.push_back(fallback());
      continue;
    }
    OrderDiscount d;
    d.policy = "chen-goodman";
    const float y = static_cast<float>(static_cast<double>(t[1]) / (static_cast<double>(t[1]) + 2.0 * t[2]));
    bool in_range = true;
    for (int j = 1; j <= 3; ++j) {
      const float amount = static_cast<float>(j) - static_cast<float>(j + 1) * y * static_cast<float>(t[j + 1]) /
                                                       static_cast<float>(t[j]);
      if (!(amount >= 0.0f && amount <= static_cast<float>(j))) in_range = false;
      d.d[j] = amount;
    }
    out.push_back(in_range ? d : fallback());
  }
  return out;
}

std::vector<OrderDiscount> kneser_ney_discounts(const NGramCounts& counts) {
  std::vector<OrderDiscount> out;
  for (const CountedOrder& order : counts.orders) {
    const auto t = count_of_counts(order);
    OrderDiscount d;
    if (t[1] == 0 || t[2] == 0) {
      // D = n1 / (n1 + 2 n2) would be 0 (no smoothing at all) or 1: take KenLM's D1
      // fallback for every count instead.
      d.d = {0.0, kFallbackDiscounts[1], kFallbackDiscounts[1], kFallbackDiscounts[1]};
      d.policy = "fallback";
    } else {
      const double D = static_cast<double>(t[1]) / (static_cast<double>(t[1]) + 2.0 * static_cast<double>(t[2]));
      d.d = {0.0, D, D, D};
      d.policy = "kn";
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace collapse
