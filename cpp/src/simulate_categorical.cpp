// The categorical collapse process (definitions in collapse/simulate.hpp).
//
// Representation: a model is a sparse vector of integer counts over p0's support with
// their total D (p_t = counts / D), never a dense K-vector, so a generation costs
// O(support of p_t + N) rather than O(K). That keeps N << K fast (after generation 1
// the support is at most N) and N >> K fast (at most K conditional binomials).
//
// A multinomial draw of n items from a model with s support entries is done either by
//   * conditional binomials, x_i ~ Bin(n - x_<i, c_i / (D - c_<i)), when n is not small
//     against s (cost O(s)), or
//   * n categorical draws (binary search on the integer cumulative counts, or the alias
//     table for p0) when n * 4 < s (cost O(n log s) instead of O(s) binomials).
// Without-replacement draws (accumulate-subsample, mix) are conditional hypergeometrics.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "collapse/parallel.hpp"
#include "collapse/rng.hpp"
#include "collapse/simulate.hpp"
#include "collapse/simulate_variates.hpp"

namespace collapse {

Paradigm parse_paradigm(const std::string& name) {
  if (name == "replace") return Paradigm::Replace;
  if (name == "accumulate") return Paradigm::Accumulate;
  if (name == "accumulate-subsample") return Paradigm::AccumulateSubsample;
  if (name == "mix") return Paradigm::Mix;
  if (name == "fresh") return Paradigm::Fresh;
  if (name == "weighted") return Paradigm::Weighted;
  throw std::invalid_argument("unknown paradigm '" + name +
                              "' (expected replace, accumulate, accumulate-subsample, mix, fresh or weighted)");
}

const char* paradigm_name(Paradigm p) {
  switch (p) {
    case Paradigm::Replace: return "replace";
    case Paradigm::Accumulate: return "accumulate";
    case Paradigm::AccumulateSubsample: return "accumulate-subsample";
    case Paradigm::Mix: return "mix";
    case Paradigm::Fresh: return "fresh";
    case Paradigm::Weighted: return "weighted";
  }
  return "?";
}

std::vector<std::uint32_t> tail_set(const std::vector<double>& p0, double tail_fraction) {
  std::vector<std::uint32_t> support;
  for (std::size_t i = 0; i < p0.size(); ++i)
    if (p0[i] > 0.0) support.push_back(static_cast<std::uint32_t>(i));
  std::stable_sort(support.begin(), support.end(), [&](std::uint32_t a, std::uint32_t b) { return p0[a] < p0[b]; });
  // ceil(q S), with a little slack so that 0.1 * 30 = 3.0000000000000004 gives 3
  std::size_t size = static_cast<std::size_t>(std::ceil(tail_fraction * static_cast<double>(support.size()) - 1e-9));
  size = std::min(std::max<std::size_t>(size, 1), support.size());
  support.resize(size);
  std::sort(support.begin(), support.end());
  return support;
}

std::vector<int> recorded_generations(int generations, int record_every) {
  std::vector<int> gens;
  for (int g = 0; g <= generations; g += record_every) gens.push_back(g);
  if (gens.back() != generations) gens.push_back(generations);
  return gens;
}

namespace {

// Integer counts over support indices of p0 (not raw outcome ids); zero counts never stored.
struct Counts {
  std::vector<std::uint32_t> idx;
  std::vector<std::int64_t> cnt;
  std::int64_t total = 0;
  void clear() {
    idx.clear();
    cnt.clear();
    total = 0;
  }
  void push(std::uint32_t j, std::int64_t c) {
    idx.push_back(j);
    cnt.push_back(c);
  }
  std::size_t size() const { return idx.size(); }
};

// p0 restricted to its support, with everything the metrics and the real-data draws need.
struct Truth {
  std::vector<std::uint32_t> outcome;  // raw outcome id of support index j
  std::vector<double> p, log_p;
  std::vector<double> suffix_mass;     // sum_{i >= j} p[i], for conditional binomials
  std::vector<char> in_tail;
  variates::AliasTable alias;
  double entropy = 0, sum_p2 = 0, tail_mass = 0;
  // log(c) for small integer counts: the metrics need log p = log c - log D for every
  // support entry of every generation, and most counts are small.
  std::vector<double> log_count;
  double log_of(std::int64_t c) const {
    return c < static_cast<std::int64_t>(log_count.size()) ? log_count[static_cast<std::size_t>(c)]
                                                          : std::log(static_cast<double>(c));
  }
};

// A weighted model (paradigm weighted): probabilities over support indices of p0, not
// integer counts, since (1 - w) S / N + w F / N is not a count vector over a common total.
struct Probs {
  std::vector<std::uint32_t> idx;
  std::vector<double> p;
  void clear() {
    idx.clear();
    p.clear();
  }
  std::size_t size() const { return idx.size(); }
};

// Per-thread buffers, indexed by support index; `dense` and `dense_p` are all zero between uses.
struct Scratch {
  std::vector<std::int64_t> dense;
  std::vector<double> dense_p, cumulative_p;
  std::vector<std::uint32_t> touched;
  std::vector<std::int64_t> cumulative, entry_count;
  Counts a, b, c;
};

void validate(const CategoricalSpec& spec) {
  const std::size_t K = spec.p0.size();
  if (K < 2) throw std::invalid_argument("p0 must have at least K = 2 outcomes, got " + std::to_string(K));
  if (K >= (std::size_t{1} << 32)) throw std::invalid_argument("p0 has too many outcomes (K >= 2^32)");
  double total = 0.0;
  for (std::size_t i = 0; i < K; ++i) {
    const double x = spec.p0[i];
    if (!std::isfinite(x)) throw std::invalid_argument("p0 must be finite (p0[" + std::to_string(i) + "] is not)");
    if (x < 0.0) throw std::invalid_argument("p0 must be non-negative (p0[" + std::to_string(i) + "] < 0)");
    total += x;
  }
  if (std::fabs(total - 1.0) > 1e-6)
    throw std::invalid_argument("p0 must sum to 1 (within 1e-6), sums to " + std::to_string(total));
  if (spec.sample_size < 1) throw std::invalid_argument("N (sample size) must be >= 1");
  if (spec.generations < 1) throw std::invalid_argument("generations must be >= 1");
  if (!(spec.alpha >= 0.0 && spec.alpha <= 1.0)) throw std::invalid_argument("alpha must lie in [0, 1]");
  if (!(spec.weight >= 0.0 && spec.weight <= 1.0)) throw std::invalid_argument("weight must lie in [0, 1]");
  if (spec.record_every < 1) throw std::invalid_argument("record_every must be >= 1");
  if (spec.synthetic_per_generation != -1 &&
      (spec.synthetic_per_generation < 1 || spec.synthetic_per_generation > spec.sample_size))
    throw std::invalid_argument("synthetic items per generation must lie in [1, N]");
  if (!(spec.tail_fraction > 0.0 && spec.tail_fraction <= 1.0))
    throw std::invalid_argument("tail fraction must lie in (0, 1]");
  // accumulate pools (G + 1) N items
  if (static_cast<double>(spec.sample_size) * (static_cast<double>(spec.generations) + 1.0) > 4.0e18)
    throw std::invalid_argument("N * (generations + 1) is too large");
}

Truth make_truth(const CategoricalSpec& spec) {
  Truth t;
  double total = 0.0;
  for (double x : spec.p0) total += x;
  for (std::size_t i = 0; i < spec.p0.size(); ++i) {
    if (spec.p0[i] <= 0.0) continue;
    t.outcome.push_back(static_cast<std::uint32_t>(i));
    t.p.push_back(spec.p0[i] / total);  // renormalised: sums to 1 up to rounding
  }
  const std::size_t S = t.p.size();
  t.log_p.resize(S);
  t.suffix_mass.resize(S);
  t.in_tail.assign(S, 0);
  double acc = 0.0;
  for (std::size_t j = S; j-- > 0;) {
    acc += t.p[j];
    t.suffix_mass[j] = acc;
  }
  std::vector<double> dense_p(spec.p0.size());
  for (std::size_t j = 0; j < S; ++j) dense_p[t.outcome[j]] = t.p[j];
  std::vector<std::uint32_t> tail = tail_set(dense_p, spec.tail_fraction);
  std::size_t k = 0;
  for (std::size_t j = 0; j < S; ++j) {
    t.log_p[j] = std::log(t.p[j]);
    t.entropy -= t.p[j] * t.log_p[j];
    t.sum_p2 += t.p[j] * t.p[j];
    while (k < tail.size() && tail[k] < t.outcome[j]) ++k;
    if (k < tail.size() && tail[k] == t.outcome[j]) {
      t.in_tail[j] = 1;
      t.tail_mass += t.p[j];
    }
  }
  t.alias = variates::AliasTable(t.p);
  const double max_count = static_cast<double>(spec.sample_size) * (spec.generations + 1.0);
  t.log_count.resize(static_cast<std::size_t>(std::min(max_count, 65536.0)) + 1);
  for (std::size_t c = 1; c < t.log_count.size(); ++c) t.log_count[c] = std::log(static_cast<double>(c));
  return t;
}

// n items from the model counts/total, with replacement.
void draw_multinomial(Philox& rng, const Counts& model, std::int64_t n, Counts& out, Scratch& sc) {
  out.clear();
  out.total = n;
  if (n == 0) return;
  const std::size_t s = model.size();
  if (static_cast<double>(n) * 4.0 < static_cast<double>(s)) {
    sc.cumulative.resize(s);
    std::int64_t acc = 0;
    for (std::size_t i = 0; i < s; ++i) sc.cumulative[i] = (acc += model.cnt[i]);
    sc.entry_count.assign(s, 0);
    for (std::int64_t d = 0; d < n; ++d) {
      const std::int64_t x = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(model.total)));
      const std::size_t i = static_cast<std::size_t>(
          std::upper_bound(sc.cumulative.begin(), sc.cumulative.end(), x) - sc.cumulative.begin());
      ++sc.entry_count[i];
    }
    for (std::size_t i = 0; i < s; ++i)
      if (sc.entry_count[i] > 0) out.push(model.idx[i], sc.entry_count[i]);
    return;
  }
  std::int64_t rem_n = n, rem_mass = model.total;
  for (std::size_t i = 0; i < s && rem_n > 0; ++i) {
    const std::int64_t c = model.cnt[i];
    const std::int64_t x =
        c >= rem_mass ? rem_n : variates::binomial(rng, rem_n, static_cast<double>(c) / static_cast<double>(rem_mass));
    rem_mass -= c;
    rem_n -= x;
    if (x > 0) out.push(model.idx[i], x);
  }
}

