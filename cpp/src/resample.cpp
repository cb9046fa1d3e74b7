#include "collapse/parallel.hpp"
#include "collapse/resample.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "collapse/rng.hpp"

namespace collapse {
namespace {

// Runs body(begin, end) over [0, n) split into contiguous ranges, one per thread.
// Every element's result depends only on its index, so the split does not matter.
template <class Body>
void parallel_ranges(std::uint64_t n, int threads, std::uint64_t min_per_thread, Body body) {
  const auto t = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(resolve_threads(threads)),
                                                            std::max<std::uint64_t>(1, n / min_per_thread)));
  run_threads(t, [&](int i) {
    const auto k = static_cast<std::uint64_t>(i), tt = static_cast<std::uint64_t>(t);
    body(n * k / tt, n * (k + 1) / tt);
  });
}

// Documents in key order: key of d from stream (seed, d), ties broken by d.
struct KeyedDoc {
  std::uint64_t key;
  std::int64_t doc;
  bool operator<(const KeyedDoc& o) const { return key < o.key || (key == o.key && doc < o.doc); }
};

std::vector<KeyedDoc> keyed(std::uint64_t num_docs, std::uint64_t seed, int threads) {
  std::vector<KeyedDoc> keys(num_docs);
  parallel_ranges(num_docs, threads, 1 << 16, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t d = b; d < e; ++d) {
      Philox rng(seed, d);
      keys[d] = KeyedDoc{rng.next_u64(), static_cast<std::int64_t>(d)};
    }
  });
  return keys;
}

}  // namespace

std::vector<std::int64_t> draw_with_replacement(std::uint64_t num_docs, std::uint64_t n, std::uint64_t seed,
                                                int threads) {
  if (num_docs == 0 && n > 0) throw std::invalid_argument("cannot draw documents from an empty corpus");
  std::vector<std::int64_t> out(n);
  parallel_ranges(n, threads, 1 << 16, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t i = b; i < e; ++i) {
      Philox rng(seed, i);
      out[i] = static_cast<std::int64_t>(rng.below(num_docs));
    }
  });
  return out;
}

std::vector<std::int64_t> draw_without_replacement(std::uint64_t num_docs, std::uint64_t n, std::uint64_t seed,
                                                   int threads) {
  if (n > num_docs)
    throw std::invalid_argument("cannot draw " + std::to_string(n) + " documents without replacement from " +
                                std::to_string(num_docs));
  std::vector<KeyedDoc> keys = keyed(num_docs, seed, threads);
  if (n < num_docs) {
    std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(n), keys.end());
    keys.resize(n);
  }
  std::sort(keys.begin(), keys.end());
  std::vector<std::int64_t> out(n);
  for (std::uint64_t i = 0; i < n; ++i) out[i] = keys[i].doc;
  return out;
}

std::vector<std::int64_t> random_permutation(std::uint64_t num_docs, std::uint64_t seed, int threads) {
  return draw_without_replacement(num_docs, num_docs, seed, threads);
}

void gather_documents(const std::uint32_t* tokens, const std::int64_t* offsets, std::uint64_t num_docs,
                      const std::int64_t* indices, std::uint64_t n, std::vector<std::uint32_t>& out_tokens,
                      std::vector<std::int64_t>& out_offsets, int threads) {
  out_offsets.assign(n + 1, 0);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::int64_t d = indices[i];
    if (d < 0 || static_cast<std::uint64_t>(d) >= num_docs)
      throw std::invalid_argument("document index " + std::to_string(d) + " out of range");
    out_offsets[i + 1] = out_offsets[i] + (offsets[d + 1] - offsets[d]);
  }
  out_tokens.resize(static_cast<std::size_t>(out_offsets[n]));
  parallel_ranges(n, threads, 1 << 12, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t i = b; i < e; ++i) {
      const std::int64_t d = indices[i];
      const std::int64_t len = offsets[d + 1] - offsets[d];
      if (len > 0)
        std::memcpy(out_tokens.data() + out_offsets[i], tokens + offsets[d], static_cast<std::size_t>(len) * sizeof(std::uint32_t));
    }
  });
}

}  // namespace collapse
