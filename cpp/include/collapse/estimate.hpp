// Estimating a BackoffModel from counts, stage by stage as KenLM organises it:
// counts (count.cpp) -> adjusted counts (adjust.cpp) -> discounts (discount.cpp) ->
// interpolation into backoff form (interpolate.cpp); MLE and add-k in simple_smoothing.cpp.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/ngram_count.hpp"

namespace collapse {

// Discounts of one order for adjusted counts 0, 1, 2, 3+ (d[0] = 0).
struct OrderDiscount {
  std::array<double, 4> d{0.0, 0.0, 0.0, 0.0};
  std::string policy;  // "chen-goodman", "kn", "fallback"
  double apply(std::uint64_t count) const { return d[count < 3 ? count : 3]; }
};

// KenLM's --discount_fallback defaults, used where Chen & Goodman's estimate is undefined
// or out of range (lmplz's BadDiscountException).
constexpr std::array<double, 4> kFallbackDiscounts{0.0, 0.5, 1.0, 1.5};

// Modified Kneser-Ney: three discounts per order from counts of adjusted counts.
std::vector<OrderDiscount> modified_kneser_ney_discounts(const NGramCounts& counts);
// Plain Kneser-Ney: one discount D = n1 / (n1 + 2 n2) per order.
std::vector<OrderDiscount> kneser_ney_discounts(const NGramCounts& counts);

// Pruning as lmplz's --prune (prune.cpp): keep[n-1][row] says whether row of order n
// stays. An n-gram is dropped when its raw count is at most thresholds[n-1]; <unk>, <s>
// and </s> always stay. Thresholds are non-decreasing, so every prefix and suffix of a
// kept n-gram (raw count at least as large) is kept too.
using PruneMask = std::vector<std::vector<bool>>;
PruneMask prune_mask(const NGramCounts& counts, const std::vector<std::uint64_t>& thresholds);
// Removes from every table the rows that keep does not keep, and pruned unigrams from the
// vocabulary (kept ids renumbered in order: tables stay sorted). Needs model.vocab named.
void drop_pruned(BackoffModel& model, const PruneMask& keep);

// Interpolated Kneser-Ney in backoff form (consumes the counts' id arrays). With keep
// (pruning), a pruned n-gram's whole adjusted count goes to its context's backoff mass
// instead of its discount, as lmplz does, so that each context still sums to one.
BackoffModel interpolate_kneser_ney(NGramCounts&& counts, const std::vector<OrderDiscount>& discounts,
                                    const PruneMask* keep = nullptr);
BackoffModel estimate_mle(NGramCounts&& counts);
BackoffModel estimate_add_k(NGramCounts&& counts, double k);

struct FitOptions {
  int order = 3;
  std::string smoothing = "mkn";  // mkn, kn, addk, mle
  double add_k = 1.0;
  int threads = 0;
  std::uint64_t memory = 0;  // counting's budget in bytes (CountOptions::memory; 0: default)
  std::string temp_dir;      // where counting spills sorted runs (empty: $TMPDIR or /tmp)
  // lmplz's --prune thresholds, one per order (empty or all 0: no pruning; Kneser-Ney only).
  std::vector<std::uint64_t> prune;
  bool prunes() const {
    for (std::uint64_t t : prune)
      if (t > 0) return true;
    return false;
  }
  // Raw counts below the highest order are needed by MLE, add-k and pruning.
  bool needs_lower_raw() const { return smoothing == "mle" || smoothing == "addk" || prunes(); }
};

// Throws std::invalid_argument for a bad smoothing, order, k or pruning thresholds.
void check_fit_options(const FitOptions& options);
// The pruning part of check_fit_options: one threshold per order, non-decreasing.
void check_prune_thresholds(const FitOptions& options);

// The whole pipeline: compact the vocabulary, count, estimate. vocab names the corpus ids.
BackoffModel fit_ngram_model(const CorpusView& corpus, const std::vector<std::string>& vocab,
                             const FitOptions& options);

// The estimation part: the model of `counts` (compact ids), its vocabulary named by
// vocab[new_to_old[id]].
BackoffModel estimate_from_counts(NGramCounts&& counts, const std::vector<WordId>& new_to_old,
                                  const std::vector<std::string>& vocab, const FitOptions& options);

}  // namespace collapse
