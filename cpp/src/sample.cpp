// Ancestral sampling: exact draws at a state, the truncating (top-k / top-p) path, and
// the threaded loop over sequences.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "collapse/parallel.hpp"
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

// search_cumulative over the cumulative masses a small block keeps in its rows' `keep`.
template <class Row>
std::uint64_t search_rows(const Row* rows, std::uint64_t first, std::uint64_t last, double x) {
  std::uint64_t lo = first, n = last - first;
  while (n > 0) {  // upper bound: the first row whose cumulative mass exceeds x
    const std::uint64_t half = n / 2;
    if (!(x < rows[lo + half].keep)) {
      lo += half + 1;
      n -= half + 1;
    } else {
      n = half;
    }
  }
  if (lo == last) --lo;
  while (lo > first && rows[lo - 1].keep == rows[lo].keep) --lo;
  return lo;
}

}  // namespace

template <class Visit>
void Sampler::for_each_stored(std::uint32_t state, Visit&& visit) const {
  const HotState& st = hot_state_[state];
  const int len = static_cast<int>(st.length);
  const HotRow* rows = hot_row_[static_cast<std::size_t>(len)].data();
  const bool small_block = st.size < kAliasMinBlock;  // its rows keep the cumulative sums
  double a = 0.0;
  for (std::uint64_t r = st.begin; r < std::uint64_t{st.begin} + st.size; ++r) {
    const double before = a;
    a = small_block ? rows[r].keep : a + row_prob(len, r);
    visit(rows[r].word, a - before, r);
  }
}

Sampler::Draw Sampler::draw_exact(std::uint32_t state, Philox& rng) const {
  const HotState& st = hot_state_[state];
  const double x = rng.uniform() * st.mass;
  // The root has no backoff mass; the length test only guards x rounding up to Z.
  if (x < st.stored_mass || st.length == 0) {
    const std::uint64_t b = st.begin, size = st.size;
    const HotRow* rows = hot_row_[st.length].data();
    std::uint64_t r;
    if (size >= kAliasMinBlock) {
      // A fresh uniform picks a slot and decides between the slot and its alias.
      const double u = rng.uniform() * static_cast<double>(size);
      std::uint64_t i = static_cast<std::uint64_t>(u);
      if (i >= size) i = size - 1;
      const HotRow& slot = rows[b + i];
      if ((u - static_cast<double>(i)) < slot.keep) return Draw{slot.word, slot.next};
      return Draw{slot.other_word, slot.other_next};
    }
    r = search_rows(rows, b, b + size, x);
    return Draw{rows[r].word, rows[r].next};
  }
  // Backoff branch: p(. | parent) restricted to words not stored under this state.
  for (int i = 0; i < kMaxRejections; ++i) {
    const Draw d = draw_exact(st.parent, rng);
    if (!stored_under(state, d.word)) return d;
  }
  return draw_by_enumeration(state, rng);
}

