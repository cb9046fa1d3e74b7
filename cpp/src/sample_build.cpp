// Sampler construction: the forward structure (states, successor blocks, cumulative
// arrays, next-state links and backoff masses) built once from a BackoffModel.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "collapse/alias.hpp"
#include "collapse/ngram_count.hpp"
#include "collapse/parallel.hpp"
#include "collapse/sample.hpp"

namespace collapse {
namespace {

// 10^(log10 x / T); ARPA's -99 (and anything below) means exactly 0.
double tempered(float log10_value, double inv_temperature) {
  if (log10_value <= kLog10Zero) return 0.0;
  return std::pow(10.0, static_cast<double>(log10_value) * inv_temperature);
}

}  // namespace

Sampler::Sampler(std::shared_ptr<const BackoffModel> model_ptr, double temperature)
    : temperature_(temperature), model_(std::move(model_ptr)) {
  if (!model_) throw std::invalid_argument("sampler needs a model");
  const BackoffModel& model = *model_;
  if (!(temperature > 0.0) || !std::isfinite(temperature))
    throw std::invalid_argument("temperature must be a positive finite number");
  validate(model);
  order_ = model.order;
  vocab_size_ = model.vocab.size();
  if (vocab_size_ >= kNoState) throw std::invalid_argument("vocabulary too large for the sampler");
  inv_temperature_ = 1.0 / temperature;
  const double inv_t = inv_temperature_;
  const int n_tables = order_;
  const int threads = resolve_threads(0);
  // Calls fn(i) for i in [0, n) on all threads (contiguous slices; small n on one).
  auto parallel_for = [threads](std::size_t n, auto&& fn) {
    const int t_count = n < (1u << 14) ? 1 : threads;
    run_threads(t_count, [&](int t) {
      const std::size_t lo = n * static_cast<std::size_t>(t) / t_count, hi = n * static_cast<std::size_t>(t + 1) / t_count;
      for (std::size_t i = lo; i < hi; ++i) fn(i);
    });
  };

  // Unigram rows must be exactly the vocabulary, in id order (read_arpa and the
  // estimators make them so), so that row == word id in the root's block.
  const NGramTable& uni = model.tables[0];
  if (uni.size() != vocab_size_)
    throw std::invalid_argument("the unigram table must hold every vocabulary word exactly once");
  for (std::size_t i = 0; i < uni.size(); ++i)
    if (uni.words[i] != i) throw std::invalid_argument("the unigram table must hold every vocabulary word exactly once");
  for (const NGramTable& t : model.tables)
    if (t.size() >= kNoState) throw std::invalid_argument("n-gram table too large for the sampler");

  // The rows' last words are read from the model's tables (shared, not copied).
  last_words_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) last_words_[k] = model.tables[k].words.data() + k;
  // Tempered probabilities per row (construction only; <s> is never a successor; the
  // slow paths recompute them, row_prob). The backoffs are tempered where they are read.
  std::vector<std::vector<double>> prob(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    prob[k].resize(t.size());
    std::atomic<bool> bad{false};
    parallel_for(t.size(), [&](std::size_t r) {
      const float lp = t.log10_prob[r], lb = t.log10_backoff[r];
      // Positive values are allowed: a blank (insert_blanks) after a positive backoff, or an
      // unnormalised model; the draws are normalised either way.
      if (std::isnan(lp) || std::isnan(lb) || lp == HUGE_VALF || lb == HUGE_VALF) bad = true;
      prob[k][r] = (last_word(k, r) == kBos) ? 0.0 : tempered(lp, inv_t);
    });
    if (bad)
      throw std::invalid_argument("model holds a NaN or +infinite log10 value in its " + std::to_string(k + 1) +
                                  "-grams");
  }
  auto backoff = [&](int k, std::size_t r) { return tempered(model.tables[k].log10_backoff[r], inv_t); };

