// Sampler construction: the forward structure (states, successor blocks, cumulative
// arrays, next-state links and backoff masses) built once from a BackoffModel.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "collapse/alias.hpp"
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
  const double inv_t = 1.0 / temperature;
  const int n_tables = order_;

  // Unigram rows must be exactly the vocabulary, in id order (read_arpa and the
  // estimators make them so), so that row == word id in the root's block.
  const NGramTable& uni = model.tables[0];
  if (uni.size() != vocab_size_)
    throw std::invalid_argument("the unigram table must hold every vocabulary word exactly once");
  for (std::size_t i = 0; i < uni.size(); ++i)
    if (uni.words[i] != i) throw std::invalid_argument("the unigram table must hold every vocabulary word exactly once");

  // Tempered probabilities and backoffs per row; <s> is never a successor.
  std::vector<std::vector<double>> prob(n_tables), backoff(n_tables);
  last_word_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    prob[k].resize(t.size());
    backoff[k].resize(t.size());
    last_word_[k].resize(t.size());
    for (std::size_t r = 0; r < t.size(); ++r) {
      const float lp = t.log10_prob[r], lb = t.log10_backoff[r];
      // Positive values are allowed: a blank (insert_blanks) after a positive backoff, or an
      // unnormalised model; the draws are normalised either way.
      if (std::isnan(lp) || std::isnan(lb) || lp == HUGE_VALF || lb == HUGE_VALF)
        throw std::invalid_argument("model holds a NaN or +infinite log10 value in its " + std::to_string(k + 1) +
                                    "-grams");
      const WordId w = t.row(r)[k];
      last_word_[k][r] = w;
      prob[k][r] = (w == kBos) ? 0.0 : tempered(lp, inv_t);
      backoff[k][r] = tempered(lb, inv_t);
    }
  }

  // Successor blocks: rows of table k+1 sharing their first k+1 words follow the row of
  // that prefix in table k (found by a merge scan, both tables being sorted). Alongside,
  // suffix_row[k+1][q]: the row in table k of row q's suffix (its last k+1 words), found
  // inside the block of the prefix's suffix, so no search spans a whole table.
  constexpr std::uint32_t kNone = 0xFFFFFFFFu;
  for (const NGramTable& t : model.tables)
    if (t.size() >= kNone) throw std::invalid_argument("n-gram table too large for the sampler");
  std::vector<std::vector<std::uint64_t>> block_begin(n_tables), block_end(n_tables);
  std::vector<std::vector<std::uint32_t>> suffix_row(n_tables);
  for (int k = 0; k + 1 < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    const NGramTable& next = model.tables[k + 1];
    block_begin[k].assign(t.size(), 0);
    block_end[k].assign(t.size(), 0);
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
      block_begin[k][p] = i;
      block_end[k][p] = j;
      for (std::size_t q = i; q < j; ++q) {
        const WordId w = next.row(q)[k + 1];
        if (k == 0) {
          suffix_row[1][q] = w;  // unigram row == word id
          continue;
        }
        const std::uint32_t sp = suffix_row[k][p];
        if (sp != kNone) {
          const WordId* words = last_word_[k].data();
          const WordId* lo = words + block_begin[k - 1][sp];
          const WordId* hi = words + block_end[k - 1][sp];
          const WordId* it = std::lower_bound(lo, hi, w);
          if (it != hi && *it == w) suffix_row[k + 1][q] = static_cast<std::uint32_t>(it - words);
        } else {
          const std::int64_t r = find_row(t, next.row(q) + 1);
          if (r >= 0) suffix_row[k + 1][q] = static_cast<std::uint32_t>(r);
        }
      }
      i = j;
    }
  }
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

  // States: the root, then rows with successors, table by table (so ids grow with length).
  state_length_.push_back(0);
  state_block_begin_.push_back(0);
  state_block_end_.push_back(uni.size());
  state_parent_.push_back(kNoState);
  state_backoff_factor_.push_back(0.0);
  state_of_row_.resize(n_tables > 1 ? n_tables - 1 : 0);
  std::vector<std::uint64_t> state_row{0};
  for (int k = 0; k + 1 < n_tables; ++k) {
    state_of_row_[k].assign(model.tables[k].size(), kNoState);
    for (std::size_t r = 0; r < model.tables[k].size(); ++r) {
      if (block_end[k][r] == block_begin[k][r]) continue;
      if (state_length_.size() >= kNoState) throw std::invalid_argument("model has too many contexts");
      state_of_row_[k][r] = static_cast<std::uint32_t>(state_length_.size());
      state_length_.push_back(static_cast<std::uint8_t>(k + 1));
      state_block_begin_.push_back(block_begin[k][r]);
      state_block_end_.push_back(block_end[k][r]);
      state_parent_.push_back(kNoState);
      state_backoff_factor_.push_back(0.0);
      state_row.push_back(r);
    }
  }
  const std::size_t n_states = state_length_.size();

  // Parents: the longest proper suffix with successors; the factor is the state's own
  // backoff times the backoffs of the skipped suffixes (stored rows without successors).
  for (std::size_t s = 1; s < n_states; ++s) {
    const int len = state_length_[s];
    double factor = backoff[len - 1][state_row[s]];
    std::uint32_t parent = 0;
    for_each_suffix(len - 1, state_row[s], [&](int j, std::int64_t sr) {
      if (sr < 0) return true;  // not stored: backoff weight 1
      const std::uint32_t st = state_of_row_[j][static_cast<std::size_t>(sr)];
      if (st != kNoState) {
        parent = st;
        return false;
      }
      factor *= backoff[j][static_cast<std::size_t>(sr)];
      return true;
    });
    state_parent_[s] = parent;
    state_backoff_factor_[s] = factor;
  }

  // Next state after emitting the last word of a row: the longest suffix of the row
  // (at most order-1 words) that has successors: the row's own state, or else the next
  // state of its longest stored proper suffix (already computed, tables going up).
  next_state_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    next_state_[k].assign(t.size(), 0);
    for (std::size_t r = 0; r < t.size(); ++r) {
      if (k + 1 < n_tables && state_of_row_[k][r] != kNoState) {
        next_state_[k][r] = state_of_row_[k][r];
        continue;
      }
      std::uint32_t st = 0;
      for_each_suffix(k, r, [&](int j, std::int64_t sr) {
        if (sr < 0) return true;
        st = next_state_[j][static_cast<std::size_t>(sr)];
        return false;
      });
      next_state_[k][r] = st;
    }
  }
  root_prob_ = prob[0];
  for (WordId w = 0; w < vocab_size_; ++w)
    if (root_prob_[w] > 0.0) root_order_.push_back(w);
  std::sort(root_order_.begin(), root_order_.end(), [this](WordId a, WordId b) {
    return root_prob_[a] > root_prob_[b] || (root_prob_[a] == root_prob_[b] && a < b);
  });
  // The start state: the history "<s>".
  start_state_ = next_state_[0][kBos];

  // Alias tables for large blocks.
  alias_keep_.resize(n_tables);
  alias_other_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    alias_keep_[k].assign(model.tables[k].size(), 1.0);
    alias_other_[k].assign(model.tables[k].size(), 0);
  }
  {
    AliasScratch scratch;
    for (std::size_t s = 0; s < state_length_.size(); ++s) {
      const int len = state_length_[s];
      const std::uint64_t b = state_block_begin_[s], e = state_block_end_[s], size = e - b;
      if (size < kAliasMinBlock) continue;
      const std::vector<double>& p = prob[len];
      double total = 0.0;
      for (std::uint64_t r = b; r < e; ++r) total += p[r];
      if (!(total > 0.0)) continue;  // never drawn from: the block has no stored mass
      build_alias(p.data() + b, size, total, alias_keep_[len].data() + b, alias_other_[len].data() + b, scratch);
    }
  }

  // Cumulative stored mass per block, and the masses per state, shortest states first.
  cumulative_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) cumulative_[k].assign(model.tables[k].size(), 0.0);
  state_stored_mass_.assign(n_states, 0.0);
  state_mass_.assign(n_states, 0.0);
  for (std::size_t s = 0; s < n_states; ++s) {
    const int len = state_length_[s];
    std::vector<double>& cum = cumulative_[len];
    const std::vector<double>& p = prob[len];
    double a = 0.0, b = 0.0;
    for (std::uint64_t r = state_block_begin_[s]; r < state_block_end_[s]; ++r) {
      a += p[r];
      cum[r] = a;
      if (s != 0 && p[r] > 0.0) {
        // Unnormalised p(w | parent) by the backoff formula, for the stored word w.
        const WordId w = last_word_[len][r];
        std::uint32_t a_state = state_parent_[s];
        double mult = 1.0;
        for (;;) {
          std::uint64_t row;
          if (stored_under(a_state, w, &row)) {
            b += mult * prob[state_length_[a_state]][row];
            break;
          }
          mult *= state_backoff_factor_[a_state];
          a_state = state_parent_[a_state];
        }
      }
    }
    double leftover = 0.0;
    if (s != 0) leftover = std::max(0.0, state_backoff_factor_[s] * (state_mass_[state_parent_[s]] - b));
    const double z = a + leftover;
    if (!(z > 0.0) || !std::isfinite(z)) {
      if (s == 0) throw std::invalid_argument("model gives no word a positive probability");
      throw std::invalid_argument("model gives every word probability 0 after some context");
    }
    state_stored_mass_[s] = a;
    state_mass_[s] = z;
  }

  hot_state_.resize(n_states);
  for (std::size_t s = 0; s < n_states; ++s) {
    const std::uint64_t size = state_block_end_[s] - state_block_begin_[s];
    if (size > 0xFFFFFFFFULL) throw std::invalid_argument("context with too many successors");
    hot_state_[s] = HotState{state_mass_[s], state_stored_mass_[s], state_block_begin_[s],
                             static_cast<std::uint32_t>(size), state_parent_[s], state_length_[s]};
    if (state_length_[s] != 0 && state_stored_mass_[s] < state_mass_[s]) use_lookahead_ = true;
  }
  hot_row_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) {
    hot_row_[k].resize(model.tables[k].size());
    for (std::size_t r = 0; r < hot_row_[k].size(); ++r)
      hot_row_[k][r] = HotRow{alias_keep_[k][r], alias_other_[k][r], last_word_[k][r], next_state_[k][r], 0, 0};
  }
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
  // Alias targets, for rows in alias-table blocks.
  for (std::size_t s = 0; s < n_states; ++s) {
    const int len = state_length_[s];
    const std::uint64_t b = state_block_begin_[s], e = state_block_end_[s];
    if (e - b < kAliasMinBlock) continue;
    for (std::uint64_t r = b; r < e; ++r) {
      HotRow& h = hot_row_[len][r];
      h.other_word = last_word_[len][b + h.other];
      h.other_next = next_state_[len][b + h.other];
    }
  }
  // Only the packed copies are read from here on.
  std::vector<std::vector<double>>().swap(alias_keep_);
  std::vector<std::vector<std::uint32_t>>().swap(alias_other_);
  std::vector<std::vector<std::uint32_t>>().swap(next_state_);
}

bool Sampler::stored_under(std::uint32_t state, WordId w, std::uint64_t* row) const {
  // Reads the per-state arrays, not hot_state_: construction calls this before the hot
  // copies exist.
  const int len = state_length_[state];
  if (len == 0) {  // the root stores every word (row == id)
    if (row) *row = w;
    return true;
  }
  const WordId* words = last_word_[len].data();
  const WordId* first = words + state_block_begin_[state];
  const WordId* last = words + state_block_end_[state];
  const WordId* it = std::lower_bound(first, last, w);
  if (it == last || *it != w) return false;
  if (row) *row = static_cast<std::uint64_t>(it - words);
  return true;
}

}  // namespace collapse