// n items from a weighted model (probabilities summing to 1 up to rounding), with replacement.
void draw_multinomial(Philox& rng, const Probs& model, std::int64_t n, Counts& out, Scratch& sc) {
  out.clear();
  out.total = n;
  if (n == 0) return;
  const std::size_t s = model.size();
  double mass = 0.0;
  for (double p : model.p) mass += p;
  if (static_cast<double>(n) * 4.0 < static_cast<double>(s)) {
    sc.cumulative_p.resize(s);
    double acc = 0.0;
    for (std::size_t i = 0; i < s; ++i) sc.cumulative_p[i] = (acc += model.p[i]);
    sc.entry_count.assign(s, 0);
    for (std::int64_t d = 0; d < n; ++d) {
      const double x = rng.uniform() * acc;
      std::size_t i = static_cast<std::size_t>(
          std::upper_bound(sc.cumulative_p.begin(), sc.cumulative_p.end(), x) - sc.cumulative_p.begin());
      if (i >= s) i = s - 1;  // x rounded up to the total
      ++sc.entry_count[i];
    }
    for (std::size_t i = 0; i < s; ++i)
      if (sc.entry_count[i] > 0) out.push(model.idx[i], sc.entry_count[i]);
    return;
  }
  std::int64_t rem_n = n;
  double rem_mass = mass;
  for (std::size_t i = 0; i < s && rem_n > 0; ++i) {
    const double p = model.p[i];
    const std::int64_t x =
        i + 1 == s || p >= rem_mass ? rem_n : variates::binomial(rng, rem_n, std::min(1.0, p / rem_mass));
    rem_mass -= p;
    rem_n -= x;
    if (x > 0) out.push(model.idx[i], x);
  }
}

