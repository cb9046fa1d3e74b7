// MLE and add-k in exact backoff form (raw counts, no discounting).
//
// MLE:   p(w | h) = c(h w) / c(h) for a seen context h, where c(h) = sum_x c(h x); a seen
//        context leaves no mass for unseen words (backoff log10 -99); a context never
//        seen falls back to the lower order with weight 1. Unigrams: c(w) / N, N the
//        number of predicted tokens (words and </s>).
// add-k: V = the vocabulary other than <s> (<unk> and </s> included).
//        Unigrams (c(w) + k) / (N + k V). For a seen context h with n_h distinct
//        successors: p(w | h) = (c(h w) + k) / (c(h) + k V) for seen h w, and the rest,
//        k (V - n_h) / (c(h) + k V), goes to the unseen words in proportion to the lower
//        order: backoff(h) = rest / (1 - sum over seen w of p_lower(w | h')). A proper
//        distribution over V for every context, seen or not.
#include "collapse/estimate.hpp"
#include "estimate_common.hpp"

namespace collapse {

using detail::for_each_context;
using detail::to_log10;

namespace {

double unigram_total(const CountedOrder& uni) {
  double total = 0.0;
  for (std::size_t r = 0; r < uni.size(); ++r)
    if (uni.row(r)[0] != kBos) total += static_cast<double>(uni.raw[r]);
  return total;
}

}  // namespace

BackoffModel estimate_mle(NGramCounts&& counts) {
  BackoffModel model = detail::model_shell(counts, "mle");
  const CountedOrder& uni = counts.orders[0];
  const double total = unigram_total(uni);
  if (!(total > 0.0)) throw std::invalid_argument("cannot estimate: no unigram counts");
  for (std::size_t r = 0; r < uni.size(); ++r)
    model.tables[0].log10_prob[r] = uni.row(r)[0] == kBos ? kLog10Zero : to_log10(static_cast<double>(uni.raw[r]) / total);
  for (int k = 1; k < counts.order; ++k) {
    const CountedOrder& here = counts.orders[k];
    NGramTable& table = model.tables[k];
    NGramTable& below_table = model.tables[k - 1];
    for_each_context(here, counts.orders[k - 1], [&](std::size_t ctx, std::size_t b, std::size_t e) {
      double c = 0.0;
      for (std::size_t r = b; r < e; ++r) c += static_cast<double>(here.raw[r]);
      for (std::size_t r = b; r < e; ++r) table.log10_prob[r] = to_log10(static_cast<double>(here.raw[r]) / c);
      below_table.log10_backoff[ctx] = kLog10Zero;  // no mass left for unseen words
    });
  }
  detail::move_words(counts, model);
  return model;
}

BackoffModel estimate_add_k(NGramCounts&& counts, double k_add) {
  if (!(k_add > 0.0) || !std::isfinite(k_add)) throw std::invalid_argument("add-k needs a finite k > 0");
  BackoffModel model = detail::model_shell(counts, "addk");
  const CountedOrder& uni = counts.orders[0];
  const double V = static_cast<double>(uni.size() - 1);
  const double total = unigram_total(uni);
  std::vector<double> lower_prob(uni.size());
  for (std::size_t r = 0; r < uni.size(); ++r) {
    lower_prob[r] = uni.row(r)[0] == kBos ? 0.0 : (static_cast<double>(uni.raw[r]) + k_add) / (total + k_add * V);
    model.tables[0].log10_prob[r] = to_log10(lower_prob[r]);
  }
  for (int k = 1; k < counts.order; ++k) {
    const CountedOrder& here = counts.orders[k];
    NGramTable& table = model.tables[k];
    NGramTable& below_table = model.tables[k - 1];
    std::vector<double> prob(here.size());
    for_each_context(here, counts.orders[k - 1], [&](std::size_t ctx, std::size_t b, std::size_t e) {
      double c = 0.0, seen_lower = 0.0;
      for (std::size_t r = b; r < e; ++r) {
        c += static_cast<double>(here.raw[r]);
        seen_lower += lower_prob[here.suffix[r]];
      }
      const double denom = c + k_add * V;
      for (std::size_t r = b; r < e; ++r) {
        prob[r] = (static_cast<double>(here.raw[r]) + k_add) / denom;
        table.log10_prob[r] = to_log10(prob[r]);
      }
      const double rest = k_add * (V - static_cast<double>(e - b)) / denom;
      const double unseen_lower = 1.0 - seen_lower;
      below_table.log10_backoff[ctx] =
          (rest > 0.0 && unseen_lower > 0.0) ? to_log10(rest / unseen_lower) : kLog10Zero;
    });
    lower_prob.swap(prob);
  }
  detail::move_words(counts, model);
  return model;
}

}  // namespace collapse