  // States: the root, then the rows with successors, table by table (so ids grow with
  // length). Successor blocks: rows of table k+1 sharing their first k+1 words follow the
  // row of that prefix in table k (found by a merge scan, both tables being sorted); the
  // state is created as its block is found. Alongside, suffix_row[k+1][q]: the row in
  // table k of row q's suffix (its last k+1 words), found inside the block of the
  // prefix's suffix, so no search spans a whole table.
  constexpr std::uint32_t kNone = 0xFFFFFFFFu;
  // Exactly as many records as states (a vector grown by push_back would keep up to
  // twice that): one per distinct prefix of each table above the unigrams.
  {
    std::size_t n_states = 1;
    for (int k = 1; k < n_tables; ++k) {
      const NGramTable& t = model.tables[k];
      for (std::size_t i = 0; i < t.size(); ++i)
        if (i == 0 || !std::equal(t.row(i), t.row(i) + k, t.row(i - 1))) ++n_states;
    }
    hot_state_.reserve(n_states);
  }
  hot_state_.push_back(HotState{0.0, 0.0, 0, static_cast<std::uint32_t>(uni.size()), kNoState, 0});
  std::vector<std::uint32_t> state_row{0};  // per state: its row in table length-1 (construction only)
  std::vector<std::size_t> first_state_of_length{0, 1};
  std::vector<std::vector<std::uint32_t>> suffix_row(n_tables);
  // Per table k < order-1, per row: its state id, or kNoState (construction only).
  std::vector<std::vector<std::uint32_t>> state_of_row(n_tables > 1 ? n_tables - 1 : 0);
  for (int k = 0; k + 1 < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    const NGramTable& next = model.tables[k + 1];
    state_of_row[k].assign(t.size(), kNoState);
    suffix_row[k + 1].assign(next.size(), kNone);
    const std::size_t plen = static_cast<std::size_t>(k + 1);
    std::size_t i = 0, p = 0;
    while (i < next.size()) {
      const WordId* first = next.row(i);
      std::size_t j = i + 1;
      while (j < next.size() && std::equal(first, first + plen, next.row(j))) ++j;
      while (p < t.size() && std::lexicographical_compare(t.row(p), t.row(p) + plen, first, first + plen)) ++p;
      if (p == t.size() || !std::equal(first, first + plen, t.row(p)))
        throw std::invalid_argument("model stores a " + std::to_string(k + 2) +
                                    "-gram whose prefix is not stored (row " + std::to_string(i) +
                                    "); the sampler needs every prefix stored, as ARPA files from lmplz have");
      if (hot_state_.size() >= kNoState) throw std::invalid_argument("model has too many contexts");
      if (j - i > 0xFFFFFFFFULL) throw std::invalid_argument("context with too many successors");
      state_of_row[k][p] = static_cast<std::uint32_t>(hot_state_.size());
      hot_state_.push_back(HotState{0.0, 0.0, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j - i),
                                    kNoState, static_cast<std::uint32_t>(k + 1)});
      state_row.push_back(static_cast<std::uint32_t>(p));
      i = j;
    }
    first_state_of_length.push_back(hot_state_.size());
    // Suffix rows of table k+1, block by block (the blocks of table k are known now).
    const std::size_t first_state = first_state_of_length[k + 1];
    const std::size_t n_blocks = hot_state_.size() - first_state;
    parallel_for(n_blocks, [&](std::size_t bi) {
      const HotState& st = hot_state_[first_state + bi];
      const std::size_t prow = state_row[first_state + bi];
      for (std::uint64_t q = st.begin; q < st.begin + st.size; ++q) {
        const WordId w = next.row(q)[k + 1];
        if (k == 0) {
          suffix_row[1][q] = w;  // unigram row == word id
          continue;
        }
        const std::uint32_t sp = suffix_row[k][prow];
        const std::uint32_t sp_state = sp != kNone ? state_of_row[k - 1][sp] : kNoState;
        if (sp != kNone && sp_state != kNoState) {
          std::uint64_t row;
          if (stored_under(sp_state, w, &row)) suffix_row[k + 1][q] = static_cast<std::uint32_t>(row);
        } else if (sp == kNone) {
          const std::int64_t r = find_row(t, next.row(q) + 1);
          if (r >= 0) suffix_row[k + 1][q] = static_cast<std::uint32_t>(r);
        }
        // sp stored without successors: the suffix (sp + w) is not stored either.
      }
    });
  }
  const std::size_t n_states = hot_state_.size();
  // Rows of the suffixes of row r of table k (k+1 words), longest first: calls
  // visit(j, row in table j or -1) for j = k-1 .. 0 until visit returns false.
  auto for_each_suffix = [&](int k, std::uint64_t r, auto&& visit) {
    const WordId* words = model.tables[k].row(r);
    std::int64_t cur = static_cast<std::int64_t>(r);
    for (int j = k - 1; j >= 0; --j) {
      std::int64_t sr;
      if (cur >= 0) {
        const std::uint32_t x = suffix_row[j + 1][static_cast<std::size_t>(cur)];
        sr = (x == kNone) ? -1 : static_cast<std::int64_t>(x);
      } else {
        sr = find_row(model.tables[j], words + (k - j));
      }
      if (!visit(j, sr)) return;
      cur = sr;
    }
  };

  // Parents: the longest proper suffix with successors; the factor is the state's own
  // backoff times the backoffs of the skipped suffixes (stored rows without successors).
  // Per state (construction only; the slow paths recompute it, backoff_factor).
  std::vector<double> factor_of(n_states, 0.0);
  parallel_for(n_states - 1, [&](std::size_t i) {
    const std::size_t s = i + 1;
    const int len = static_cast<int>(hot_state_[s].length);
    double factor = backoff(len - 1, state_row[s]);
    std::uint32_t parent = 0;
    for_each_suffix(len - 1, state_row[s], [&](int j, std::int64_t sr) {
      if (sr < 0) return true;  // not stored: backoff weight 1
      const std::uint32_t st = state_of_row[j][static_cast<std::size_t>(sr)];
      if (st != kNoState) {
        parent = st;
        return false;
      }
      factor *= backoff(j, static_cast<std::size_t>(sr));
      return true;
    });
    hot_state_[s].parent = parent;
    factor_of[s] = factor;
  });
  std::vector<std::uint32_t>().swap(state_row);

  // Next state after emitting the last word of a row: the longest suffix of the row
  // (at most order-1 words) that has successors: the row's own state, or else the next
  // state of its longest stored proper suffix (already computed, tables going up).
  // Written straight into the hot rows.
  hot_row_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    std::vector<HotRow>& rows = hot_row_[k];
    rows.resize(t.size());
    parallel_for(t.size(), [&](std::size_t r) {
      std::uint32_t st = 0;
      if (k + 1 < n_tables && state_of_row[k][r] != kNoState) {
        st = state_of_row[k][r];
      } else {
        for_each_suffix(k, r, [&](int j, std::int64_t sr) {
          if (sr < 0) return true;
          st = hot_row_[j][static_cast<std::size_t>(sr)].next;
          return false;
        });
      }
      rows[r] = HotRow{0.0, last_word(k, r), st, 0, 0};
    });
  }
  std::vector<std::vector<std::uint32_t>>().swap(suffix_row);
  std::vector<std::vector<std::uint32_t>>().swap(state_of_row);
  root_prob_ = prob[0];
  for (WordId w = 0; w < vocab_size_; ++w)
    if (root_prob_[w] > 0.0) root_order_.push_back(w);
  std::sort(root_order_.begin(), root_order_.end(), [this](WordId a, WordId b) {
    return root_prob_[a] > root_prob_[b] || (root_prob_[a] == root_prob_[b] && a < b);
  });
  // The start state: the history "<s>".
  start_state_ = hot_row_[0][kBos].next;

  // Alias tables for large blocks, built into per-thread scratch and packed into the hot
  // rows (with the word and next state of the alias slot, so a draw reads one row).
  {
    std::atomic<std::size_t> next{0};
    run_threads(threads, [&](int) {
      AliasScratch scratch;
      std::vector<double> keep;
      std::vector<std::uint32_t> other;
      for (std::size_t s; (s = next.fetch_add(1)) < n_states;) {
        const HotState& st = hot_state_[s];
        const std::uint64_t b = st.begin, size = st.size;
        if (size < kAliasMinBlock) continue;
        const std::vector<double>& p = prob[st.length];
        double total = 0.0;
        for (std::uint64_t r = b; r < b + size; ++r) total += p[r];
        if (!(total > 0.0)) continue;  // never drawn from: the block has no stored mass
        keep.resize(size);
        other.resize(size);
        build_alias(p.data() + b, size, total, keep.data(), other.data(), scratch);
        HotRow* rows = hot_row_[st.length].data() + b;
        for (std::uint64_t i = 0; i < size; ++i) rows[i].keep = keep[i];
        for (std::uint64_t i = 0; i < size; ++i) {
          rows[i].other_word = rows[other[i]].word;
          rows[i].other_next = rows[other[i]].next;
        }
      }
    });
  }

  // Cumulative stored mass per block, and the masses per state, shortest states first
  // (a state's leftover mass reads its parent's total): the states of one length in
  // parallel.
  for (std::size_t L = 0; L + 1 < first_state_of_length.size(); ++L) {
    const std::size_t s0 = first_state_of_length[L], s1 = first_state_of_length[L + 1];
    std::atomic<int> failure{0};  // 1: the root, 2: another state has no mass, 3: overflow
    parallel_for(s1 - s0, [&](std::size_t i) {
      const std::size_t s = s0 + i;
      HotState& st = hot_state_[s];
      const int len = static_cast<int>(st.length);
      HotRow* rows = hot_row_[len].data();
      const bool small_block = st.size < kAliasMinBlock;  // drawn by search over the cumulative mass
      const std::vector<double>& p = prob[len];
      double a = 0.0, b = 0.0;
      for (std::uint64_t r = st.begin; r < st.begin + st.size; ++r) {
        a += p[r];
        if (small_block) rows[r].keep = a;
        if (s != 0 && p[r] > 0.0) {
          // Unnormalised p(w | parent) by the backoff formula, for the stored word w.
          const WordId w = rows[r].word;
          std::uint32_t a_state = st.parent;
          double mult = 1.0;
          for (;;) {
            std::uint64_t row;
            if (stored_under(a_state, w, &row)) {
              b += mult * prob[hot_state_[a_state].length][row];
              break;
            }
            mult *= factor_of[a_state];
            a_state = hot_state_[a_state].parent;
          }
        }
      }
      double leftover = 0.0;
      if (s != 0) leftover = std::max(0.0, factor_of[s] * (hot_state_[st.parent].mass - b));
      const double z = a + leftover;
      // 3: 10^x past the largest double (a log10 value above ~300), or inf - inf.
      if (!(z > 0.0) || !std::isfinite(z)) failure = !std::isfinite(z) ? 3 : s == 0 ? 1 : 2;
      st.stored_mass = a;
      st.mass = z;
    });
    if (failure == 3)
      throw std::invalid_argument("model's probabilities overflow (a log10 backoff or probability too large)");
    if (failure == 1) throw std::invalid_argument("model gives no word a positive probability");
    if (failure == 2) throw std::invalid_argument("model gives every word probability 0 after some context");
  }
  std::vector<std::vector<double>>().swap(prob);
  std::vector<double>().swap(factor_of);

  for (std::size_t s = 1; s < n_states; ++s)
    if (hot_state_[s].stored_mass < hot_state_[s].mass) use_lookahead_ = true;
  // The look-ahead pays only when the hot data outgrows a typical last-level cache; below
  // that its extra work outweighs the misses it hides (measured: a train-head trigram
  // of ~17 MB got slower, a 10M-token corpus's trigram faster).
  std::size_t hot_bytes = hot_state_.size() * sizeof(HotState);
  for (const auto& rows : hot_row_) hot_bytes += rows.size() * sizeof(HotRow);
  if (hot_bytes < kLookaheadMinBytes) use_lookahead_ = false;
  // Tests force either loop (COLLAPSE_SAMPLER_LOOKAHEAD=always|never) to check that both
  // draw exactly the same sequences on models of any size.
  if (const char* force = std::getenv("COLLAPSE_SAMPLER_LOOKAHEAD")) {
    const std::string mode(force);
    if (mode == "always") use_lookahead_ = true;
    if (mode == "never") use_lookahead_ = false;
  }
  release_free_memory();
}