// n items from p0 itself (the real data).
void draw_truth(Philox& rng, const Truth& truth, std::int64_t n, Counts& out, Scratch& sc) {
  out.clear();
  out.total = n;
  if (n == 0) return;
  const std::size_t S = truth.p.size();
  if (static_cast<double>(n) * 4.0 < static_cast<double>(S)) {
    sc.touched.clear();
    for (std::int64_t d = 0; d < n; ++d) {
      const std::size_t j = truth.alias.draw(rng);
      if (sc.dense[j]++ == 0) sc.touched.push_back(static_cast<std::uint32_t>(j));
    }
    for (std::uint32_t j : sc.touched) {
      out.push(j, sc.dense[j]);
      sc.dense[j] = 0;
    }
    return;
  }
  std::int64_t rem_n = n;
  for (std::size_t j = 0; j < S && rem_n > 0; ++j) {
    const std::int64_t x =
        j + 1 == S ? rem_n : variates::binomial(rng, rem_n, std::min(1.0, truth.p[j] / truth.suffix_mass[j]));
    rem_n -= x;
    if (x > 0) out.push(static_cast<std::uint32_t>(j), x);
  }
}

// n items drawn without replacement from the multiset `pool` (conditional hypergeometrics).
void draw_without_replacement(Philox& rng, const Counts& pool, std::int64_t n, Counts& out) {
  out.clear();
  out.total = n;
  std::int64_t rem_n = n, rem_pop = pool.total;
  for (std::size_t i = 0; i < pool.size() && rem_n > 0; ++i) {
    const std::int64_t c = pool.cnt[i];
    const std::int64_t x = c >= rem_pop ? rem_n : variates::hypergeometric(rng, rem_n, c, rem_pop);
    rem_pop -= c;
    rem_n -= x;
    if (x > 0) out.push(pool.idx[i], x);
  }
}

