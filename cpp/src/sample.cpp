// Ancestral sampling: exact draws at a state, the truncating (top-k / top-p) path, and
// the threaded loop over sequences.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "collapse/sample.hpp"

namespace collapse {
namespace {

// Rejections tolerated in the backoff branch before switching to explicit enumeration.
// Expected rejections are 1 / (1 - excluded mass); the cap only bounds the worst case.
constexpr int kMaxRejections = 64;

// Index of the first cumulative value above x in [first, last), x < *(last - 1).
std::uint64_t search_cumulative(const double* cum, std::uint64_t first, std::uint64_t last, double x) {
  const double* it = std::upper_bound(cum + first, cum + last, x);
  if (it == cum + last) --it;  // x rounded up to the total: take the last entry
  // Skip back over a zero-probability tail entry (equal cumulative values).
  while (it > cum + first && *(it - 1) == *it) --it;
  return static_cast<std::uint64_t>(it - cum);
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

}  // namespace

Sampler::Draw Sampler::draw_exact(std::uint32_t state, Philox& rng) const {
  const int len = state_length_[state];
  const double x = rng.uniform() * state_mass_[state];
  const double a = state_stored_mass_[state];
  if (x < a) {
    const std::uint64_t r =
        search_cumulative(cumulative_[len].data(), state_block_begin_[state], state_block_end_[state], x);
    return Draw{last_word_[len][r], static_cast<std::uint32_t>(len), r};
  }
  // Backoff branch: p(. | parent) restricted to words not stored under this state.
  const std::uint32_t parent = state_parent_[state];
  for (int i = 0; i < kMaxRejections; ++i) {
    const Draw d = draw_exact(parent, rng);
    if (!stored_under(state, d.word)) return d;
  }
  return draw_by_enumeration(state, rng);
}

Sampler::Draw Sampler::draw_by_enumeration(std::uint32_t state, Philox& rng) const {
  std::vector<double> dist;
  state_distribution(state_parent_[state], dist);
  const int len = state_length_[state];
  for (std::uint64_t r = state_block_begin_[state]; r < state_block_end_[state]; ++r) dist[last_word_[len][r]] = 0.0;
  double total = 0.0;
  for (double p : dist) total += p;
  if (!(total > 0.0)) {
    // Rounding made the leftover look positive while nothing is left: stay exact for
    // what remains, the stored block.
    const std::uint64_t r = search_cumulative(cumulative_[len].data(), state_block_begin_[state],
                                              state_block_end_[state], rng.uniform() * state_stored_mass_[state]);
    return Draw{last_word_[len][r], static_cast<std::uint32_t>(len), r};
  }
  const double x = rng.uniform() * total;
  double acc = 0.0;
  WordId chosen = 0;
  for (std::size_t w = 0; w < dist.size(); ++w) {
    if (dist[w] <= 0.0) continue;
    chosen = static_cast<WordId>(w);
    acc += dist[w];
    if (x < acc) break;
  }
  return locate(state_parent_[state], chosen);
}

Sampler::Draw Sampler::locate(std::uint32_t state, WordId word) const {
  for (std::uint32_t s = state;; s = state_parent_[s]) {
    std::uint64_t row;
    if (stored_under(s, word, &row)) return Draw{word, static_cast<std::uint32_t>(state_length_[s]), row};
  }
}

void Sampler::state_distribution(std::uint32_t state, std::vector<double>& out) const {
  // Chain from the root up to `state`; apply each level's factor, then its stored rows.
  std::vector<std::uint32_t> chain;
  for (std::uint32_t s = state; s != kNoState; s = state_parent_[s]) chain.push_back(s);
  out.assign(vocab_size_, 0.0);
  const std::vector<double>& root_cum = cumulative_[0];
  for (std::size_t w = 0; w < vocab_size_; ++w) out[w] = root_cum[w] - (w ? root_cum[w - 1] : 0.0);
  for (std::size_t i = chain.size() - 1; i-- > 0;) {
    const std::uint32_t s = chain[i];
    const int len = state_length_[s];
    const double f = state_backoff_factor_[s];
    for (double& p : out) p *= f;
    const std::vector<double>& cum = cumulative_[len];
    const std::uint64_t b = state_block_begin_[s];
    for (std::uint64_t r = b; r < state_block_end_[s]; ++r)
      out[last_word_[len][r]] = cum[r] - (r > b ? cum[r - 1] : 0.0);
  }
  double total = 0.0;
  for (double p : out) total += p;
  for (double& p : out) p /= total;
}

std::vector<double> Sampler::distribution(const std::vector<WordId>& history) const {
  for (WordId w : history)
    if (w >= vocab_size_) throw std::invalid_argument("history word id outside the vocabulary");
  std::uint32_t state = 0;
  const int max_len = std::min<int>(order_ - 1, static_cast<int>(history.size()));
  for (int len = max_len; len >= 1; --len) {
    const NGramTable& t = model_->tables[len - 1];
    const WordId* words = history.data() + history.size() - len;
    // Binary search for the suffix row.
    std::size_t lo = 0, hi = t.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      const WordId* r = t.row(mid);
      if (std::lexicographical_compare(r, r + len, words, words + len))
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < t.size() && std::equal(words, words + len, t.row(lo)) && state_of_row_[len - 1][lo] != kNoState) {
      state = state_of_row_[len - 1][lo];
      break;
    }
  }
  std::vector<double> out;
  state_distribution(state, out);
  return out;
}

namespace {

// A truncated (top-k / top-p) distribution of one state: kept words, their cumulative
// mass, and the state after each.
struct Truncated {
  std::vector<WordId> words;
  std::vector<double> cumulative;
  std::vector<std::uint32_t> next;
};

// Words of positive probability ordered by (probability desc, id asc): the order that
// decides which words top-k and top-p keep, ties included.
struct ByProbDesc {
  const std::vector<double>* p;
  bool operator()(WordId a, WordId b) const {
    const double pa = (*p)[a], pb = (*p)[b];
    return pa > pb || (pa == pb && a < b);
  }
};

}  // namespace

// Kept set for top-k then top-p (on the top-k renormalised distribution), as
// transformers' samplers apply them after temperature.
static void truncate(const std::vector<double>& dist, std::uint32_t top_k, double top_p, std::vector<WordId>& kept) {
  kept.clear();
  for (std::size_t w = 0; w < dist.size(); ++w)
    if (dist[w] > 0.0) kept.push_back(static_cast<WordId>(w));
  ByProbDesc cmp{&dist};
  if (top_k > 0 && kept.size() > top_k) {
    std::nth_element(kept.begin(), kept.begin() + top_k, kept.end(), cmp);
    kept.resize(top_k);
  }
  if (top_p < 1.0) {
    double total = 0.0;
    for (WordId w : kept) total += dist[w];
    const double need = top_p * total;
    // Quickselect on mass: find the smallest prefix (in ByProbDesc order) whose mass
    // reaches `need`, without sorting the whole vocabulary.
    std::size_t lo = 0, hi = kept.size();
    double before = 0.0;  // mass of kept[0, lo)
    while (hi - lo > 64) {
      const std::size_t mid = lo + (hi - lo) / 2;
      std::nth_element(kept.begin() + lo, kept.begin() + mid, kept.begin() + hi, cmp);
      double s = 0.0;
      for (std::size_t i = lo; i < mid; ++i) s += dist[kept[i]];
      if (before + s >= need) {
        hi = mid;
      } else {
        before += s;
        lo = mid;
      }
    }
    std::sort(kept.begin() + lo, kept.begin() + hi, cmp);
    std::size_t cut = hi;
    double acc = before;
    for (std::size_t i = lo; i < hi; ++i) {
      acc += dist[kept[i]];
      if (acc >= need) {
        cut = i + 1;
        break;
      }
    }
    kept.resize(cut);
  }
  std::sort(kept.begin(), kept.end());
}

SampledCorpus Sampler::sample(const SampleOptions& opt) const {
  if (opt.max_length == 0) throw std::invalid_argument("max_length must be at least 1");
  if (!(opt.top_p > 0.0 && opt.top_p <= 1.0)) throw std::invalid_argument("top_p must be in (0, 1]");
  const bool truncating = opt.top_k > 0 || opt.top_p < 1.0;
  const std::uint64_t n = opt.num_sequences;
  const std::uint64_t chunk = 64;
  const std::uint64_t n_chunks = (n + chunk - 1) / chunk;
  std::vector<std::vector<WordId>> chunk_tokens(n_chunks);
  std::vector<std::int64_t> lengths(n, 0);
  std::atomic<std::uint64_t> next_chunk{0};

  auto worker = [&]() {
    std::unordered_map<std::uint32_t, Truncated> cache;
    std::size_t cached_entries = 0;
    std::vector<double> dist;
    std::vector<WordId> kept;
    auto truncated_of = [&](std::uint32_t state) -> const Truncated& {
      auto it = cache.find(state);
      if (it != cache.end()) return it->second;
      state_distribution(state, dist);
      truncate(dist, opt.top_k, opt.top_p, kept);
      if (cached_entries > (std::size_t{1} << 22)) {  // bound memory: start over
        cache.clear();
        cached_entries = 0;
      }
      Truncated t;
      t.words = kept;
      double acc = 0.0;
      for (WordId w : kept) {
        acc += dist[w];
        t.cumulative.push_back(acc);
        t.next.push_back(next_state(locate(state, w)));
      }
      cached_entries += kept.size() + 1;
      return cache.emplace(state, std::move(t)).first->second;
    };
    for (;;) {
      const std::uint64_t c = next_chunk.fetch_add(1);
      if (c >= n_chunks) break;
      std::vector<WordId>& out = chunk_tokens[c];
      const std::uint64_t end = std::min(n, (c + 1) * chunk);
      for (std::uint64_t i = c * chunk; i < end; ++i) {
        Philox rng(opt.seed, opt.first_sequence + i);
        std::uint32_t state = start_state_;
        std::uint32_t len = 0;
        while (len < opt.max_length) {
          WordId w;
          if (!truncating) {
            const Draw d = draw_exact(state, rng);
            w = d.word;
            if (w == kEos) break;
            state = next_state(d);
          } else {
            const Truncated& t = truncated_of(state);
            const double x = rng.uniform() * t.cumulative.back();
            const std::uint64_t k = search_cumulative(t.cumulative.data(), 0, t.cumulative.size(), x);
            w = t.words[k];
            if (w == kEos) break;
            state = t.next[k];
          }
          out.push_back(w);
          ++len;
        }
        lengths[i] = len;
      }
    }
  };

  const int threads = static_cast<int>(std::min<std::uint64_t>(resolve_threads(opt.threads), std::max<std::uint64_t>(n_chunks, 1)));
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
  }

  SampledCorpus result;
  result.offsets.resize(n + 1, 0);
  for (std::uint64_t i = 0; i < n; ++i) result.offsets[i + 1] = result.offsets[i] + lengths[i];
  result.tokens.reserve(static_cast<std::size_t>(result.offsets[n]));
  for (auto& v : chunk_tokens) {
    result.tokens.insert(result.tokens.end(), v.begin(), v.end());
    std::vector<WordId>().swap(v);
  }
  return result;
}

}  // namespace collapse
