// The Gaussian collapse process (definitions in collapse/simulate_gaussian.hpp).
//
// Representation: a model is its mean m, ML covariance C, C's Cholesky factor L and
// log det C (carried in log space through a chain of fits, see fit_to_own_draws). A
// batch of n draws that is only ever fitted (replace, accumulate, fresh, weighted, the
// synthetic part of mix) is never stored: its standard normals z are summed in z-space
// (sum z, sum z z^T; z-space keeps the one-pass scatter well conditioned) and mapped to
// x = m + L z afterwards (mean m + L zbar, scatter L S_z L^T), so a generation costs
// O(N d^2) time and O(d^2) memory. Items that are later drawn without replacement
// (accumulate-subsample's pool, mix's R) are stored as rows and fitted in two passes.
// Pooled fits combine (count, mean, scatter) exactly (Chan et al.'s pairwise update).
#include "collapse/simulate_gaussian.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "collapse/parallel.hpp"
#include "collapse/rng.hpp"
#include "collapse/simulate_variates.hpp"

namespace collapse {

namespace {

// n items summarised by their mean and scatter sum (x - mean)(x - mean)^T (full d x d).
struct Moments {
  double n = 0.0;
  std::vector<double> mean, scatter;
  void reset(int d) {
    n = 0.0;
    mean.assign(static_cast<std::size_t>(d), 0.0);
    scatter.assign(static_cast<std::size_t>(d) * d, 0.0);
  }
};

struct Model {
  std::vector<double> mean, cov, chol;  // chol: lower triangular, row-major
  double log_det = 0.0;                 // log det cov, from the factor (-inf: singular)
};

// Cholesky factor of a symmetric PSD matrix. A pivot that is not positive beyond rounding
// (relative 1e-12 of its diagonal entry) becomes a zero column: for an exactly PSD matrix
// the rest of that column is then zero too, so L L^T = C still holds. Returns the number
// of zero pivots, or -1 if a pivot is clearly negative (C is not PSD) and C is not known
// to be PSD. known_psd: C is a scatter matrix / n (a fitted covariance), PSD by
// construction, so a negative pivot is rounding and becomes a zero column too. It
// happens where C is singular (N <= dim: rank N - 1) and an earlier near-zero pivot,
// accepted as positive, amplified the rounding (dim 4, N 4, Replace, seed 417).
int cholesky_psd(const std::vector<double>& c, int d, std::vector<double>& l, bool known_psd = false) {
  l.assign(static_cast<std::size_t>(d) * d, 0.0);
  int zero_pivots = 0;
  for (int j = 0; j < d; ++j) {
    double pivot = c[static_cast<std::size_t>(j) * d + j];
    const double scale = std::fabs(pivot);
    for (int k = 0; k < j; ++k) pivot -= l[static_cast<std::size_t>(j) * d + k] * l[static_cast<std::size_t>(j) * d + k];
    if (!(pivot > 1e-12 * scale)) {
      if (pivot < -1e-9 * scale - 1e-300 && !known_psd) return -1;
      ++zero_pivots;
      continue;  // column j stays zero
    }
    const double ljj = std::sqrt(pivot);
    l[static_cast<std::size_t>(j) * d + j] = ljj;
    for (int i = j + 1; i < d; ++i) {
      double s = c[static_cast<std::size_t>(i) * d + j];
      for (int k = 0; k < j; ++k) s -= l[static_cast<std::size_t>(i) * d + k] * l[static_cast<std::size_t>(j) * d + k];
      l[static_cast<std::size_t>(i) * d + j] = s / ljj;
    }
  }
  return zero_pivots;
}

struct Truth {
  Model model;
  double trace = 0.0;
};

// log det (L L^T) from the diagonal of a Cholesky factor: -inf for a zero pivot.
double log_det_of_factor(const std::vector<double>& chol, int d) {
  double log_det = 0.0;
  for (int i = 0; i < d; ++i) {
    const double lii = chol[static_cast<std::size_t>(i) * d + i];
    log_det += lii > 0.0 ? 2.0 * std::log(lii) : -std::numeric_limits<double>::infinity();
  }
  return log_det;
}

void validate(const GaussianSpec& spec) {
  const int d = spec.dim;
  if (d < 1 || d > kMaxGaussianDim)
    throw std::invalid_argument("dim must lie in [1, " + std::to_string(kMaxGaussianDim) + "], got " + std::to_string(d));
  if (spec.mean.size() != static_cast<std::size_t>(d))
    throw std::invalid_argument("mean must have dim = " + std::to_string(d) + " entries");
  if (spec.cov.size() != static_cast<std::size_t>(d) * d)
    throw std::invalid_argument("cov must be a dim x dim matrix");
  for (double x : spec.mean)
    if (!std::isfinite(x)) throw std::invalid_argument("mean must be finite");
  for (double x : spec.cov)
    if (!std::isfinite(x)) throw std::invalid_argument("cov must be finite");
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < i; ++j) {
      const double a = spec.cov[static_cast<std::size_t>(i) * d + j], b = spec.cov[static_cast<std::size_t>(j) * d + i];
      const double scale = std::sqrt(std::fabs(spec.cov[static_cast<std::size_t>(i) * d + i] *
                                               spec.cov[static_cast<std::size_t>(j) * d + j]));
      if (std::fabs(a - b) > 1e-12 * scale + 1e-300) throw std::invalid_argument("cov must be symmetric");
    }
  if (spec.sample_size < 1) throw std::invalid_argument("N (sample size) must be >= 1");
  if (spec.generations < 1) throw std::invalid_argument("generations must be >= 1");
  if (!(spec.alpha >= 0.0 && spec.alpha <= 1.0)) throw std::invalid_argument("alpha must lie in [0, 1]");
  if (!(spec.weight >= 0.0 && spec.weight <= 1.0)) throw std::invalid_argument("weight must lie in [0, 1]");
  if (spec.record_every < 1) throw std::invalid_argument("record_every must be >= 1");
  if (spec.ddof != 0 && spec.ddof != 1) throw std::invalid_argument("ddof must be 0 or 1");
  if (spec.ddof == 1 && spec.sample_size < 2) throw std::invalid_argument("ddof = 1 needs N >= 2");
  const std::int64_t m = spec.synthetic_per_generation;
  if (m != -1) {
    if (m < 1) throw std::invalid_argument("synthetic_per_generation must be >= 1 (or -1: N)");
    if (spec.paradigm != Paradigm::Accumulate && spec.paradigm != Paradigm::AccumulateSubsample &&
        spec.paradigm != Paradigm::Weighted)
      throw std::invalid_argument("synthetic_per_generation is used by accumulate, accumulate-subsample and weighted only");
    if (spec.paradigm == Paradigm::Weighted && spec.ddof == 1 && m < 2)
      throw std::invalid_argument("ddof = 1 needs synthetic_per_generation >= 2 under weighted");
    if (static_cast<double>(m) * (spec.generations + 1.0) > 4.0e18)
      throw std::invalid_argument("synthetic_per_generation * (generations + 1) is too large");
  }
  const double N = static_cast<double>(spec.sample_size);
  const double M = m == -1 ? N : static_cast<double>(m);
  if (spec.paradigm == Paradigm::AccumulateSubsample &&
      (N + spec.generations * M) * d > kMaxPooledGaussianValues)
    throw std::invalid_argument("accumulate-subsample keeps (generations + 1) x N x dim values per thread; "
                                "that is above 2^25 (256 MiB): use fewer generations or a smaller N");
  if (spec.paradigm == Paradigm::Mix && N * d > kMaxPooledGaussianValues)
    throw std::invalid_argument("mix keeps the real sample (N x dim values) per thread; N x dim is above 2^25");
  if (N * (spec.generations + 1.0) > 4.0e18) throw std::invalid_argument("N * (generations + 1) is too large");
}

Truth make_truth(const GaussianSpec& spec) {
  Truth t;
  const int d = spec.dim;
  t.model.mean = spec.mean;
  t.model.cov = spec.cov;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < i; ++j)  // exactly symmetric (validate allowed rounding differences)
      t.model.cov[static_cast<std::size_t>(j) * d + i] = t.model.cov[static_cast<std::size_t>(i) * d + j];
  if (cholesky_psd(t.model.cov, d, t.model.chol) != 0) throw std::invalid_argument("cov must be positive definite");
  for (int i = 0; i < d; ++i) t.trace += t.model.cov[static_cast<std::size_t>(i) * d + i];
  t.model.log_det = log_det_of_factor(t.model.chol, d);
  return t;
}

