// Scoring with a hash index over the model's n-grams: the standard backoff recursion,
//   log p(w | h) = prob(h_m w) + sum of backoff(h_j) for the contexts h_j longer than the
//   longest stored match h_m w,
// walking down from the longest context that exists (the state kenlm keeps).
#include "collapse/score.hpp"

#include <stdexcept>

#include "ngram_keys.hpp"

namespace collapse {
namespace {

std::uint64_t hash_words(const WordId* w, int n) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(n + 1);
  for (int i = 0; i < n; ++i) {
    h ^= w[i];
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  return h ^ (h >> 29);
}

}  // namespace

NGramIndex::NGramIndex(std::shared_ptr<const BackoffModel> model) : model_(std::move(model)) {
  validate(*model_);
  for (const NGramTable& t : model_->tables) {
    if (t.size() >= 0xFFFFFFFFu) throw std::invalid_argument("n-gram table too large to index");
    std::size_t cap = 16;
    while (cap < t.size() * 2) cap <<= 1;
    std::vector<Slot> slots(cap, Slot{0, 0});
    const std::uint64_t mask = cap - 1;
    for (std::size_t r = 0; r < t.size(); ++r) {
      const std::uint64_t h = hash_words(t.row(r), t.n);
      std::size_t i = h & mask;
      while (slots[i].row_plus_one) i = (i + 1) & mask;
      slots[i] = Slot{h, static_cast<std::uint32_t>(r + 1)};
    }
    slots_.push_back(std::move(slots));
    masks_.push_back(mask);
  }
}

std::int64_t NGramIndex::find(const WordId* words, int n) const {
  const NGramTable& t = model_->tables[n - 1];
  const std::vector<Slot>& slots = slots_[n - 1];
  const std::uint64_t mask = masks_[n - 1];
  const std::uint64_t h = hash_words(words, n);
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots[i];
    if (!s.row_plus_one) return -1;
    if (s.hash == h) {
      const std::size_t r = s.row_plus_one - 1;
      if (std::equal(words, words + n, t.row(r))) return static_cast<std::int64_t>(r);
    }
  }
}

ScoreResult score_corpus(const NGramIndex& index, const CorpusView& corpus, int threads) {
  const BackoffModel& model = index.model();
  const int order = model.order;
  const std::size_t vocab_size = model.vocab.size();
  ScoreResult result;
  result.log10_prob.assign(corpus.n_docs, 0.0);
  threads = detail::resolve_threads(threads);
  if (corpus.n_tokens < 4096) threads = 1;
  std::vector<std::uint64_t> oov_per_thread(threads, 0);

  detail::run_threads(threads, [&](int t) {
    const std::size_t lo = corpus.n_docs * t / threads, hi = corpus.n_docs * (t + 1) / threads;
    // history holds the last order-1 words; `state` of them form the longest stored
    // context (kenlm's state), so longer contexts need not be looked up.
    std::vector<WordId> buf(static_cast<std::size_t>(order) + 1);
    std::uint64_t oov = 0;
    for (std::size_t d = lo; d < hi; ++d) {
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      const std::size_t k = corpus.doc_length(d);
      std::vector<WordId> hist{kBos};
      int state = std::min(1, order - 1);  // <s> is a unigram of every model
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
        // Try contexts of length state, state-1, ..., 0.
        double lp = 0.0;
        int matched = 0;
        const std::size_t hs = hist.size();
        for (int len = state; len >= 0; --len) {
          std::copy(hist.end() - len, hist.end(), buf.begin());
          buf[len] = w;
          const std::int64_t row = index.find(buf.data(), len + 1);
          if (row >= 0) {
            lp += model.tables[len].log10_prob[row];
            matched = len + 1;
            break;
          }
          if (len > 0) {
            const std::int64_t ctx = index.find(buf.data(), len);
            if (ctx >= 0) lp += model.tables[len - 1].log10_backoff[ctx];
          }
        }
        (void)hs;
        total += lp;
        hist.push_back(w);
        if (static_cast<int>(hist.size()) > order - 1) hist.erase(hist.begin(), hist.end() - (order - 1));
        state = std::min(matched, order - 1);
        if (state > static_cast<int>(hist.size())) state = static_cast<int>(hist.size());
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
