// Pruning as KenLM's `lmplz --prune`, the stage between adjusted counts and interpolation.
//
// lmplz marks an n-gram of order n for removal when its raw count (occurrences, at every
// order, not the adjusted count) is at most the threshold of order n, and removes it from
// the model; <unk>, <s> and </s> stay. Discounts are computed from the counts before
// pruning. interpolate.cpp gives a pruned n-gram's adjusted count to its context's backoff
// mass. Found by experiment against lmplz (docs/ngram.md, "Pruning").
#include <stdexcept>
#include <string>

#include "collapse/estimate.hpp"

namespace collapse {

PruneMask prune_mask(const NGramCounts& counts, const std::vector<std::uint64_t>& thresholds) {
  if (thresholds.size() != static_cast<std::size_t>(counts.order))
    throw std::invalid_argument("one pruning threshold per order needed");
  PruneMask keep(static_cast<std::size_t>(counts.order));
  for (int k = 0; k < counts.order; ++k) {
    const CountedOrder& o = counts.orders[k];
    const std::uint64_t t = thresholds[k];
    if (o.raw.size() != o.size()) throw std::logic_error("pruning needs the raw counts of every order");
    std::vector<bool>& mask = keep[k];
    mask.assign(o.size(), true);
    if (t == 0) continue;
    for (std::size_t r = 0; r < o.size(); ++r) {
      const bool special = k == 0 && o.row(r)[0] <= kEos;  // <unk>, <s>, </s>
      mask[r] = special || o.raw[r] > t;
    }
  }
  return keep;
}

namespace {

template <class T>
void keep_rows(std::vector<T>& values, const std::vector<bool>& keep, std::size_t width) {
  std::size_t out = 0;
  for (std::size_t r = 0; r < keep.size(); ++r) {
    if (!keep[r]) continue;
    for (std::size_t j = 0; j < width; ++j) values[out * width + j] = values[r * width + j];
    ++out;
  }
  values.resize(out * width);
  values.shrink_to_fit();
}

}  // namespace

void drop_pruned(BackoffModel& model, const PruneMask& keep) {
  if (keep.size() != model.tables.size()) throw std::logic_error("pruning mask of another order");
  for (std::size_t k = 0; k < keep.size(); ++k) {
    NGramTable& t = model.tables[k];
    if (keep[k].size() != t.size()) throw std::logic_error("pruning mask of another table size");
    keep_rows(t.words, keep[k], static_cast<std::size_t>(t.n));
    keep_rows(t.log10_prob, keep[k], 1);
    keep_rows(t.log10_backoff, keep[k], 1);
  }
  // A pruned unigram leaves the vocabulary too (as it leaves lmplz's ARPA file: kenlm then
  // reads the word as <unk>). The unigram table held every id in order, so the kept ids are
  // renumbered in the same order, and every table stays sorted.
  if (model.vocab.size() != keep[0].size()) throw std::logic_error("unigram table is not the vocabulary");
  std::vector<WordId> new_id(model.vocab.size(), 0);
  std::vector<std::string> vocab;
  for (std::size_t old = 0; old < model.vocab.size(); ++old) {
    if (!keep[0][old]) continue;
    new_id[old] = static_cast<WordId>(vocab.size());
    vocab.push_back(std::move(model.vocab[old]));
  }
  model.vocab.swap(vocab);
  for (NGramTable& t : model.tables)
    for (WordId& w : t.words) w = new_id[w];
}

}  // namespace collapse