// Per-thread buffers.
struct Scratch {
  std::vector<double> z, tmp, u;
  Moments zm, a, b, c;
  std::vector<double> rows;  // stored items (accumulate-subsample's pool, mix's R), row-major
};

// The sufficient statistics of n standard-normal vectors drawn directly (n - 1 >= d):
// zbar ~ N(0, I / n); S_z = T T^T, T lower triangular with T_ii^2 ~ chi-square(n - 1 - i)
// and T_ij ~ N(0, 1) below the diagonal (Bartlett), independent of zbar.
void draw_z_statistics(Philox& rng, std::int64_t n, int d, Moments& out, Scratch& sc) {
  const std::size_t D = static_cast<std::size_t>(d);
  const double inv_sqrt_n = 1.0 / std::sqrt(static_cast<double>(n));
  for (std::size_t k = 0; k < D; ++k) out.mean[k] = variates::standard_normal(rng) * inv_sqrt_n;
  if (d == 1) {
    out.scatter[0] = 2.0 * variates::gamma(rng, 0.5 * static_cast<double>(n - 1));
    return;
  }
  sc.tmp.assign(D * D, 0.0);  // T
  for (std::size_t i = 0; i < D; ++i) {
    sc.tmp[i * D + i] = std::sqrt(2.0 * variates::gamma(rng, 0.5 * static_cast<double>(n - 1 - static_cast<std::int64_t>(i))));
    for (std::size_t j = 0; j < i; ++j) sc.tmp[i * D + j] = variates::standard_normal(rng);
  }
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = 0; k <= j; ++k) s += sc.tmp[i * D + k] * sc.tmp[j * D + k];
      out.scatter[i * D + j] = s;
      out.scatter[j * D + i] = s;
    }
}

