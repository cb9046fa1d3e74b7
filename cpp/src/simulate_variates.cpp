// Exact random variates (see simulate_variates.hpp).
#include "collapse/simulate_variates.hpp"
#include "collapse/alias.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace collapse::variates {

namespace {

constexpr double kHalfLog2Pi = 0.91893853320467274178;

// Stirling-series remainder: log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2].
double stirling_tail(std::int64_t k) {
  struct Table {
    double v[10];
    Table() {  // filled once from lgamma, where the series is not yet accurate
      for (int i = 0; i < 10; ++i)
        v[i] = std::lgamma(i + 1.0) - ((i + 0.5) * std::log(i + 1.0) - (i + 1.0) + kHalfLog2Pi);
    }
  };
  static const Table table;
  if (k < 10) return table.v[k];
  const double kp1 = static_cast<double>(k + 1);
  const double inv2 = 1.0 / (kp1 * kp1);
  return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 * inv2) * inv2) / kp1;
}

// log(a! / b!) for a >= b >= 0, written so that no term is as large as log(a!) itself:
// the cancellation of two huge lgamma values would cost ~1e-7 absolute for a ~ 10^8.
double log_factorial_ratio(std::int64_t a, std::int64_t b) {
  if (a == b) return 0.0;
  if (a < 30) return std::lgamma(a + 1.0) - std::lgamma(b + 1.0);
  const double d = static_cast<double>(a - b);
  const double b1 = static_cast<double>(b + 1);
  // (a+1/2)log(a+1) - (b+1/2)log(b+1) = (b+1/2) log((a+1)/(b+1)) + d log(a+1)
  return (b + 0.5) * std::log1p(d / b1) + d * std::log(static_cast<double>(a + 1)) - d + stirling_tail(a) -
         stirling_tail(b);
}

// log C(n, k)
double log_choose(std::int64_t n, std::int64_t k) {
  if (k < 0 || k > n) return -INFINITY;
  if (k > n - k) k = n - k;
  return log_factorial_ratio(n, n - k) - std::lgamma(k + 1.0);
}

std::int64_t binomial_inversion(Philox& rng, std::int64_t n, double p) {
  const double q = 1.0 - p;
  const double s = p / q;
  const double a = (static_cast<double>(n) + 1.0) * s;
  const double p_zero = std::exp(static_cast<double>(n) * std::log1p(-p));
  for (;;) {
    double u = rng.uniform();
    double r = p_zero;
    std::int64_t k = 0;
    // pmf(k)/pmf(k-1) = (n-k+1)/k * p/q = a/k - s
    while (u > r) {
      u -= r;
      ++k;
      if (k > n) break;  // rounding left u unconsumed: draw again
      r *= a / static_cast<double>(k) - s;
    }
    if (k <= n) return k;
  }
}

// BTRD, W. Hoermann, "The generation of binomial random variates", J. Statist. Comput.
// Simul. 46 (1993). Requires p <= 1/2 and n*p >= 10.
std::int64_t binomial_btrd(Philox& rng, std::int64_t n, double p) {
  const double nd = static_cast<double>(n);
  const double q = 1.0 - p;
  const std::int64_t m = static_cast<std::int64_t>(std::floor((nd + 1.0) * p));
  const double r = p / q;
  const double nr = (nd + 1.0) * r;
  const double npq = nd * p * q;
  const double sq = std::sqrt(npq);
  const double b = 1.15 + 2.53 * sq;
  const double a = -0.0873 + 0.0248 * b + 0.01 * p;
  const double c = nd * p + 0.5;
  const double alpha = (2.83 + 5.1 / b) * sq;
  const double vr = 0.92 - 4.2 / b;
  const double urvr = 0.86 * vr;
  for (;;) {
    double v = rng.uniform();
    double u;
    if (v <= urvr) {  // the central box: accepted immediately
      u = v / vr - 0.43;
      return static_cast<std::int64_t>(std::floor((2.0 * a / (0.5 - std::fabs(u)) + b) * u + c));
    }
    if (v >= vr) {
      u = rng.uniform() - 0.5;
    } else {
      u = v / vr - 0.93;
      u = (u < 0 ? -0.5 : 0.5) - u;
      v = rng.uniform() * vr;
    }
    const double us = 0.5 - std::fabs(u);
    const double kd = std::floor((2.0 * a / us + b) * u + c);
    if (kd < 0.0 || kd > nd) continue;
    const std::int64_t k = static_cast<std::int64_t>(kd);
    v = v * alpha / (a / (us * us) + b);
    const std::int64_t km = k > m ? k - m : m - k;
    if (km <= 15) {
      // f(k)/f(m) by the recursion f(i)/f(i-1) = nr/i - r
      double f = 1.0;
      if (m < k) {
        for (std::int64_t i = m + 1; i <= k; ++i) f *= nr / static_cast<double>(i) - r;
      } else if (m > k) {
        for (std::int64_t i = k + 1; i <= m; ++i) v *= nr / static_cast<double>(i) - r;
      }
      if (v <= f) return k;
      continue;
    }
    // squeeze on log scale, then the exact test
    v = std::log(v);
    const double kmd = static_cast<double>(km);
    const double rho = (kmd / npq) * (((kmd / 3.0 + 0.625) * kmd + 1.0 / 6.0) / npq + 0.5);
    const double t = -kmd * kmd / (2.0 * npq);
    if (v < t - rho) return k;
    if (v > t + rho) continue;
    const double nm = nd - static_cast<double>(m) + 1.0;
    const double h = (static_cast<double>(m) + 0.5) * std::log((static_cast<double>(m) + 1.0) / (r * nm)) +
                     stirling_tail(m) + stirling_tail(n - m);
    const double nk = nd - kd + 1.0;
    if (v <= h + (nd + 1.0) * std::log(nm / nk) + (kd + 0.5) * std::log(nk * r / (kd + 1.0)) - stirling_tail(k) -
                 stirling_tail(n - k))
      return k;
  }
}

}  // namespace

