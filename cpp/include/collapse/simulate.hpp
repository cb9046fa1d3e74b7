// The categorical collapse process: a unigram "model" over K outcomes, refit by maximum
// likelihood from N samples each generation, under one of five data paradigms. Many
// independent trials run in parallel; each trial owns one Philox stream
// (derive_seed(seed, kCategoricalStreamTag), global trial index), so a trial's result
// does not depend on the thread count or on how trials are split into chunks.
//
// Generations (every paradigm): generation 0 is the truth p0. Generation 1 is the MLE on
// the real sample R ~ Multinomial(N, p0). Generation t+1 (t >= 1) is the MLE on
//   replace              S_t ~ Mult(N, p_t)
//   accumulate           R + S_1 + ... + S_t                (size N + t M)
//   accumulate-subsample N items drawn without replacement from R + S_1 + ... + S_t
// where each S_t ~ Mult(M, p_t) holds M = synthetic_per_generation items (default N: the
// paradigms as published; fewer is a smaller synthetic contribution per generation),
//   mix(alpha)           S_t ~ Mult(n_syn, p_t) plus N - n_syn items drawn without
//                        replacement from R (a fresh subset every generation)
//   fresh(alpha)         S_t ~ Mult(n_syn, p_t) plus a new sample Mult(N - n_syn, p0)
//   weighted(w)          not a refit on pooled data but a weighted estimate (He, Xu & Cheng):
//                        p_{t+1} = (1 - w) S_t / N + w F_t / N, S_t ~ Mult(N, p_t) and a new
//                        real sample F_t ~ Mult(N, p0)
// with n_syn = floor(alpha N + 1/2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace collapse {

enum class Paradigm { Replace, Accumulate, AccumulateSubsample, Mix, Fresh, Weighted };

// "replace", "accumulate", "accumulate-subsample", "mix", "fresh", "weighted"; throws
// std::invalid_argument otherwise.
Paradigm parse_paradigm(const std::string& name);
const char* paradigm_name(Paradigm p);

// How items are drawn without replacement (accumulate-subsample's pool, mix's R). Both
// are exact; they consume the random stream differently, so results differ between them
// (each is reproducible). Auto picks by cost (simulate_categorical.cpp).
enum class WithoutReplacement { Auto, Hypergeometric, Items };

constexpr std::uint64_t kCategoricalStreamTag = 0x53494D43415447ULL;  // "SIMCATG"

struct CategoricalSpec {
  std::vector<double> p0;        // the truth, K >= 2 entries, a distribution
  std::int64_t sample_size = 0;  // N
  int generations = 0;           // refits: generations 1..G are recorded after gen 0
  Paradigm paradigm = Paradigm::Replace;
  double alpha = 1.0;            // synthetic fraction (mix, fresh)
  double weight = 0.5;           // weight w of the fresh real estimate (weighted)
  std::int64_t synthetic_per_generation = -1;  // M of accumulate(-subsample); -1: N
  std::uint64_t seed = 0;
  double tail_fraction = 0.1;    // the tail set: the rarest ceil(q |supp p0|) outcomes
  int record_every = 1;          // metrics kept for generations 0, k, 2k, ... and G
  WithoutReplacement without_replacement = WithoutReplacement::Auto;
  bool record_fits = false;      // keep every recorded generation's p (fit_p)
};

// The generations whose metrics are kept: 0, k, 2k, ..., and always G.
std::vector<int> recorded_generations(int generations, int record_every);

// Per-trial, per-generation metrics, row-major (trial, recorded generation).
struct CategoricalRun {
  std::int64_t first_trial = 0, trials = 0;
  int generations = 0;
  std::vector<int> recorded;        // the generations of the metric columns
  std::size_t K = 0;
  std::vector<double> entropy;      // nats
  std::vector<std::int64_t> support;
  std::vector<double> sum_p2;
  std::vector<double> kl_to_truth;  // KL(p_t || p0), nats: finite, supp p_t lies in supp p0
  std::vector<double> tv_to_truth;  // (1/2) sum |p_t - p0|
  std::vector<double> tail_mass;    // p_t mass of the tail set
  // Per trial: first generation at which an outcome of supp p0 has probability 0, and
  // first generation with support 1 (and its outcome); -1 if not within the run.
  std::vector<std::int64_t> first_extinction, collapse, collapsed_to;
  std::vector<double> final_p;      // trials x K, generation G; empty unless asked for
  std::vector<double> fit_p;        // record_fits: trials x recorded x K, every recorded generation's p
};

// Validates spec (std::invalid_argument), then runs trials [first_trial, first_trial +
// trials) on `threads` threads (0: hardware concurrency).
CategoricalRun simulate_categorical(const CategoricalSpec& spec, std::int64_t first_trial, std::int64_t trials,
                                    int threads, bool keep_final_p);

// The tail set of simulate_categorical: indices of the rarest ceil(q |supp p0|) outcomes of
// p0's support (at least one), ties broken by lower index first.
std::vector<std::uint32_t> tail_set(const std::vector<double>& p0, double tail_fraction);

}  // namespace collapse