// n standard-normal vectors summarised in z-space: out.mean = zbar, out.scatter = S_z.
void draw_z_moments(Philox& rng, std::int64_t n, int d, GaussianDraws draws, Moments& out, Scratch& sc) {
  out.reset(d);
  out.n = static_cast<double>(n);
  if (n == 0) return;
  if (draws == GaussianDraws::Statistics && n - 1 >= d) {
    draw_z_statistics(rng, n, d, out, sc);
    return;
  }
  if (d == 1) {  // the common case, kept free of the inner loops
    double s = 0.0, ss = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double z = variates::standard_normal(rng);
      s += z;
      ss += z * z;
    }
    const double mean = s / static_cast<double>(n);
    out.mean[0] = mean;
    out.scatter[0] = std::max(0.0, ss - s * mean);
    return;
  }
  const std::size_t D = static_cast<std::size_t>(d);
  sc.z.resize(D);
  std::vector<double>& sum = out.mean;
  std::vector<double>& outer = out.scatter;  // upper triangle accumulated, then mirrored
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < D; ++k) sc.z[k] = variates::standard_normal(rng);
    for (std::size_t a = 0; a < D; ++a) {
      const double za = sc.z[a];
      sum[a] += za;
      double* row = outer.data() + a * D;
      for (std::size_t b = a; b < D; ++b) row[b] += za * sc.z[b];
    }
  }
  const double inv_n = 1.0 / static_cast<double>(n);
  for (std::size_t a = 0; a < D; ++a) sum[a] *= inv_n;
  for (std::size_t a = 0; a < D; ++a)
    for (std::size_t b = a; b < D; ++b) {
      const double s = outer[a * D + b] - static_cast<double>(n) * sum[a] * sum[b];
      outer[a * D + b] = s;
      outer[b * D + a] = s;
    }
}

// z-space moments of draws from `model` -> their x-space moments (x = m + L z).
void to_x_space(const Model& model, int d, const Moments& zm, Moments& out, Scratch& sc) {
  const std::size_t D = static_cast<std::size_t>(d);
  out.n = zm.n;
  out.mean.assign(D, 0.0);
  out.scatter.assign(D * D, 0.0);
  const std::vector<double>& L = model.chol;
  for (std::size_t i = 0; i < D; ++i) {
    double s = model.mean[i];
    for (std::size_t k = 0; k <= i; ++k) s += L[i * D + k] * zm.mean[k];
    out.mean[i] = s;
  }
  // tmp = L S_z, then scatter = tmp L^T
  sc.tmp.assign(D * D, 0.0);
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t k = 0; k <= i; ++k) {
      const double lik = L[i * D + k];
      if (lik == 0.0) continue;
      for (std::size_t j = 0; j < D; ++j) sc.tmp[i * D + j] += lik * zm.scatter[k * D + j];
    }
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = 0; k <= j; ++k) s += sc.tmp[i * D + k] * L[j * D + k];
      out.scatter[i * D + j] = s;
      out.scatter[j * D + i] = s;
    }
}

