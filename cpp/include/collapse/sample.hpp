// Exact ancestral sampling from an n-gram model in backoff form.
//
// The model defines, for every history h and every word w of the vocabulary,
//   p(w | h) = prob(h w)                     if the n-gram h w is stored
//            = backoff(h) * p(w | h[1:])      otherwise,
// and a sequence is drawn word by word from <s> until </s> (or max_length words).
// The sampler draws from this distribution normalised over the vocabulary (a no-op for
// a properly normalised model), with <s> given probability 0: it is never a successor.
//
// Forward structure. A "state" is the longest suffix of the history (at most order-1
// words) that has stored successors; every other history gives, after normalisation, the
// same distribution as that state. States are the rows of the tables of orders
// 1..order-1 that have successors, plus the empty context (the root, whose successors
// are the unigrams). Because tables are sorted, a state's successors are one contiguous
// block of the next table, over which the sampler keeps a cumulative array.
//
// Exactness of one draw at state c: with A = stored mass of c and
// L = backoff mass of c (everything not stored under c), the word is drawn from the
// stored block with probability A / (A + L) by binary search in the cumulative array;
// otherwise from p(. | parent(c)) restricted to words not stored under c, by rejection
// (drawing from the parent's own exact sampler until the word is not stored under c),
// falling back to explicit enumeration after many rejections so that no draw can loop
// for long. Both branches draw from the same target, so the mixture is exact.
//
// Temperature T is exact and fast too: p(w|h)^(1/T) keeps the backoff form (stored
// probabilities and backoff weights raised to 1/T), so a tempered sampler is the same
// structure built from scaled log-probabilities. top-k and top-p list the state's
// tempered distribution in (probability desc, id asc) order (merging the words stored
// along the state's chain with the precomputed unigram order), keep the top-k words, then
// the smallest prefix reaching mass top_p, and renormalise (slower; memoised per state
// within a call).
//
// Randomness: sequence i is drawn from the Philox stream (seed, i), so the output does
// not depend on the number of threads or on how sequences are split into calls.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "collapse/backoff_model.hpp"
#include "collapse/rng.hpp"

namespace collapse {

struct SampleOptions {
  std::uint64_t num_sequences = 0;
  std::uint64_t seed = 0;
  std::uint64_t first_sequence = 0;  // sequence i of the output uses stream first_sequence + i
  std::uint32_t max_length = 4096;   // words per sequence, </s> excluded
  std::uint32_t top_k = 0;           // 0: no top-k truncation
  double top_p = 1.0;                // 1: no top-p truncation
  int threads = 0;                   // 0: hardware concurrency
};

// Sampled sequences as a corpus: tokens (no <s>, no </s>) and document offsets.
struct SampledCorpus {
  std::vector<WordId> tokens;
  std::vector<std::int64_t> offsets;  // num_sequences + 1 entries
};

class Sampler {
 public:
  // Builds the forward structure from a validated model. temperature > 0 (finite).
  // Throws std::invalid_argument for models the sampler cannot use (NaN values, a stored
  // n-gram whose prefix is not stored, no word of positive probability).
  explicit Sampler(std::shared_ptr<const BackoffModel> model, double temperature = 1.0);

  SampledCorpus sample(const SampleOptions& options) const;

  int order() const { return order_; }
  std::size_t vocab_size() const { return vocab_size_; }
  double temperature() const { return temperature_; }

  // The tempered, normalised distribution p(. | history) over the vocabulary, computed by
  // the backoff formula (used by the truncating path and exposed for tests).
  // history: word ids, oldest first, without <s> unless it begins the sequence.
  std::vector<double> distribution(const std::vector<WordId>& history) const;

  // Number of states (contexts with successors, root included).
  std::size_t num_states() const { return hot_state_.size(); }

  // Bytes the sampler keeps (its own arrays; the model's tables, which it shares, excluded).
  std::size_t bytes() const;

  // --- internals used by the sampling routines (public for the .cpp helpers) ---
  struct Draw {
    WordId word;
    std::uint32_t next;  // the state after emitting word
  };
  Draw draw_exact(std::uint32_t state, Philox& rng) const;
  std::uint32_t next_state(const Draw& d) const { return d.next; }
  std::uint32_t root() const { return 0; }
  std::uint32_t start_state() const { return start_state_; }
  void state_distribution(std::uint32_t state, std::vector<double>& out) const;
  // The draw of `word` at `state`: the word and the next state, read from the row of the
  // longest stored suffix of state + word.
  Draw locate(std::uint32_t state, WordId word) const;
  static constexpr std::uint32_t kNoState = 0xFFFFFFFFu;

