// Scoring, as kenlm does it: for each word, look up ever longer n-grams ending in it
// (w, c1 w, c2 c1 w, ...) until one is missing; then
//   log10 p(w | h) = prob(longest match) + sum of the backoffs of the stored contexts
//                    longer than the match's context,
// and those context backoffs are the ones found while predicting the previous word.
#include "collapse/score.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "ngram_keys.hpp"

namespace collapse {

NGramIndex::NGramIndex(std::shared_ptr<const BackoffModel> model, int threads) : model_(std::move(model)) {
  const BackoffModel& m = *model_;
  validate(m);
  threads = detail::resolve_threads(threads);
  const std::size_t V = m.vocab.size();
  unigram_prob_.assign(V, kLog10Zero);
  unigram_backoff_.assign(V, 0.0f);
  std::vector<bool> present(V, false);
  const NGramTable& uni = m.tables[0];
  for (std::size_t r = 0; r < uni.size(); ++r) {
    const WordId w = uni.row(r)[0];
    unigram_prob_[w] = uni.log10_prob[r];
    unigram_backoff_[w] = uni.log10_backoff[r];
    present[w] = true;
  }
  if (!present[kUnk]) throw std::invalid_argument("model has no <unk> unigram");
  std::vector<std::uint32_t> suffix;  // per row of the order being indexed: its suffix's identity
  for (int n = 2; n <= m.order; ++n) {
    const NGramTable& t = m.tables[n - 1];
    const std::size_t rows = t.size();
    // Slot identities are uint32 with kEmpty reserved; the load bound keeps size < kEmpty.
    if (rows >= static_cast<std::size_t>(kEmpty * kMaxLoad) - 16) throw std::invalid_argument("n-gram table too large to index");
    const std::size_t size = std::max<std::size_t>(16, static_cast<std::size_t>(static_cast<double>(rows) / kMaxLoad) + 1);
    // The suffix lookups (n - 1 probes a row, into the finished lower orders) are the
    // expensive part and read only: on threads. A missing suffix is marked kEmpty.
    suffix.assign(rows, kEmpty);
    const int workers = rows < 4096 ? 1 : threads;
    detail::run_threads(workers, [&](int k) {
      const std::size_t begin = rows * k / workers, end = rows * (k + 1) / workers;
      for (std::size_t r = begin; r < end; ++r) {
        const std::int64_t id = find_words(t.row(r) + 1, n - 1);
        if (id >= 0) suffix[r] = static_cast<std::uint32_t>(id);
      }
    });
    slots_.emplace_back(size, Slot{0, kEmpty, 0.0f, 0.0f});
    std::vector<Slot>& slots = slots_.back();
    for (std::size_t r = 0; r < rows; ++r) {
      const WordId* w = t.row(r);
      const std::uint32_t sfx = suffix[r];
      if (sfx == kEmpty) {
        std::string words;
        for (int i = 0; i < n; ++i) words += (i ? " " : "") + (w[i] < V ? m.vocab[w[i]] : std::string("?"));
        throw std::invalid_argument("n-gram '" + words + "' is stored without its suffix (unsupported model)");
      }
      std::uint64_t i = home(w[0], sfx, size);
      while (slots[i].suffix != kEmpty) {
        if (slots[i].first == w[0] && slots[i].suffix == sfx) throw std::invalid_argument("duplicate n-gram");
        if (++i == size) i = 0;
      }
      slots[i] = Slot{w[0], sfx, t.log10_prob[r], t.log10_backoff[r]};
    }
  }
}

std::size_t NGramIndex::bytes() const {
  std::size_t b = (unigram_prob_.capacity() + unigram_backoff_.capacity()) * sizeof(float);
  for (const auto& s : slots_) b += s.capacity() * sizeof(Slot);
  return b;
}

std::int64_t NGramIndex::find_words(const WordId* words, int n) const {
  const WordId last = words[n - 1];
  if (last >= unigram_prob_.size()) return -1;
  // Unigrams: present iff their probability was set or they are in the table; the
  // vocabulary of a validated model is exactly its unigrams.
  std::int64_t id = last;
  for (int k = 2; k <= n && id >= 0; ++k) id = find(k, words[n - k], static_cast<std::uint32_t>(id));
  return id;
}

ScoreResult score_corpus(const NGramIndex& index, const CorpusView& corpus, int threads) {
  const BackoffModel& model = index.model();
  const int order = model.order;
  const std::size_t vocab_size = model.vocab.size();
  ScoreResult result;
  result.log10_prob.assign(corpus.n_docs, 0.0);
  threads = detail::resolve_threads(threads);
  if (corpus.n_tokens < 8192) threads = 1;
  // Documents split into contiguous ranges of about equal token counts.
  std::vector<std::size_t> bounds{0};
  for (int t = 1; t < threads; ++t) {
    const std::int64_t target = static_cast<std::int64_t>(corpus.n_tokens * t / threads);
    const std::size_t d = static_cast<std::size_t>(
        std::lower_bound(corpus.offsets, corpus.offsets + corpus.n_docs + 1, target) - corpus.offsets);
    bounds.push_back(std::max(bounds.back(), std::min(d, corpus.n_docs)));
  }
  bounds.push_back(corpus.n_docs);
  std::vector<std::uint64_t> oov_per_thread(threads, 0);

  detail::run_threads(threads, [&](int t) {
    // State: the last words (newest first) and, for j = 1..ctx_len, the backoff of the
    // stored context of length j ending at the last word.
    std::vector<WordId> recent(static_cast<std::size_t>(order), kBos);
    std::vector<std::uint32_t> new_id(order + 1);
    std::vector<float> ctx_bo(order + 1), new_bo(order + 1);
    std::uint64_t oov = 0;
    for (std::size_t d = bounds[t]; d < bounds[t + 1]; ++d) {
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      const std::size_t k = corpus.doc_length(d);
      int ctx_len = order > 1 ? 1 : 0;
      recent[0] = kBos;
      ctx_bo[1] = index.unigram_backoff(kBos);
      double total = 0.0;
      for (std::size_t p = 0; p <= k; ++p) {
        WordId w = kEos;
        if (p < k) {
          w = doc[p];
          if (w >= vocab_size || w == kUnk || w == kBos || w == kEos) {
            w = kUnk;
            ++oov;
          }
        }
        float prob = index.unigram_prob(w);
        new_id[1] = w;
        new_bo[1] = index.unigram_backoff(w);
        int match = 1;
        std::uint32_t cur = w;
        for (int j = 1; j <= ctx_len; ++j) {
          const std::int64_t id = index.find(j + 1, recent[j - 1], cur);
          if (id < 0) break;
          const NGramIndex::Slot& s = index.slot(j + 1, static_cast<std::uint32_t>(id));
          cur = static_cast<std::uint32_t>(id);
          prob = s.log10_prob;
          match = j + 1;
          new_id[match] = cur;
          new_bo[match] = s.log10_backoff;
        }
        double lp = prob;
        for (int j = match; j <= ctx_len; ++j) lp += ctx_bo[j];
        total += lp;
        ctx_len = std::min(match, order - 1);
        for (int j = 1; j <= ctx_len; ++j) ctx_bo[j] = new_bo[j];
        for (int j = order - 1; j > 0; --j) recent[j] = recent[j - 1];
        recent[0] = w;
      }
      result.log10_prob[d] = total;
    }
    oov_per_thread[t] = oov;
  });
  for (auto o : oov_per_thread) result.oov += o;
  result.tokens = corpus.n_tokens;
  return result;
}

}  // namespace collapse