// n draws from `model` appended to sc.rows as x-space rows.
void draw_rows(Philox& rng, const Model& model, int d, std::int64_t n, Scratch& sc) {
  const std::size_t D = static_cast<std::size_t>(d);
  sc.z.resize(D);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < D; ++k) sc.z[k] = variates::standard_normal(rng);
    for (std::size_t r = 0; r < D; ++r) {
      double x = model.mean[r];
      for (std::size_t k = 0; k <= r; ++k) x += model.chol[r * D + k] * sc.z[k];
      sc.rows.push_back(x);
    }
  }
}

// Moments of rows [first, first + n) of a row-major buffer (two passes).
void row_moments(const double* rows, std::int64_t n, int d, Moments& out) {
  const std::size_t D = static_cast<std::size_t>(d);
  out.reset(d);
  out.n = static_cast<double>(n);
  if (n == 0) return;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < D; ++k) out.mean[k] += rows[static_cast<std::size_t>(i) * D + k];
  for (std::size_t k = 0; k < D; ++k) out.mean[k] /= static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const double* x = rows + static_cast<std::size_t>(i) * D;
    for (std::size_t a = 0; a < D; ++a) {
      const double xa = x[a] - out.mean[a];
      for (std::size_t b = a; b < D; ++b) out.scatter[a * D + b] += xa * (x[b] - out.mean[b]);
    }
  }
  for (std::size_t a = 0; a < D; ++a)
    for (std::size_t b = 0; b < a; ++b) out.scatter[a * D + b] = out.scatter[b * D + a];
}

// The first n of `count` stored rows become a uniformly random n-subset (partial
// Fisher-Yates; any arrangement of the rows is a valid starting point).
void shuffle_prefix(Philox& rng, double* rows, std::int64_t count, std::int64_t n, int d) {
  const std::size_t D = static_cast<std::size_t>(d);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(count - i)));
    if (j != i)
      std::swap_ranges(rows + static_cast<std::size_t>(i) * D, rows + static_cast<std::size_t>(i + 1) * D,
                       rows + static_cast<std::size_t>(j) * D);
  }
}

// a += b (as pooled data).
void combine(Moments& a, const Moments& b) {
  if (b.n == 0.0) return;
  if (a.n == 0.0) {
    a = b;
    return;
  }
  const std::size_t D = a.mean.size();
  const double n = a.n + b.n;
  const double f = a.n * b.n / n;
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t j = 0; j < D; ++j) {
      const double di = b.mean[i] - a.mean[i], dj = b.mean[j] - a.mean[j];
      a.scatter[i * D + j] += b.scatter[i * D + j] + f * di * dj;
    }
  for (std::size_t i = 0; i < D; ++i) a.mean[i] += (b.mean[i] - a.mean[i]) * (b.n / n);
  a.n = n;
}

// An ML fit to n <= d items is singular: n points span an (n - 1)-flat, so its
// covariance has rank n - 1 and, the points being in general position (almost surely),
// exactly its first n - 1 Cholesky pivots are nonzero. The later columns are zeroed:
// rounding could leave a tiny pivot there (log det ~ -40 instead of -inf, draws off the flat).
void keep_rank(std::vector<double>& chol, int d, double n) {
  if (n > d) return;
  const std::size_t D = static_cast<std::size_t>(d);
  for (std::size_t j = static_cast<std::size_t>(std::max(0.0, n - 1.0)); j < D; ++j)
    for (std::size_t i = j; i < D; ++i) chol[i * D + j] = 0.0;
}

