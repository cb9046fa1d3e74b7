// The estimation pipeline: vocabulary compaction, counting, smoothing.
#include <cmath>
#include <stdexcept>

#include "collapse/estimate.hpp"

namespace collapse {

void check_fit_options(const FitOptions& options) {
  const std::string& s = options.smoothing;
  if (s != "mkn" && s != "kn" && s != "addk" && s != "mle")
    throw std::invalid_argument("unknown smoothing '" + s + "' (choose from mkn, kn, addk, mle)");
  if (options.order < 1 || options.order > kMaxNGramOrder)
    throw std::invalid_argument("n-gram order must be between 1 and " + std::to_string(kMaxNGramOrder) + ", got " +
                                std::to_string(options.order));
  if (s == "addk" && (!(options.add_k > 0.0) || !std::isfinite(options.add_k)))
    throw std::invalid_argument("add-k needs a finite k > 0");
  check_prune_thresholds(options);
}

void check_prune_thresholds(const FitOptions& options) {
  const auto& t = options.prune;
  if (t.empty()) return;
  if (t.size() != static_cast<std::size_t>(options.order))
    throw std::invalid_argument("pruning needs one threshold per order (" + std::to_string(options.order) +
                                "), got " + std::to_string(t.size()));
  for (std::size_t i = 1; i < t.size(); ++i)
    if (t[i] < t[i - 1])
      throw std::invalid_argument("pruning thresholds must be non-decreasing (as lmplz's --prune), got " +
                                  std::to_string(t[i - 1]) + " then " + std::to_string(t[i]));
  if (options.prunes() && options.smoothing != "mkn" && options.smoothing != "kn")
    throw std::invalid_argument("pruning needs Kneser-Ney smoothing (mkn or kn), not " + options.smoothing);
}

BackoffModel fit_ngram_model(const CorpusView& corpus, const std::vector<std::string>& vocab,
                             const FitOptions& options) {
  check_fit_options(options);
  if (corpus.n_docs == 0) throw std::invalid_argument("the corpus is empty (no documents)");
  if (vocab.size() < 3 || vocab[kUnk] != "<unk>" || vocab[kBos] != "<s>" || vocab[kEos] != "</s>")
    throw std::invalid_argument("vocabulary must begin with <unk>, <s>, </s>");

  std::vector<WordId> new_to_old;
  std::vector<WordId> old_to_new;
  CorpusView compact = corpus;
  if (!is_compact_vocabulary(corpus, vocab.size())) {
    // Counting reads the tokens through the map: no renumbered copy (4 bytes a token).
    old_to_new = compact_id_map(corpus, vocab.size(), new_to_old);
    compact.id_map = old_to_new.data();
    compact.id_map_size = old_to_new.size();
  } else {
    // Already lmplz's numbering (a freshly loaded corpus): no copy of the tokens.
    new_to_old.resize(vocab.size());
    for (std::size_t i = 0; i < vocab.size(); ++i) new_to_old[i] = static_cast<WordId>(i);
  }
  CountOptions count_options;
  count_options.threads = options.threads;
  count_options.memory = options.memory;
  count_options.temp_dir = options.temp_dir;
  count_options.keep_lower_raw = options.needs_lower_raw();
  NGramCounts counts = count_ngrams(compact, new_to_old.size(), options.order, count_options);
  return estimate_from_counts(std::move(counts), new_to_old, vocab, options);
}

namespace {

void name_words(BackoffModel& model, const std::vector<WordId>& new_to_old, const std::vector<std::string>& vocab) {
  model.vocab.reserve(new_to_old.size());
  for (WordId old : new_to_old) {
    if (old >= vocab.size()) throw std::invalid_argument("vocabulary smaller than the counted ids");
    model.vocab.push_back(vocab[old]);
  }
}

}  // namespace

BackoffModel estimate_from_counts(NGramCounts&& counts, const std::vector<WordId>& new_to_old,
                                  const std::vector<std::string>& vocab, const FitOptions& options) {
  check_fit_options(options);
  const std::string& s = options.smoothing;
  BackoffModel model;
  // Past the discounts, Kneser-Ney reads adjusted counts only.
  auto drop_raw = [&counts] {
    for (CountedOrder& o : counts.orders) o.raw.clear();
  };
  if (s == "mkn" || s == "kn") {
    // Discounts from the counts before pruning, as lmplz.
    const auto d = s == "mkn" ? modified_kneser_ney_discounts(counts) : kneser_ney_discounts(counts);
    PruneMask keep;
    if (options.prunes()) keep = prune_mask(counts, options.prune);
    drop_raw();
    model = interpolate_kneser_ney(std::move(counts), d, options.prunes() ? &keep : nullptr);
    model.smoothing = s;
    if (options.prunes()) {
      name_words(model, new_to_old, vocab);
      drop_pruned(model, keep);  // the vocabulary too: it needs the words named
      return model;
    }
  } else if (s == "mle") {
    model = estimate_mle(std::move(counts));
  } else {
    model = estimate_add_k(std::move(counts), options.add_k);
  }
  name_words(model, new_to_old, vocab);
  return model;
}

}  // namespace collapse
