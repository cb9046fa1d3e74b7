// The Gaussian collapse process (the toy of Shumailov et al. 2024, Suresh et al. 2024,
// Kazdan et al. 2024, Dey & Donoho 2024): a d-dimensional Gaussian refit by maximum
// likelihood (sample mean, covariance with divisor n) every generation, under the
// paradigms of the categorical process (collapse/simulate.hpp), with the same generation
// convention and the same sample-level definitions:
//
// Generation 0 is the truth N(mu0, Sigma0). Generation 1 is the ML fit to the real sample R
// (N draws from the truth), in every paradigm. Generation t+1 (t >= 1) is the ML fit to
//   replace              S_t: N draws from N(m_t, C_t)
//   accumulate           R + S_1 + ... + S_t                      (size (t+1) N)
//   accumulate-subsample N items drawn without replacement from R + S_1 + ... + S_t
//   mix(alpha)           n_syn draws from model t plus N - n_syn items drawn without
//                        replacement from R (a new subset every generation)
//   fresh(alpha)         n_syn draws from model t plus N - n_syn new draws from the truth
// with n_syn = floor(alpha N + 1/2), and
//   weighted(w)          m_{t+1} = (1 - w) mean(S_t) + w mean(F_t),
//                        C_{t+1} = (1 - w) cov(S_t) + w cov(F_t)   (ML covariances),
//                        S_t N draws from model t, F_t N new draws from the truth
//                        (He, Xu & Cheng's weighted estimator).
// A draw from N(m, C) is m + L z, z a vector of d standard normals and L C's Cholesky
// factor (a zero pivot, as for a collapsed model, gives a zero column: exact for PSD C).
//
// A batch that is only fitted (not drawn from later) needs only its sufficient statistics:
// with draws = Statistics (the default) they are drawn directly, zbar ~ N(0, I / n) and
// the scatter ~ Wishart(I, n - 1) by Bartlett's decomposition (chi-square diagonal,
// normal below it), which is exactly the joint law of n standard-normal vectors' mean and
// scatter, at O(d^2) per batch instead of O(n d^2) -- as the categorical kernel draws
// counts by binomials instead of item by item. draws = Samples draws every item (the
// reference the tests compare with; also used when n - 1 < d, where the scatter is
// singular). Stored items (accumulate-subsample's pool, mix's R) are always drawn one by one.
//
// Trial i uses the stream Philox(derive_seed(seed, kGaussianStreamTag), i) for all its
// generations, so results do not depend on the thread count or on trial chunks.
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/simulate.hpp"

namespace collapse {

constexpr std::uint64_t kGaussianStreamTag = 0x53494D47415553ULL;  // "SIMGAUS"

enum class GaussianDraws { Statistics, Samples };

struct GaussianSpec {
  int dim = 1;
  std::vector<double> mean;      // mu0, dim entries
  std::vector<double> cov;       // Sigma0, dim x dim row-major, symmetric positive definite
  std::int64_t sample_size = 0;  // N
  int generations = 0;           // refits: generations 1..G are recorded after gen 0
  Paradigm paradigm = Paradigm::Replace;
  double alpha = 1.0;            // synthetic fraction (mix, fresh)
  double weight = 0.5;           // weight of the fresh real estimate (weighted)
  std::uint64_t seed = 0;
  int record_every = 1;          // metrics kept for generations 0, k, 2k, ... and G
  GaussianDraws draws = GaussianDraws::Statistics;
  int ddof = 0;                  // covariance divisor n - ddof: 0 the ML fit, 1 the unbiased (np.cov's)
  std::int64_t synthetic_per_generation = -1;  // m synthetic draws per generation (-1: N); accumulate(-subsample), weighted
  bool record_fits = false;      // keep every recorded generation's fitted mean and covariance
};

// Per-trial, per-generation metrics, row-major (trial, recorded generation).
struct GaussianRun {
  std::int64_t first_trial = 0, trials = 0;
  int generations = 0, dim = 0;
  std::vector<int> recorded;
  std::vector<double> mean_sq_error;   // ||m_t - mu0||^2
  std::vector<double> variance_ratio;  // tr C_t / tr Sigma0
  std::vector<double> log_det_ratio;   // log det C_t - log det Sigma0 (-inf iff C_t is singular)
  std::vector<double> final_mean;      // trials x dim, generation G
  std::vector<double> final_cov;       // trials x dim x dim, generation G
  std::vector<double> fit_mean;        // record_fits: trials x recorded x dim
  std::vector<double> fit_cov;         // record_fits: trials x recorded x dim x dim
};

// Upper bounds that keep every allocation a validated size: items pooled by
// accumulate-subsample per thread ((G + 1) N dim doubles), and dim.
constexpr double kMaxPooledGaussianValues = 33554432.0;  // 2^25 doubles = 256 MiB per thread
constexpr int kMaxGaussianDim = 1024;
// trials x recorded generations per metric (three metrics of doubles: 6 GiB at the cap),
// and trials x dim^2 for the final covariances.
constexpr double kMaxGaussianMetricRows = 268435456.0;  // 2^28
constexpr double kMaxGaussianFinalValues = 268435456.0;

// Validates spec (std::invalid_argument), then runs trials [first_trial, first_trial +
// trials) on `threads` threads (0: hardware concurrency).
GaussianRun simulate_gaussian(const GaussianSpec& spec, std::int64_t first_trial, std::int64_t trials, int threads);

}  // namespace collapse