double Sampler::row_prob(int k, std::uint64_t r) const {
  if (k == 0) return root_prob_[r];
  if (last_word(k, r) == kBos) return 0.0;
  return tempered(model_->tables[static_cast<std::size_t>(k)].log10_prob[r], inv_temperature_);
}

double Sampler::backoff_factor(std::uint32_t state) const {
  // As the construction: the state's own backoff, then those of its stored proper
  // suffixes longer than the parent, longest first (the same products in the same order).
  const HotState& st = hot_state_[state];
  const int len = static_cast<int>(st.length);
  const BackoffModel& model = *model_;
  const WordId* words = model.tables[static_cast<std::size_t>(len)].row(st.begin);  // the context: its first len ids
  const NGramTable& own = model.tables[static_cast<std::size_t>(len - 1)];
  double factor = tempered(own.log10_backoff[static_cast<std::size_t>(find_row(own, words))], inv_temperature_);
  const int parent_len = static_cast<int>(hot_state_[st.parent].length);
  for (int m = len - 1; m > parent_len; --m) {
    const NGramTable& t = model.tables[static_cast<std::size_t>(m - 1)];
    const std::int64_t r = find_row(t, words + (len - m));
    if (r >= 0) factor *= tempered(t.log10_backoff[static_cast<std::size_t>(r)], inv_temperature_);
  }
  return factor;
}

std::size_t Sampler::bytes() const {
  std::size_t total = hot_state_.capacity() * sizeof(HotState) + root_prob_.capacity() * sizeof(double) +
                      root_order_.capacity() * sizeof(WordId) + last_words_.capacity() * sizeof(const WordId*);
  for (const auto& rows : hot_row_) total += rows.capacity() * sizeof(HotRow);
  return total;
}

}  // namespace collapse