// The factor and log det of model.cov, a fit to n items (n: infinity where that count
// does not bound the rank).
void refactor(Model& model, int d, double n = std::numeric_limits<double>::infinity()) {
  cholesky_psd(model.cov, d, model.chol, /*known_psd=*/true);
  keep_rank(model.chol, d, n);
  model.log_det = log_det_of_factor(model.chol, d);
}

// The ML fit to one batch of n draws x = m + L z from `model` itself, when they are all
// of the fit's data (a "chain" step: Replace; Mix and Fresh with no real part; Weighted
// with w = 0). Its covariance L (S_z / n) L^T has the Cholesky factor L U, U the factor
// of S_z / n (a product of lower triangular factors with positive diagonals is the
// unique one), so the factor is carried from generation to generation and never taken
// again from C, and log det C gains log det (S_z / n) = sum log U_ii^2 in log space.
// S_z / n is a Wishart's, well conditioned for n > d whatever the model, so log det stays
// exact to rounding and finite although C's condition number grows without bound under
// Replace: refactoring the stored C (whose small eigenvalues are lost to rounding once it
// passes ~1e12) made log det -inf in ~0.4% of trial-generations by generation 60 at
// dim 3, N 10, and froze the model in a subspace. n <= d: S_z is singular (rank n - 1),
// U has a zero column, and so does every later factor (-inf, truly singular).
void fit_to_own_draws(Model& model, const Moments& zm, int d, int ddof, Scratch& sc) {
  const std::size_t D = static_cast<std::size_t>(d);
  const std::vector<double>& L = model.chol;
  for (std::size_t i = 0; i < D; ++i) {  // m + L zbar, entry by entry (in place: row i reads m_i only)
    double s = model.mean[i];
    for (std::size_t k = 0; k <= i; ++k) s += L[i * D + k] * zm.mean[k];
    model.mean[i] = s;
  }
  sc.tmp.resize(D * D);
  for (std::size_t i = 0; i < D * D; ++i) sc.tmp[i] = zm.scatter[i] / (zm.n - ddof);
  cholesky_psd(sc.tmp, d, sc.u, /*known_psd=*/true);
  keep_rank(sc.u, d, zm.n);
  sc.tmp.assign(D * D, 0.0);  // L U (lower triangular)
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = j; k <= i; ++k) s += L[i * D + k] * sc.u[k * D + j];
      sc.tmp[i * D + j] = s;
    }
  model.chol.swap(sc.tmp);
  model.log_det += log_det_of_factor(sc.u, d);
  model.cov.resize(D * D);
  for (std::size_t i = 0; i < D; ++i)  // C = (L U)(L U)^T
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = 0; k <= j; ++k) s += model.chol[i * D + k] * model.chol[j * D + k];
      model.cov[i * D + j] = s;
      model.cov[j * D + i] = s;
    }
}

// The fit of pooled data: mean, scatter / (n - ddof) (ddof 0: ML; 1: unbiased).
void fit(Model& model, const Moments& m, int d, int ddof) {
  model.mean = m.mean;
  model.cov.resize(m.scatter.size());
  for (std::size_t i = 0; i < m.scatter.size(); ++i) model.cov[i] = m.scatter[i] / (m.n - ddof);
  refactor(model, d, m.n);
}

// Paradigm weighted: (1 - w) fit(a) + w fit(b), parameter by parameter.
void fit_weighted(Model& model, const Moments& a, const Moments& b, double w, int d, int ddof) {
  const std::size_t D = static_cast<std::size_t>(d);
  model.mean.resize(D);
  model.cov.resize(D * D);
  for (std::size_t i = 0; i < D; ++i) model.mean[i] = (1.0 - w) * a.mean[i] + w * b.mean[i];
  for (std::size_t i = 0; i < D * D; ++i) model.cov[i] = (1.0 - w) * a.scatter[i] / (a.n - ddof) + w * b.scatter[i] / (b.n - ddof);
  refactor(model, d);
}

struct Recorder {
  GaussianRun& run;
  const Truth& truth;
  const std::vector<int>& column;
  std::size_t row0;