  // Per-thread scratch space of the truncating path.
  struct TruncationScratch {
    std::vector<std::uint32_t> mark;
    std::uint32_t epoch = 0;
    std::vector<std::pair<double, WordId>> explicit_words;
  };
  // The words top-k then top-p keep at `state`, in (probability desc, id asc) order, with
  // their unnormalised tempered probabilities.
  void truncated_distribution(std::uint32_t state, std::uint32_t top_k, double top_p, TruncationScratch& scratch,
                              std::vector<WordId>& words, std::vector<double>& probs) const;

 private:
  // Whether w is stored under `state` (and its row there): binary search over the block's
  // last words in the model's table. Inline: the backoff branch's rejection check.
  bool stored_under(std::uint32_t state, WordId w, std::uint64_t* row = nullptr) const {
    const HotState& st = hot_state_[state];
    const std::uint64_t len = st.length;
    if (len == 0) {  // the root stores every word (row == id)
      if (row) *row = w;
      return true;
    }
    const WordId* col = last_words_[len];
    const std::uint64_t stride = len + 1;
    std::uint64_t first = st.begin, n = st.size;
    while (n > 0) {  // lower bound
      const std::uint64_t half = n / 2;
      if (col[(first + half) * stride] < w) {
        first += half + 1;
        n -= half + 1;
      } else {
        n = half;
      }
    }
    if (first == std::uint64_t{st.begin} + st.size || col[first * stride] != w) return false;
    if (row) *row = first;
    return true;
  }
  void sample_interleaved(const SampleOptions& opt, std::uint64_t begin, std::uint64_t end, std::vector<WordId>& out,
                          std::vector<std::int64_t>& lengths) const;
  Draw draw_by_enumeration(std::uint32_t state, Philox& rng) const;
  // Slow-path values recomputed from the model instead of kept (bit-identical to what the
  // construction computed): the tempered probability of row r of table k, and a state's
  // backoff factor (its own tempered backoff times those of the skipped suffixes: stored
  // rows without successors between it and its parent).
  double row_prob(int k, std::uint64_t r) const;
  double backoff_factor(std::uint32_t state) const;
  // Calls visit(word, p, r) for the rows r of `state`'s block in order, p being the row's
  // stored tempered probability as the difference of consecutive cumulative sums (the
  // values the construction's cumulative sums give, so slow paths match the fast ones).
  template <class Visit>
  void for_each_stored(std::uint32_t state, Visit&& visit) const;
  // The last word of row r of table k, read from the model's table (shared, not copied).
  WordId last_word(int k, std::uint64_t r) const {
    return last_words_[static_cast<std::size_t>(k)][r * static_cast<std::uint64_t>(k + 1)];
  }

  int order_ = 0;
  std::size_t vocab_size_ = 0;
  double temperature_ = 1.0;
  double inv_temperature_ = 1.0;

  // Per table k: the first row's last word in the model's table (stride k+1 ids). The
  // model is immutable and held by model_, so the pointers stay valid.
  std::vector<const WordId*> last_words_;
  // Walker/Vose alias tables for blocks of at least kAliasMinBlock rows (O(1) draws).
  // Smaller blocks draw by binary search over the cumulative stored mass, kept in the
  // rows' `keep` field (unused by them otherwise).
  static constexpr std::uint64_t kAliasMinBlock = 16;

  // What one draw reads, packed so that a draw touches one cache line per state and per
  // row. hot_state_ is the only per-state record (the slow paths read it too). Tables
  // have fewer than 2^32 rows (checked), so a block's begin fits 32 bits.
  struct HotState {
    double mass;         // Z
    double stored_mass;  // A
    std::uint32_t begin;
    std::uint32_t size;
    std::uint32_t parent;
    std::uint32_t length;
  };
  static_assert(sizeof(HotState) == 32, "HotState is two to a cache line");
  struct HotRow {
    double keep;               // alias blocks: probability of keeping this slot; small
                               // blocks: cumulative stored mass up to this row
    WordId word;
    std::uint32_t next;        // next state
    WordId other_word;         // word and next state of the alias slot, so that a draw
    std::uint32_t other_next;  // reads one row only
  };
  static_assert(sizeof(HotRow) == 24, "HotRow is 24 bytes");
  std::vector<HotState> hot_state_;
  // Whether the sampling loop's look-ahead runs: some state above the root can fall into
  // the backoff branch (chains of dependent reads) and the hot data is past kLookaheadMinBytes.
  bool use_lookahead_ = false;
  static constexpr std::size_t kLookaheadMinBytes = std::size_t{32} << 20;
  std::vector<std::vector<HotRow>> hot_row_;

  std::uint32_t start_state_ = 0;          // the state of history "<s>"
  std::vector<double> root_prob_;          // tempered unigram probabilities by word id
  std::vector<WordId> root_order_;         // words of positive unigram probability, (prob desc, id asc)

  std::shared_ptr<const BackoffModel> model_;  // its tables' words and values, shared
};

}  // namespace collapse