// A multiset kept as one label (support index) per item, so that n items can be drawn
// without replacement by a partial Fisher-Yates shuffle in O(n), whatever the support.
// Any arrangement of the labels gives a uniformly random n-subset, so the list is simply
// left as the last shuffle put it.
struct ItemList {
  std::vector<std::uint32_t> labels;
  void append(const Counts& c) {
    for (std::size_t i = 0; i < c.size(); ++i) labels.insert(labels.end(), static_cast<std::size_t>(c.cnt[i]), c.idx[i]);
  }
};

void draw_items(Philox& rng, ItemList& items, std::int64_t n, Counts& out, Scratch& sc) {
  std::vector<std::uint32_t>& labels = items.labels;
  const std::uint64_t M = labels.size();
  sc.touched.clear();
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(n); ++i) {
    const std::uint64_t j = i + rng.below(M - i);
    std::swap(labels[i], labels[j]);
    const std::uint32_t label = labels[i];
    if (sc.dense[label]++ == 0) sc.touched.push_back(label);
  }
  out.clear();
  out.total = n;
  for (std::uint32_t j : sc.touched) {
    out.push(j, sc.dense[j]);
    sc.dense[j] = 0;
  }
}

// Which without-replacement method a paradigm uses: item lists cost O(n) per draw and
// one label per pooled item; conditional hypergeometrics cost O(support) inversions
// (each ~10 transcendental calls) and no memory beyond the counts.
constexpr std::int64_t kMaxPooledItems = std::int64_t{1} << 23;  // 32 MiB of labels per thread
constexpr double kHypergeometricCost = 30.0;                     // one inversion ~ 30 item draws

bool use_items(const CategoricalSpec& spec, std::int64_t draws, std::int64_t pooled, std::size_t support) {
  if (spec.without_replacement == WithoutReplacement::Items) return true;
  if (spec.without_replacement == WithoutReplacement::Hypergeometric) return false;
  return pooled <= kMaxPooledItems && static_cast<double>(draws) <= kHypergeometricCost * static_cast<double>(support);
}

