// Scoring a corpus under a BackoffModel, as kenlm scores a sentence with bos and eos:
// each document is <s> w1 .. wk </s>, every word and </s> is predicted, ids outside the
// model (and <unk>) are scored as <unk>.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/ngram_count.hpp"

namespace collapse {

// Hash index over a model's n-grams for left-to-right scoring. An n-gram w1..wn is
// identified by (w1, identity of its suffix w2..wn): unigrams by their id, higher orders
// by their slot in the order's open-addressing table. Keys are exact (no hash-only
// matching), and looking up ever longer contexts of a word costs one probe each.
// Requires every stored n-gram's suffix to be stored too (true of lmplz's and our models).
//
// Memory: each order's table has rows / kMaxLoad + 1 16-byte slots (any size, not a power
// of two: the home slot is the hash scaled to the size), 32 bytes an n-gram; a power of
// two cost 32-64 by where the row count fell. Load 0.65 (24.6 bytes) made scoring 1.6x
// slower (longer probes on the misses every lookup ends with), 0.5 about 1.1-1.3x.
// Building looks up every row's suffix on `threads` threads (0: all), then inserts in
// row order, so the index is the same for any thread count.
class NGramIndex {
 public:
  explicit NGramIndex(std::shared_ptr<const BackoffModel> model, int threads = 1);
  static constexpr double kMaxLoad = 0.5;  // linear probing: ~2.5 slots per miss, ~1.5 per hit
  const BackoffModel& model() const { return *model_; }

  struct Slot {
    WordId first;           // w1
    std::uint32_t suffix;   // identity of w2..wn; kEmpty marks an empty slot
    float log10_prob;
    float log10_backoff;
  };
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

  // Identity (slot) of the n-gram (first, suffix) in order n >= 2, or -1.
  std::int64_t find(int n, WordId first, std::uint32_t suffix) const {
    const std::vector<Slot>& slots = slots_[n - 2];
    const std::uint64_t size = slots.size();
    for (std::uint64_t i = home(first, suffix, size);;) {
      const Slot& s = slots[i];
      if (s.suffix == kEmpty) return -1;
      if (s.first == first && s.suffix == suffix) return static_cast<std::int64_t>(i);
      if (++i == size) i = 0;
    }
  }
  const Slot& slot(int n, std::uint32_t id) const { return slots_[n - 2][id]; }
  float unigram_prob(WordId w) const { return unigram_prob_[w]; }
  float unigram_backoff(WordId w) const { return unigram_backoff_[w]; }
  // Identity of the stored n-gram words[0..n), or -1 (for tests and tools).
  std::int64_t find_words(const WordId* words, int n) const;

  static std::uint64_t hash(WordId first, std::uint32_t suffix) {
    std::uint64_t h = (static_cast<std::uint64_t>(first) << 32) | suffix;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
  }
  // The hash scaled to [0, size) (multiply-high: uniform for any size, no division).
  static std::uint64_t home(WordId first, std::uint32_t suffix, std::uint64_t size) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(hash(first, suffix)) * size) >> 64);
  }
  std::size_t bytes() const;

 private:
  std::shared_ptr<const BackoffModel> model_;
  std::vector<float> unigram_prob_, unigram_backoff_;  // by word id
  std::vector<std::vector<Slot>> slots_;               // orders 2..N
};

struct ScoreResult {
  std::vector<double> log10_prob;  // per document, </s> included
  std::uint64_t tokens = 0;        // words predicted, </s> excluded
  std::uint64_t oov = 0;           // words scored as <unk>
};

// tokens are model ids (ids >= vocab size count as <unk>).
ScoreResult score_corpus(const NGramIndex& index, const CorpusView& corpus, int threads);

}  // namespace collapse