  void record(int gen, const Model& model, int d) {
    const int col = column[static_cast<std::size_t>(gen)];
    if (col < 0) return;
    const std::size_t D = static_cast<std::size_t>(d);
    double se = 0.0, tr = 0.0;
    for (std::size_t i = 0; i < D; ++i) {
      const double e = model.mean[i] - truth.model.mean[i];
      se += e * e;
      tr += model.cov[i * D + i];
    }
    const std::size_t r = row0 + static_cast<std::size_t>(col);
    run.mean_sq_error[r] = se;
    run.variance_ratio[r] = tr / truth.trace;
    run.log_det_ratio[r] = model.log_det - truth.model.log_det;
    if (run.fit_mean.empty()) return;
    std::copy(model.mean.begin(), model.mean.end(), run.fit_mean.begin() + static_cast<std::ptrdiff_t>(r * D));
    std::copy(model.cov.begin(), model.cov.end(), run.fit_cov.begin() + static_cast<std::ptrdiff_t>(r * D * D));
  }
};

void run_trial(const GaussianSpec& spec, const Truth& truth, const std::vector<int>& column, std::int64_t trial,
               std::size_t local, GaussianRun& run, Scratch& sc) {
  Philox rng(derive_seed(spec.seed, kGaussianStreamTag), static_cast<std::uint64_t>(trial));
  const int d = spec.dim;
  const std::size_t D = static_cast<std::size_t>(d);
  const int G = spec.generations;
  const std::int64_t N = spec.sample_size;
  const std::int64_t n_syn = static_cast<std::int64_t>(std::floor(spec.alpha * static_cast<double>(N) + 0.5));
  const std::int64_t m = spec.synthetic_per_generation == -1 ? N : spec.synthetic_per_generation;  // synthetic draws
  const int ddof = spec.ddof;
  Recorder rec{run, truth, column, local * run.recorded.size()};
  rec.record(0, truth.model, d);

  // Generation 1: the ML fit to R. Stored as rows where later draws take subsets of it.
  // A chain (every fit's data are the previous model's draws alone, fit_to_own_draws)
  // carries the truth's factor instead of refactoring each fit.
  Model model;
  Moments pool;  // accumulate: everything so far
  const bool keeps_rows = spec.paradigm == Paradigm::AccumulateSubsample || spec.paradigm == Paradigm::Mix;
  const bool chain = spec.paradigm == Paradigm::Replace ||
                     ((spec.paradigm == Paradigm::Mix || spec.paradigm == Paradigm::Fresh) && n_syn == N) ||
                     (spec.paradigm == Paradigm::Weighted && spec.weight == 0.0);
  sc.rows.clear();
  if (keeps_rows) {
    if (spec.paradigm == Paradigm::AccumulateSubsample) sc.rows.reserve(static_cast<std::size_t>(N + G * m) * D);
    draw_rows(rng, truth.model, d, N, sc);
    row_moments(sc.rows.data(), N, d, pool);
    fit(model, pool, d, ddof);
  } else if (chain) {
    draw_z_moments(rng, N, d, spec.draws, sc.zm, sc);
    model = truth.model;
    fit_to_own_draws(model, sc.zm, d, ddof, sc);
  } else {
    draw_z_moments(rng, N, d, spec.draws, sc.zm, sc);
    to_x_space(truth.model, d, sc.zm, pool, sc);
    fit(model, pool, d, ddof);
  }
  rec.record(1, model, d);

  for (int gen = 2; gen <= G; ++gen) {
    if (chain) {  // Weighted with w = 0 still draws (and ignores) its real batch: the same stream
      draw_z_moments(rng, spec.paradigm == Paradigm::Weighted ? m : N, d, spec.draws, sc.zm, sc);
      fit_to_own_draws(model, sc.zm, d, ddof, sc);
      if (spec.paradigm == Paradigm::Weighted) draw_z_moments(rng, N, d, spec.draws, sc.b, sc);
      rec.record(gen, model, d);
      continue;
    }
    switch (spec.paradigm) {
      case Paradigm::Replace:  // a chain, above
        break;
      case Paradigm::Accumulate:
        draw_z_moments(rng, m, d, spec.draws, sc.zm, sc);
        to_x_space(model, d, sc.zm, sc.a, sc);
        combine(pool, sc.a);
        fit(model, pool, d, ddof);
        break;
      case Paradigm::AccumulateSubsample: {
        draw_rows(rng, model, d, m, sc);
        const std::int64_t count = static_cast<std::int64_t>(sc.rows.size() / D);
        shuffle_prefix(rng, sc.rows.data(), count, N, d);
        row_moments(sc.rows.data(), N, d, sc.a);
        fit(model, sc.a, d, ddof);
        break;
      }
      case Paradigm::Mix:
        draw_z_moments(rng, n_syn, d, spec.draws, sc.zm, sc);
        to_x_space(model, d, sc.zm, sc.a, sc);
        shuffle_prefix(rng, sc.rows.data(), N, N - n_syn, d);
        row_moments(sc.rows.data(), N - n_syn, d, sc.b);
        combine(sc.a, sc.b);
        fit(model, sc.a, d, ddof);
        break;
      case Paradigm::Fresh:
        draw_z_moments(rng, n_syn, d, spec.draws, sc.zm, sc);
        to_x_space(model, d, sc.zm, sc.a, sc);
        draw_z_moments(rng, N - n_syn, d, spec.draws, sc.zm, sc);
        to_x_space(truth.model, d, sc.zm, sc.b, sc);
        combine(sc.a, sc.b);
        fit(model, sc.a, d, ddof);
        break;
      case Paradigm::Weighted:
        draw_z_moments(rng, m, d, spec.draws, sc.zm, sc);
        to_x_space(model, d, sc.zm, sc.a, sc);
        draw_z_moments(rng, N, d, spec.draws, sc.zm, sc);
        to_x_space(truth.model, d, sc.zm, sc.b, sc);
        fit_weighted(model, sc.a, sc.b, spec.weight, d, ddof);
        break;
    }
    rec.record(gen, model, d);
  }
  std::copy(model.mean.begin(), model.mean.end(), run.final_mean.begin() + static_cast<std::ptrdiff_t>(local * D));
  std::copy(model.cov.begin(), model.cov.end(), run.final_cov.begin() + static_cast<std::ptrdiff_t>(local * D * D));
}

}  // namespace

