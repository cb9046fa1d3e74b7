// Exact random variates for the theory simulator: binomial, hypergeometric, categorical
// (alias table) and the standard normal, all driven by one collapse::Philox stream.
//
// Why our own: the simulator's results must depend only on (seed, trial), never on a
// library's version, and the multinomial/multivariate-hypergeometric draws of every
// generation are built from these by conditioning (see simulate_categorical.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "collapse/rng.hpp"

namespace collapse::variates {

// Binomial(n, p). Inversion (sequential search from 0) when n*min(p,1-p) < 10, otherwise
// Hoermann's BTRD (transformed rejection with decomposition, 1993).
std::int64_t binomial(Philox& rng, std::int64_t n, double p);

// Hypergeometric: successes among `draws` items taken without replacement from a
// population of `population` items of which `successes` are successes. Inversion by
// chop-down search outward from the mode; the mode's probability is computed from
// log-falling-factorial differences (accurate to ~1e-12 relative even for populations
// of 10^9).
std::int64_t hypergeometric(Philox& rng, std::int64_t draws, std::int64_t successes, std::int64_t population);

// Walker/Vose alias table over non-negative weights: O(n) to build, O(1) per draw.
// Standard normal by the ziggurat method (Marsaglia & Tsang 2000) with 256 strips; the
// strip index (bits 0-7), the sign (bit 8) and the 53-bit uniform (bits 11-63) come from
// disjoint bits of one 64-bit draw (the original's reuse of bits correlates them), the
// tail beyond r by Marsaglia's exponential rejection. About 99% of draws return from the
// inline rectangle test.
struct NormalZiggurat {
  double x[257];  // x[0] = v / f(r) (the base strip's width), x[1] = r > ... > x[256] = 0
  double f[257];  // f[i] = exp(-x[i]^2 / 2)
};
extern const NormalZiggurat kNormalZiggurat;

// The rare path of standard_normal: strip i's wedge (i >= 1) or the tail (i = 0) for the
// candidate z; true (and *out set, sign applied) when accepted.
template <class Rng>
bool normal_edge(Rng& rng, unsigned strip, double z, bool negative, double* out) {
  const NormalZiggurat& t = kNormalZiggurat;
  if (strip == 0) {  // the tail beyond r: Marsaglia (1964)
    const double r = t.x[1];
    double a, b;
    do {
      a = -std::log(rng.uniform_open()) / r;
      b = -std::log(rng.uniform_open());
    } while (b + b < a * a);
    *out = negative ? -(r + a) : r + a;
    return true;
  }
  // the wedge: a uniform height in strip i, accepted under the density
  const double y = t.f[strip] + rng.uniform() * (t.f[strip + 1] - t.f[strip]);
  if (y < std::exp(-0.5 * z * z)) {
    *out = negative ? -z : z;
    return true;
  }
  return false;
}

// Rng: collapse::Philox (a template only so that the edge path can live in this header).
template <class Rng>
inline double standard_normal(Rng& rng) {
  for (;;) {
    const std::uint64_t bits = rng.next_u64();
    const unsigned strip = static_cast<unsigned>(bits & 0xFF);
    const bool negative = (bits & 0x100) != 0;
    const double z = static_cast<double>(bits >> 11) * 0x1.0p-53 * kNormalZiggurat.x[strip];
    if (z < kNormalZiggurat.x[strip + 1]) return negative ? -z : z;
    double out;
    if (normal_edge(rng, strip, z, negative, &out)) return out;
  }
}

// Gamma(shape, 1), shape > 0: Marsaglia & Tsang (2000)'s squeeze-rejection from normals,
// with Gamma(a) = Gamma(a + 1) U^(1/a) for a < 1. Chi-square(k) = 2 Gamma(k / 2).
double gamma(Philox& rng, double shape);

class AliasTable {
 public:
  AliasTable() = default;
  explicit AliasTable(const std::vector<double>& weights);
  std::size_t draw(Philox& rng) const;
  std::size_t size() const { return accept_.size(); }

 private:
  std::vector<double> accept_;        // probability of keeping column i
  std::vector<std::uint32_t> alias_;  // where column i sends the rest
};

}  // namespace collapse::variates