// out = a + b (as multisets).
void merge(const Counts& a, const Counts& b, Counts& out, Scratch& sc) {
  sc.touched.clear();
  for (const Counts* part : {&a, &b})
    for (std::size_t i = 0; i < part->size(); ++i) {
      const std::uint32_t j = part->idx[i];
      if (sc.dense[j] == 0) sc.touched.push_back(j);
      sc.dense[j] += part->cnt[i];
    }
  out.clear();
  out.total = a.total + b.total;
  for (std::uint32_t j : sc.touched) {
    out.push(j, sc.dense[j]);
    sc.dense[j] = 0;
  }
}

// out = (1 - w) a / a.total + w b / b.total over the union of their supports.
void weighted_estimate(const Counts& a, const Counts& b, double w, Probs& out, Scratch& sc) {
  sc.touched.clear();
  const double wa = (1.0 - w) / static_cast<double>(a.total), wb = w / static_cast<double>(b.total);
  for (const auto& [part, scale] : {std::pair<const Counts*, double>{&a, wa}, {&b, wb}}) {
    if (scale == 0.0) continue;  // w = 0 or 1: the other estimate alone, support included
    for (std::size_t i = 0; i < part->size(); ++i) {
      const std::uint32_t j = part->idx[i];
      if (sc.dense_p[j] == 0.0) sc.touched.push_back(j);
      sc.dense_p[j] += scale * static_cast<double>(part->cnt[i]);
    }
  }
  out.clear();
  for (std::uint32_t j : sc.touched) {
    out.idx.push_back(j);
    out.p.push_back(sc.dense_p[j]);
    sc.dense_p[j] = 0.0;
  }
}

struct Recorder {
  CategoricalRun& run;
  const Truth& truth;
  const std::vector<int>& column;  // generation -> metric column, -1 if not kept
  std::size_t row0;                // first entry of this trial
  std::size_t local;

  void record(int gen, const Counts& model) {
    const double D = static_cast<double>(model.total);
    const double log_D = truth.log_of(model.total);
    record_entries(gen, model.idx, [&](std::size_t i) {
      return std::pair<double, double>{static_cast<double>(model.cnt[i]) / D, truth.log_of(model.cnt[i]) - log_D};
    });
  }

  void record(int gen, const Probs& model) {
    record_entries(gen, model.idx, [&](std::size_t i) { return std::pair<double, double>{model.p[i], std::log(model.p[i])}; });
  }

  // entry(i) gives (p, log p) of the model's i-th support entry idx[i].
  template <class Entry>
  void record_entries(int gen, const std::vector<std::uint32_t>& idx, Entry entry) {
    const std::size_t size = idx.size();
    if (column[static_cast<std::size_t>(gen)] < 0) {  // only the events need this generation
      note_events(gen, static_cast<std::int64_t>(size), size == 1 ? truth.outcome[idx[0]] : 0);
      return;
    }
    double h = 0, p2 = 0, kl = 0, tv_on = 0, p0_on = 0, tail = 0;
    for (std::size_t i = 0; i < size; ++i) {
      const std::uint32_t j = idx[i];
      const auto [p, log_p] = entry(i);
      h -= p * log_p;
      p2 += p * p;
      kl += p * (log_p - truth.log_p[j]);
      tv_on += std::fabs(p - truth.p[j]);
      p0_on += truth.p[j];
      if (truth.in_tail[j]) tail += p;
    }
    const std::size_t r = row0 + static_cast<std::size_t>(column[static_cast<std::size_t>(gen)]);
    run.entropy[r] = h;
    run.support[r] = static_cast<std::int64_t>(size);
    run.sum_p2[r] = p2;
    run.kl_to_truth[r] = std::max(0.0, kl);  // KL >= 0; only rounding makes it negative
    run.tv_to_truth[r] = 0.5 * (tv_on + std::max(0.0, 1.0 - p0_on));
    run.tail_mass[r] = tail;
    if (!run.fit_p.empty()) {  // rows start zeroed: outcomes off the support keep 0
      double* row = run.fit_p.data() + r * run.K;
      for (std::size_t i = 0; i < size; ++i) row[truth.outcome[idx[i]]] = entry(i).first;
    }
    note_events(gen, static_cast<std::int64_t>(size), size == 1 ? truth.outcome[idx[0]] : 0);
  }