std::int64_t binomial(Philox& rng, std::int64_t n, double p) {
  if (n <= 0 || !(p > 0.0)) return 0;
  if (p >= 1.0) return n;
  if (p > 0.5) return n - binomial(rng, n, 1.0 - p);
  if (static_cast<double>(n) * p < 10.0) return binomial_inversion(rng, n, p);
  return binomial_btrd(rng, n, p);
}

std::int64_t hypergeometric(Philox& rng, std::int64_t draws, std::int64_t successes, std::int64_t population) {
  if (draws < 0 || successes < 0 || population < 0 || draws > population || successes > population)
    throw std::invalid_argument("hypergeometric: need 0 <= draws, successes <= population");
  const std::int64_t failures = population - successes;
  const std::int64_t lo = std::max<std::int64_t>(0, draws - failures);
  const std::int64_t hi = std::min(draws, successes);
  if (lo == hi) return lo;
  std::int64_t mode = static_cast<std::int64_t>(std::floor((static_cast<double>(draws) + 1.0) *
                                                           (static_cast<double>(successes) + 1.0) /
                                                           (static_cast<double>(population) + 2.0)));
  mode = std::min(std::max(mode, lo), hi);
  // pmf(mode) = C(K, m) C(M-K, n-m) / C(M, n)
  const double log_pmf_mode = log_choose(successes, mode) + log_choose(failures, draws - mode) -
                              log_choose(population, draws);
  const double pmf_mode = std::exp(log_pmf_mode);
  const double K = static_cast<double>(successes), F = static_cast<double>(failures),
               n = static_cast<double>(draws);
  for (;;) {
    double u = rng.uniform();
    if (u < pmf_mode) return mode;
    u -= pmf_mode;
    // Chop-down alternately below and above the mode, each side by its ratio recursion.
    std::int64_t down = mode, up = mode;
    double p_down = pmf_mode, p_up = pmf_mode;
    bool down_open = down > lo, up_open = up < hi;
    while (down_open || up_open) {
      if (up_open) {
        // pmf(k+1)/pmf(k) = (K-k)(n-k) / ((k+1)(F-n+k+1))
        const double k = static_cast<double>(up);
        p_up *= (K - k) * (n - k) / ((k + 1.0) * (F - n + k + 1.0));
        ++up;
        if (u < p_up) return up;
        u -= p_up;
        up_open = up < hi && p_up > 0.0;
      }
      if (down_open) {
        // pmf(k-1)/pmf(k) = k(F-n+k) / ((K-k+1)(n-k+1))
        const double k = static_cast<double>(down);
        p_down *= k * (F - n + k) / ((K - k + 1.0) * (n - k + 1.0));
        --down;
        if (u < p_down) return down;
        u -= p_down;
        down_open = down > lo && p_down > 0.0;
      }
    }
    // Rounding left u unconsumed (probability ~1e-15): draw again.
  }
}

AliasTable::AliasTable(const std::vector<double>& weights) {
  const std::size_t n = weights.size();
  if (n == 0) throw std::invalid_argument("AliasTable: no weights");
  double total = 0.0;
  for (double w : weights) total += w;
  if (!(total > 0.0)) throw std::invalid_argument("AliasTable: weights must have a positive sum");
  accept_.assign(n, 1.0);
  alias_.resize(n);
  AliasScratch scratch;
  build_alias(weights.data(), n, total, accept_.data(), alias_.data(), scratch);
}

std::size_t AliasTable::draw(Philox& rng) const {
  const double x = rng.uniform() * static_cast<double>(accept_.size());
  std::size_t column = static_cast<std::size_t>(x);
  if (column >= accept_.size()) column = accept_.size() - 1;
  const double frac = x - static_cast<double>(column);
  return frac < accept_[column] ? column : alias_[column];
}

// ------------------------------------------------------------------ standard normal

namespace {

NormalZiggurat make_normal_ziggurat() {
  // r for 256 strips of equal area v (Marsaglia & Tsang 2000); v follows from r exactly:
  // the base strip is the rectangle [0, r] x [0, f(r)] plus the tail beyond r.
  constexpr double r = 3.6541528853610088;
  const double f_r = std::exp(-0.5 * r * r);
  const double v = r * f_r + 1.2533141373155002512 /* sqrt(pi / 2) */ * std::erfc(r / std::sqrt(2.0));
  NormalZiggurat t;
  t.x[0] = v / f_r;
  t.x[1] = r;
  for (int i = 1; i < 255; ++i) t.x[i + 1] = std::sqrt(-2.0 * std::log(v / t.x[i] + std::exp(-0.5 * t.x[i] * t.x[i])));
  t.x[256] = 0.0;  // the top strip ends at the mode (the recursion gives ~1e-13 here)
  for (int i = 0; i <= 256; ++i) t.f[i] = std::exp(-0.5 * t.x[i] * t.x[i]);
  t.f[0] = 0.0;  // unused: the base strip's test is the rectangle or the tail
  return t;
}

}  // namespace

const NormalZiggurat kNormalZiggurat = make_normal_ziggurat();

double gamma(Philox& rng, double shape) {
  if (!(shape > 0.0)) throw std::invalid_argument("gamma shape must be > 0");
  if (shape < 1.0) return gamma(rng, shape + 1.0) * std::pow(rng.uniform_open(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = standard_normal(rng);
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = rng.uniform_open();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

}  // namespace collapse::variates