GaussianRun simulate_gaussian(const GaussianSpec& spec, std::int64_t first_trial, std::int64_t trials, int threads) {
  validate(spec);
  if (trials < 1) throw std::invalid_argument("trials must be >= 1");
  if (first_trial < 0) throw std::invalid_argument("first trial must be >= 0");
  if (threads < 0) throw std::invalid_argument("threads must be >= 0 (0: all cores)");
  const Truth truth = make_truth(spec);

  GaussianRun run;
  run.first_trial = first_trial;
  run.trials = trials;
  run.generations = spec.generations;
  run.dim = spec.dim;
  run.recorded = recorded_generations(spec.generations, spec.record_every);
  if (static_cast<double>(trials) * static_cast<double>(run.recorded.size()) > kMaxGaussianMetricRows)
    throw std::invalid_argument("trials x recorded generations is above 2^28: use fewer trials or record_every");
  if (static_cast<double>(trials) * spec.dim * spec.dim > kMaxGaussianFinalValues)
    throw std::invalid_argument("trials x dim^2 (the final covariances) is above 2^28: use fewer trials");
  std::vector<int> column(static_cast<std::size_t>(spec.generations) + 1, -1);
  for (std::size_t i = 0; i < run.recorded.size(); ++i) column[static_cast<std::size_t>(run.recorded[i])] = static_cast<int>(i);
  const std::size_t rows = static_cast<std::size_t>(trials) * run.recorded.size();
  run.mean_sq_error.resize(rows);
  run.variance_ratio.resize(rows);
  run.log_det_ratio.resize(rows);
  const std::size_t D = static_cast<std::size_t>(spec.dim);
  run.final_mean.resize(static_cast<std::size_t>(trials) * D);
  run.final_cov.resize(static_cast<std::size_t>(trials) * D * D);
  if (spec.record_fits) {
    if (static_cast<double>(rows) * spec.dim * spec.dim > kMaxGaussianFinalValues)
      throw std::invalid_argument("trials x recorded generations x dim^2 (every fit's covariance) is above 2^28: "
                                  "use fewer trials or record_every");
    run.fit_mean.resize(rows * D);
    run.fit_cov.resize(rows * D * D);
  }

  const int n_threads = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), trials));
  std::atomic<std::int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      Scratch sc;
      for (;;) {
        const std::int64_t local = next.fetch_add(1);
        if (local >= trials) break;
        run_trial(spec, truth, column, first_trial + local, static_cast<std::size_t>(local), run, sc);
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