Sampler::Draw Sampler::draw_by_enumeration(std::uint32_t state, Philox& rng) const {
  std::vector<double> dist;
  state_distribution(hot_state_[state].parent, dist);
  const HotState& st = hot_state_[state];
  for_each_stored(state, [&](WordId w, double, std::uint64_t) { dist[w] = 0.0; });
  double total = 0.0;
  for (double p : dist) total += p;
  if (!(total > 0.0)) {
    // Rounding made the leftover look positive while nothing is left: stay exact for
    // what remains, the stored block.
    std::vector<double> cum;
    double acc = 0.0;
    for_each_stored(state, [&](WordId, double, std::uint64_t r) { cum.push_back(acc += row_prob(st.length, r)); });
    const std::uint64_t i = search_cumulative(cum.data(), 0, cum.size(), rng.uniform() * st.stored_mass);
    const HotRow& row = hot_row_[st.length][st.begin + i];
    return Draw{row.word, row.next};
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
  return locate(st.parent, chosen);
}

Sampler::Draw Sampler::locate(std::uint32_t state, WordId word) const {
  for (std::uint32_t s = state;; s = hot_state_[s].parent) {
    std::uint64_t row;
    if (stored_under(s, word, &row)) return Draw{word, hot_row_[hot_state_[s].length][row].next};
  }
}

void Sampler::state_distribution(std::uint32_t state, std::vector<double>& out) const {
  // Chain from the root up to `state`; apply each level's factor, then its stored rows.
  std::vector<std::uint32_t> chain;
  for (std::uint32_t s = state; s != kNoState; s = hot_state_[s].parent) chain.push_back(s);
  out.assign(vocab_size_, 0.0);
  for_each_stored(0, [&](WordId w, double p, std::uint64_t) { out[w] = p; });
  for (std::size_t i = chain.size() - 1; i-- > 0;) {
    const std::uint32_t s = chain[i];
    const double f = backoff_factor(s);
    for (double& p : out) p *= f;
    for_each_stored(s, [&](WordId w, double p, std::uint64_t) { out[w] = p; });
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
    const std::int64_t row = find_row(t, words);
    if (row >= 0) {
      // The longest stored suffix's next state: the longest suffix of it, hence of the
      // history, that has successors.
      state = hot_row_[static_cast<std::size_t>(len - 1)][static_cast<std::size_t>(row)].next;
      break;
    }
  }
  std::vector<double> out;
  state_distribution(state, out);
  return out;
}

void Sampler::truncated_distribution(std::uint32_t state, std::uint32_t top_k, double top_p,
                                     TruncationScratch& scratch, std::vector<WordId>& words,
                                     std::vector<double>& probs) const {
  // Words stored at some level of the chain above the root get explicit probabilities
  // (factor of the longer levels times their stored value); every other word w has
  // p = F * unigram(w), with F the product of all factors, so those follow the
  // precomputed unigram order. Merging the two sorted lists gives the words in
  // (probability desc, id asc) order without scanning the vocabulary.
  if (scratch.mark.size() != vocab_size_) scratch.mark.assign(vocab_size_, 0);
  if (++scratch.epoch == 0) {
    std::fill(scratch.mark.begin(), scratch.mark.end(), 0);
    scratch.epoch = 1;
  }
  const std::uint32_t epoch = scratch.epoch;
  auto& explicit_words = scratch.explicit_words;
  explicit_words.clear();
  double mult = 1.0;
  for (std::uint32_t s = state; hot_state_[s].length != 0; s = hot_state_[s].parent) {
    for_each_stored(s, [&](WordId w, double stored_p, std::uint64_t) {
      if (scratch.mark[w] == epoch) return;
      scratch.mark[w] = epoch;
      const double p = mult * stored_p;
      if (p > 0.0) explicit_words.emplace_back(p, w);
    });
    mult *= backoff_factor(s);
  }
  std::sort(explicit_words.begin(), explicit_words.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  const double total_all = hot_state_[state].mass;
  words.clear();
  probs.clear();
  std::size_t ei = 0, ui = 0;
  const std::size_t limit = top_k > 0 ? top_k : vocab_size_;
  // Next word of the merged order, or false when both lists are exhausted.
  auto next = [&](WordId& w, double& p) -> bool {
    while (ui < root_order_.size() && scratch.mark[root_order_[ui]] == epoch) ++ui;
    const bool has_e = ei < explicit_words.size();
    const bool has_u = ui < root_order_.size();
    if (!has_e && !has_u) return false;
    const double pu = has_u ? mult * root_prob_[root_order_[ui]] : -1.0;
    if (has_u && (!has_e || pu > explicit_words[ei].first ||
                  (pu == explicit_words[ei].first && root_order_[ui] < explicit_words[ei].second))) {
      w = root_order_[ui++];
      p = pu;
    } else {
      w = explicit_words[ei].second;
      p = explicit_words[ei++].first;
    }
    return p > 0.0;
  };
  WordId w;
  double p;
  if (top_p >= 1.0) {
    while (words.size() < limit && next(w, p)) {
      words.push_back(w);
      probs.push_back(p);
    }
    return;
  }
  // top-p on the top-k renormalised distribution: its total is needed first.
  double total = total_all;
  if (top_k > 0 && top_k < vocab_size_) {
    while (words.size() < limit && next(w, p)) {
      words.push_back(w);
      probs.push_back(p);
    }
    total = 0.0;
    for (double q : probs) total += q;
    const double need = top_p * total;
    double acc = 0.0;
    std::size_t cut = probs.size();
    for (std::size_t i = 0; i < probs.size(); ++i) {
      acc += probs[i];
      if (acc >= need) {
        cut = i + 1;
        break;
      }
    }
    words.resize(cut);
    probs.resize(cut);
    return;
  }
  const double need = top_p * total;
  double acc = 0.0;
  while (next(w, p)) {
    words.push_back(w);
    probs.push_back(p);
    acc += p;
    if (acc >= need) break;
  }
}

namespace {

// A truncated (top-k / top-p) distribution of one state: kept words, their cumulative
// mass, and the state after each.
struct Truncated {
  std::vector<WordId> words;
  std::vector<double> cumulative;
  std::vector<std::uint32_t> next;
};

}  // namespace

void Sampler::sample_interleaved(const SampleOptions& opt, std::uint64_t begin, std::uint64_t end,
                                 std::vector<WordId>& out, std::vector<std::int64_t>& lengths) const {
  // Sequences [begin, end) advanced a word at a time in round-robin lanes: after each
  // word the next state's record is prefetched, and the other lanes' work hides that
  // memory latency. Each sequence still reads only its own stream, so the output is the
  // same as drawing the sequences one after another.
  // More lanes with the look-ahead: its steps need lanes spaced apart. Without it, 8.
  const std::size_t n_lanes_max = use_lookahead_ ? 12 : 8;
  struct Lane {
    Philox rng;
    std::uint64_t seq;
    std::uint32_t state;
    std::uint32_t len;
    // Look-ahead: a copy of the stream replays the coming draw's first steps (reading
    // only records already prefetched) to prefetch the row it will pick. Hints only:
    // the real draw still reads `rng`, so the output does not depend on them.
    Philox peek_rng;
    std::uint32_t peek_state;
    bool peek_pending;
  };
  // Lanes ahead of the current one at which the look-ahead starts and takes its second
  // step (the parent's draw when the first step falls into the backoff branch).
  constexpr std::size_t kPeekFirst = 6, kPeekSecond = 4, kPeekThird = 2;
  // One look-ahead step at lane.peek_state: prefetch the row the draw will read, or, in
  // the backoff branch, the parent's record and the stored words the rejection checks.
  auto peek_step = [&](Lane& lane) {
    const HotState& st = hot_state_[lane.peek_state];
    const double x = lane.peek_rng.uniform() * st.mass;
    const std::uint64_t b = st.begin, size = st.size;
    if (x < st.stored_mass || st.length == 0) {
      lane.peek_pending = false;
      if (size >= kAliasMinBlock) {
        const double u = lane.peek_rng.uniform() * static_cast<double>(size);
        std::uint64_t i = static_cast<std::uint64_t>(u);
        if (i >= size) i = size - 1;
        __builtin_prefetch(&hot_row_[st.length][b + i]);
      } else {
        __builtin_prefetch(&hot_row_[st.length][b]);
        __builtin_prefetch(&hot_row_[st.length][b + size - 1]);
      }
      return;
    }
    __builtin_prefetch(&hot_state_[st.parent]);
    // The words the rejection check will search (the first, middle and last of the block).
    const WordId* col = last_words_[st.length];
    const std::uint64_t stride = st.length + 1;
    __builtin_prefetch(col + b * stride);
    __builtin_prefetch(col + (b + size / 2) * stride);
    __builtin_prefetch(col + (b + size - 1) * stride);
    lane.peek_state = st.parent;
    lane.peek_pending = true;
  };
  std::vector<std::vector<WordId>> seq_out(end - begin);
  std::vector<Lane> lanes;
  std::uint64_t next_seq = begin;
  auto fresh = [&]() {
    Philox rng(opt.seed, opt.first_sequence + next_seq);
    return Lane{rng, next_seq++, start_state_, 0, rng, start_state_, false};
  };
  while (lanes.size() < n_lanes_max && next_seq < end) lanes.push_back(fresh());
  while (!lanes.empty()) {
    for (std::size_t j = 0; j < lanes.size();) {
      if (use_lookahead_) {
        // Indices ahead, wrapped without a division (a hot loop).
        const std::size_t n_lanes = lanes.size();
        std::size_t a = j + kPeekFirst, c = j + kPeekSecond, e = j + kPeekThird;
        while (a >= n_lanes) a -= n_lanes;
        while (c >= n_lanes) c -= n_lanes;
        while (e >= n_lanes) e -= n_lanes;
        Lane& first = lanes[a];
        first.peek_rng = first.rng;
        first.peek_state = first.state;
        peek_step(first);
        Lane& second = lanes[c];
        if (second.peek_pending) peek_step(second);
        Lane& third = lanes[e];
        if (third.peek_pending) peek_step(third);
      }
      Lane& lane = lanes[j];
      const Draw d = draw_exact(lane.state, lane.rng);
      bool done = d.word == kEos;
      if (!done) {
        seq_out[lane.seq - begin].push_back(d.word);
        lane.state = d.next;
        __builtin_prefetch(&hot_state_[lane.state]);
        done = ++lane.len >= opt.max_length;
      }
      if (!done) {
        ++j;
        continue;
      }
      lengths[lane.seq] = lane.len;
      if (next_seq < end) {
        lane = fresh();
        ++j;
      } else {
        lanes[j] = lanes.back();
        lanes.pop_back();
      }
    }
  }
  for (auto& v : seq_out) out.insert(out.end(), v.begin(), v.end());
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
    TruncationScratch scratch;
    std::vector<WordId> kept;
    std::vector<double> kept_probs;
    auto truncated_of = [&](std::uint32_t state) -> const Truncated& {
      auto it = cache.find(state);
      if (it != cache.end()) return it->second;
      truncated_distribution(state, opt.top_k, opt.top_p, scratch, kept, kept_probs);
      if (cached_entries > (std::size_t{1} << 22)) {  // bound memory: start over
        cache.clear();
        cached_entries = 0;
      }
      Truncated t;
      t.words = kept;
      double acc = 0.0;
      for (std::size_t i = 0; i < kept.size(); ++i) {
        const WordId w = kept[i];
        acc += kept_probs[i];
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
      if (!truncating) {
        sample_interleaved(opt, c * chunk, end, out, lengths);
        continue;
      }
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
  run_threads(threads, [&](int) { worker(); });

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
