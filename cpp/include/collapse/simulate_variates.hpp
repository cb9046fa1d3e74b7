// Exact discrete random variates for the theory simulator: binomial, hypergeometric and
// categorical (alias table), all driven by one collapse::Philox stream.
//
// Why our own: the simulator's results must depend only on (seed, trial), never on a
// library's version, and the multinomial/multivariate-hypergeometric draws of every
// generation are built from these by conditioning (see simulate_categorical.cpp).
#pragma once

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
