// Sampler construction: the forward structure (states, successor blocks, cumulative
// arrays, next-state links and backoff masses) built once from a BackoffModel.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "collapse/sample.hpp"

namespace collapse {
namespace {

// Row index of the n-gram `words` (t.n ids) in the sorted table t, or -1.
std::int64_t find_row(const NGramTable& t, const WordId* words) {
  const std::size_t n = static_cast<std::size_t>(t.n);
  std::size_t lo = 0, hi = t.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const WordId* r = t.row(mid);
    if (std::lexicographical_compare(r, r + n, words, words + n))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < t.size() && std::equal(words, words + n, t.row(lo))) return static_cast<std::int64_t>(lo);
  return -1;
}

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
      if (std::isnan(lp) || std::isnan(lb) || lp > 0.0f || lb == HUGE_VALF)
        throw std::invalid_argument("model holds a NaN, infinite or positive log10 value in its " +
                                    std::to_string(k + 1) + "-grams");
      const WordId w = t.row(r)[k];
      last_word_[k][r] = w;
      prob[k][r] = (w == kBos) ? 0.0 : tempered(lp, inv_t);
      backoff[k][r] = tempered(lb, inv_t);
    }
  }

  // Successor blocks: rows of table k+1 sharing their first k+1 words follow the row of
  // that prefix in table k.
  std::vector<std::vector<std::uint64_t>> block_begin(n_tables), block_end(n_tables);
  for (int k = 0; k + 1 < n_tables; ++k) {
    const NGramTable& t = model.tables[k];
    const NGramTable& next = model.tables[k + 1];
    block_begin[k].assign(t.size(), 0);
    block_end[k].assign(t.size(), 0);
    const std::size_t plen = static_cast<std::size_t>(k + 1);
    std::size_t i = 0;
    while (i < next.size()) {
      const WordId* first = next.row(i);
      std::size_t j = i + 1;
      while (j < next.size() && std::equal(first, first + plen, next.row(j))) ++j;
      const std::int64_t p = find_row(t, first);
      if (p < 0)
        throw std::invalid_argument("model stores a " + std::to_string(k + 2) +
                                    "-gram whose prefix is not stored (row " + std::to_string(i) +
                                    "); the sampler needs every prefix stored, as ARPA files from lmplz have");
      block_begin[k][p] = i;
      block_end[k][p] = j;
      i = j;
    }
  }

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
  std::vector<WordId> buf;
  for (std::size_t s = 1; s < n_states; ++s) {
    const int len = state_length_[s];
    const WordId* words = model.tables[len - 1].row(state_row[s]);
    double factor = backoff[len - 1][state_row[s]];
    std::uint32_t parent = 0;
    for (int sl = len - 1; sl >= 1; --sl) {
      const WordId* suffix = words + (len - sl);
      const std::int64_t r = find_row(model.tables[sl - 1], suffix);
      if (r < 0) continue;  // not stored: backoff weight 1
      const std::uint32_t st = state_of_row_[sl - 1][r];
      if (st != kNoState) {
        parent = st;
        break;
      }
      factor *= backoff[sl - 1][r];
    }
    state_parent_[s] = parent;
    state_backoff_factor_[s] = factor;
  }

  // Next state after emitting the last word of a row: the longest suffix of the row
  // (at most order-1 words) that has successors. Computed through the row's suffix in
  // the table below, which is already done.
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
      const WordId* words = t.row(r);
      for (int sl = k; sl >= 1; --sl) {  // suffix of sl words
        const std::int64_t sr = find_row(model.tables[sl - 1], words + (k + 1 - sl));
        if (sr < 0) continue;
        st = next_state_[sl - 1][sr];
        break;
      }
      next_state_[k][r] = st;
    }
  }
  // The start state: the history "<s>".
  start_state_ = next_state_[0][kBos];

  // Cumulative stored mass per block, and the masses per state, shortest states first.
  cumulative_.resize(n_tables);
  for (int k = 0; k < n_tables; ++k) cumulative_[k].assign(model.tables[k].size(), 0.0);
  state_stored_mass_.assign(n_states, 0.0);
  state_mass_.assign(n_states, 0.0);
  state_stored_prob_.assign(n_states, 0.0);
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
    state_stored_prob_[s] = a / z;
  }
}

bool Sampler::stored_under(std::uint32_t state, WordId w, std::uint64_t* row) const {
  const int len = state_length_[state];
  if (len == 0) {  // the root stores every word (row == id)
    if (row) *row = w;
    return true;
  }
  const std::vector<WordId>& words = last_word_[len];
  auto first = words.begin() + static_cast<std::ptrdiff_t>(state_block_begin_[state]);
  auto last = words.begin() + static_cast<std::ptrdiff_t>(state_block_end_[state]);
  auto it = std::lower_bound(first, last, w);
  if (it == last || *it != w) return false;
  if (row) *row = static_cast<std::uint64_t>(it - words.begin());
  return true;
}

}  // namespace collapse
