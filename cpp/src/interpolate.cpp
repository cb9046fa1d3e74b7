// Interpolated (modified) Kneser-Ney in backoff form, as lmplz computes it:
//
//   u(w | h)   = (a(h w) - D(a(h w))) / sum_x a(h x)
//   gamma(h)   = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_x a(h x)
//   p(w | h)   = u(w | h) + gamma(h) p(w | h without its first word)
//   p(w)       = u(w) + gamma() / |V|,   |V| = unigrams other than <s> (<unk> included)
//
// with a() the adjusted counts. The ARPA backoff of a context h is gamma(h) (1 where h has
// no successors). <unk>, never seen, gets the interpolated-uniform mass gamma()/|V|; <s>
// is never predicted (log10 prob -99) but is a context with its own backoff.
//
// Pruned (prune.cpp), as lmplz: a pruned n-gram h w still counts in sum_x a(h x), but adds
// its whole a(h w) to gamma(h)'s numerator instead of its discount, and |V| counts the
// unigrams kept. Every context then still sums to one over the n-grams kept.
#include "collapse/estimate.hpp"
#include "estimate_common.hpp"

namespace collapse {

using detail::for_each_context;
using detail::to_log10;

BackoffModel interpolate_kneser_ney(NGramCounts&& counts, const std::vector<OrderDiscount>& discounts,
                                    const PruneMask* keep) {
  // What an n-gram of adjusted count a adds to its context's backoff mass.
  auto freed = [keep](int k, std::size_t r, std::uint64_t a, const OrderDiscount& d) {
    return (keep == nullptr || (*keep)[k][r]) ? d.apply(a) : static_cast<double>(a);
  };
  // Each order's values are allocated when it is estimated, after the counts of the orders
  // below have been freed.
  BackoffModel model = detail::model_shell(counts, "mkn", false);
  // An order's probabilities are allocated when it is estimated, its backoffs when the
  // order above is (they are written then), the highest order's (all 0) last.
  auto allocate = [&](int k) { model.tables[k].log10_prob.assign(counts.orders[k].size(), 0.0f); };
  auto allocate_backoff = [&](int k) { model.tables[k].log10_backoff.assign(counts.orders[k].size(), 0.0f); };
  allocate(0);

  // Unigrams.
  const CountedOrder& uni = counts.orders[0];
  const OrderDiscount& d1 = discounts[0];
  double denominator = 0.0, gamma_mass = 0.0;
  std::size_t kept_unigrams = 0;
  for (std::size_t r = 0; r < uni.size(); ++r) {
    const std::uint64_t a = uni.adjusted[r];
    denominator += static_cast<double>(a);
    gamma_mass += freed(0, r, a, d1);
    if (keep == nullptr || (*keep)[0][r]) ++kept_unigrams;
  }
  if (!(denominator > 0.0)) throw std::invalid_argument("cannot estimate: no unigram counts");
  const double gamma0 = gamma_mass / denominator;
  const double uniform = 1.0 / static_cast<double>(kept_unigrams - 1);  // <s> excluded
  std::vector<double> lower_prob(uni.size());
  for (std::size_t r = 0; r < uni.size(); ++r) {
    const WordId w = uni.row(r)[0];
    const std::uint64_t a = uni.adjusted[r];
    lower_prob[r] = (w == kBos) ? 0.0 : (static_cast<double>(a) - d1.apply(a)) / denominator + gamma0 * uniform;
    model.tables[0].log10_prob[r] = to_log10(lower_prob[r]);
  }
  if (counts.order > 1) counts.orders[0].adjusted.clear();

  // Higher orders: each context block of order n, interpolated with order n-1.
  for (int k = 1; k < counts.order; ++k) {
    const CountedOrder& here = counts.orders[k];
    const CountedOrder& below = counts.orders[k - 1];
    const OrderDiscount& dk = discounts[k];
    allocate(k);
    allocate_backoff(k - 1);
    NGramTable& table = model.tables[k];
    NGramTable& below_table = model.tables[k - 1];
    // The highest order's probabilities are not read again: no double copy of them.
    const bool last = k + 1 == counts.order;
    std::vector<double> prob(last ? 0 : here.size());
    for_each_context(here, below, [&](std::size_t ctx, std::size_t b, std::size_t e) {
      double denom = 0.0, mass = 0.0;
      for (std::size_t r = b; r < e; ++r) {
        denom += static_cast<double>(here.adjusted[r]);
        mass += freed(k, r, here.adjusted[r], dk);
      }
      const double gamma = mass / denom;
      below_table.log10_backoff[ctx] = to_log10(gamma);
      for (std::size_t r = b; r < e; ++r) {
        // The lower order's row is a random access (a cache miss): fetch ahead.
        if (r + 16 < here.size()) __builtin_prefetch(&lower_prob[here.suffix[r + 16]]);
        const std::uint64_t a = here.adjusted[r];
        const double p = (static_cast<double>(a) - dk.apply(a)) / denom + gamma * lower_prob[here.suffix[r]];
        if (!last) prob[r] = p;
        table.log10_prob[r] = to_log10(p);
      }
    });
    lower_prob.swap(prob);
    // This order's counts are done with (its words stay: they are the model's).
    counts.orders[k].adjusted.clear();
    std::vector<std::uint32_t>().swap(counts.orders[k].suffix);
    release_free_memory();
  }
  std::vector<double>().swap(lower_prob);
  counts.orders[counts.order - 1].adjusted.clear();
  allocate_backoff(counts.order - 1);

  model.discount_policy.clear();
  for (const OrderDiscount& d : discounts) {
    model.discount_policy.push_back(d.policy);
    model.discounts.push_back({d.d[1], d.d[2], d.d[3]});
  }
  detail::move_words(counts, model);
  return model;
}

}  // namespace collapse
