// Walker/Vose alias tables: O(n) to build, O(1) per draw. Shared by the n-gram sampler
// (one table per context's successor block) and the simulator's categorical draws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace collapse {

// Scratch space, reused across many builds to avoid reallocations.
struct AliasScratch {
  std::vector<double> scaled;
  std::vector<std::uint32_t> small, large;
};

// Fills accept[0..n) and alias[0..n) for the non-negative weights w[0..n), whose sum is
// total > 0. Column i is drawn as i with probability accept[i], otherwise as alias[i].
// Columns left over when one list empties hold mass 1 up to rounding and keep
// themselves, except zero-weight ones: they must never be drawn, so they send everything
// to the heaviest column.
inline void build_alias(const double* w, std::size_t n, double total, double* accept, std::uint32_t* alias,
                        AliasScratch& scratch) {
  std::vector<double>& scaled = scratch.scaled;
  std::vector<std::uint32_t>& small = scratch.small;
  std::vector<std::uint32_t>& large = scratch.large;
  scaled.assign(n, 0.0);
  small.clear();
  large.clear();
  std::uint32_t heaviest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (w[i] > w[heaviest]) heaviest = static_cast<std::uint32_t>(i);
    scaled[i] = w[i] * static_cast<double>(n) / total;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const std::uint32_t s = small.back(), l = large.back();
    small.pop_back();
    accept[s] = scaled[s];
    alias[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (std::uint32_t i : large) accept[i] = 1.0, alias[i] = i;
  for (std::uint32_t i : small) {
    if (w[i] > 0.0) {
      accept[i] = 1.0;
      alias[i] = i;
    } else {
      accept[i] = 0.0;
      alias[i] = heaviest;
    }
  }
}

}  // namespace collapse