  void record_truth() {
    const std::size_t r = row0;
    run.entropy[r] = truth.entropy;
    run.support[r] = static_cast<std::int64_t>(truth.p.size());
    run.sum_p2[r] = truth.sum_p2;
    run.kl_to_truth[r] = 0.0;
    run.tv_to_truth[r] = 0.0;
    run.tail_mass[r] = truth.tail_mass;
    if (!run.fit_p.empty())
      for (std::size_t j = 0; j < truth.p.size(); ++j) run.fit_p[r * run.K + truth.outcome[j]] = truth.p[j];
    note_events(0, static_cast<std::int64_t>(truth.p.size()), truth.outcome[0]);
  }

  void note_events(int gen, std::int64_t support, std::uint32_t single_outcome) {
    if (run.first_extinction[local] < 0 && support < static_cast<std::int64_t>(truth.p.size()))
      run.first_extinction[local] = gen;
    if (run.collapse[local] < 0 && support == 1) {
      run.collapse[local] = gen;
      run.collapsed_to[local] = single_outcome;
    }
  }
};

// Paradigm weighted: p_{t+1} = (1 - w) S_t / N + w F_t / N (generation 1 the MLE on R).
void run_weighted_trial(const CategoricalSpec& spec, Philox& rng, const Truth& truth, Recorder& rec, std::size_t local,
                        CategoricalRun& run, Scratch& sc, bool keep_final_p) {
  const std::int64_t N = spec.sample_size;
  Counts real;
  Counts& synthetic = sc.a;
  Counts& fresh = sc.b;
  draw_truth(rng, truth, N, real, sc);
  Probs model;
  weighted_estimate(real, real, 0.0, model, sc);  // generation 1: R / N
  rec.record(1, model);
  for (int gen = 2; gen <= spec.generations; ++gen) {
    draw_multinomial(rng, model, N, synthetic, sc);
    draw_truth(rng, truth, N, fresh, sc);
    weighted_estimate(synthetic, fresh, spec.weight, model, sc);
    rec.record(gen, model);
  }
  if (keep_final_p) {
    double* row = run.final_p.data() + local * run.K;
    for (std::size_t i = 0; i < model.size(); ++i) row[truth.outcome[model.idx[i]]] = model.p[i];
  }
}

void run_trial(const CategoricalSpec& spec, const Truth& truth, const std::vector<int>& column, std::int64_t trial,
               std::size_t local, CategoricalRun& run, Scratch& sc, bool keep_final_p) {
  Philox rng(derive_seed(spec.seed, kCategoricalStreamTag), static_cast<std::uint64_t>(trial));
  const int G = spec.generations;
  const std::int64_t N = spec.sample_size;
  const std::int64_t n_syn = static_cast<std::int64_t>(std::floor(spec.alpha * static_cast<double>(N) + 0.5));
  const std::int64_t M = spec.synthetic_per_generation < 0 ? N : spec.synthetic_per_generation;
  Recorder rec{run, truth, column, local * run.recorded.size(), local};
  rec.record_truth();
  if (spec.paradigm == Paradigm::Weighted) {
    run_weighted_trial(spec, rng, truth, rec, local, run, sc, keep_final_p);
    return;
  }

  Counts real, model, pool, fresh_part;
  Counts& synthetic = sc.a;
  Counts& real_part = sc.b;
  draw_truth(rng, truth, N, real, sc);  // R
  model = real;                         // generation 1: the MLE on R
  // Without-replacement draws: from the pool (accumulate-subsample) or from R (mix).
  ItemList items;
  bool by_items = false;
  if (spec.paradigm == Paradigm::AccumulateSubsample) {
    by_items = use_items(spec, N, N + M * G, truth.p.size());
    if (by_items) items.append(real);
    else pool = real;
  } else if (spec.paradigm == Paradigm::Mix) {
    by_items = use_items(spec, N - n_syn, N, real.size());
    if (by_items) items.append(real);
  }
  rec.record(1, model);
  for (int gen = 2; gen <= G; ++gen) {
    switch (spec.paradigm) {
      case Paradigm::Replace:
        draw_multinomial(rng, model, N, synthetic, sc);
        std::swap(model, synthetic);
        break;
      case Paradigm::Accumulate:  // model counts are the pooled counts
        draw_multinomial(rng, model, M, synthetic, sc);
        merge(model, synthetic, sc.c, sc);
        std::swap(model, sc.c);
        break;
      case Paradigm::AccumulateSubsample:
        draw_multinomial(rng, model, M, synthetic, sc);
        if (by_items) {
          items.append(synthetic);
          draw_items(rng, items, N, model, sc);
        } else {
          merge(pool, synthetic, sc.c, sc);
          std::swap(pool, sc.c);
          draw_without_replacement(rng, pool, N, model);
        }
        break;
      case Paradigm::Mix:
        draw_multinomial(rng, model, n_syn, synthetic, sc);
        if (by_items)
          draw_items(rng, items, N - n_syn, real_part, sc);
        else
          draw_without_replacement(rng, real, N - n_syn, real_part);
        merge(synthetic, real_part, model, sc);
        break;
      case Paradigm::Fresh:
        draw_multinomial(rng, model, n_syn, synthetic, sc);
        draw_truth(rng, truth, N - n_syn, fresh_part, sc);
        merge(synthetic, fresh_part, model, sc);
        break;
      case Paradigm::Weighted:  // run_weighted_trial
        break;
    }
    rec.record(gen, model);
  }
  if (keep_final_p) {
    double* row = run.final_p.data() + local * run.K;
    for (std::size_t i = 0; i < model.size(); ++i)
      row[truth.outcome[model.idx[i]]] = static_cast<double>(model.cnt[i]) / static_cast<double>(model.total);
  }
}

}  // namespace

CategoricalRun simulate_categorical(const CategoricalSpec& spec, std::int64_t first_trial, std::int64_t trials,
                                    int threads, bool keep_final_p) {
  validate(spec);
  if (trials < 1) throw std::invalid_argument("trials must be >= 1");
  if (first_trial < 0) throw std::invalid_argument("first trial must be >= 0");
  if (threads < 0) throw std::invalid_argument("threads must be >= 0 (0: all cores)");
  const Truth truth = make_truth(spec);

  CategoricalRun run;
  run.first_trial = first_trial;
  run.trials = trials;
  run.generations = spec.generations;
  run.K = spec.p0.size();
  run.recorded = recorded_generations(spec.generations, spec.record_every);
  std::vector<int> column(static_cast<std::size_t>(spec.generations) + 1, -1);
  for (std::size_t i = 0; i < run.recorded.size(); ++i) column[static_cast<std::size_t>(run.recorded[i])] = static_cast<int>(i);
  const std::size_t rows = static_cast<std::size_t>(trials) * run.recorded.size();
  run.entropy.resize(rows);
  run.support.resize(rows);
  run.sum_p2.resize(rows);
  run.kl_to_truth.resize(rows);
  run.tv_to_truth.resize(rows);
  run.tail_mass.resize(rows);
  run.first_extinction.assign(static_cast<std::size_t>(trials), -1);
  run.collapse.assign(static_cast<std::size_t>(trials), -1);
  run.collapsed_to.assign(static_cast<std::size_t>(trials), -1);
  if (keep_final_p) run.final_p.assign(static_cast<std::size_t>(trials) * run.K, 0.0);
  if (spec.record_fits) {
    if (static_cast<double>(rows) * static_cast<double>(run.K) > 268435456.0)
      throw std::invalid_argument("trials x recorded generations x K (every generation's p) is above 2^28: "
                                  "use fewer trials or record_every");
    run.fit_p.assign(rows * run.K, 0.0);
  }

  const int n_threads = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), trials));
  std::atomic<std::int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      Scratch sc;
      sc.dense.assign(truth.p.size(), 0);
      sc.dense_p.assign(truth.p.size(), 0.0);
      for (;;) {
        const std::int64_t local = next.fetch_add(1);
        if (local >= trials) break;
        run_trial(spec, truth, column, first_trial + local, static_cast<std::size_t>(local), run, sc, keep_final_p);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(trials);
    }
  };
  // worker() catches itself so that the first failure also stops the other threads early
  run_threads(n_threads, [&](int) { worker(); });
  if (error) std::rethrow_exception(error);
  return run;
}

}  // namespace collapse
