// Counter-based random streams (Philox4x32-10, Salmon et al. 2011).
//
// Why counter-based: every document, sequence or trial gets its own stream keyed by
// (seed, stream id), so a result does not depend on how work is split over threads or
// batches, and a run can be resumed mid-way by recreating the streams it needs.
#pragma once

#include <cstdint>
#include <cmath>

namespace collapse {

// SplitMix64 finaliser: a bijective 64-bit mixer used to derive independent keys
// (e.g. one per generation or per purpose) from a user seed.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Derive a child seed from a parent seed and a tag (purpose, generation, ...).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t tag) {
  return mix64(seed ^ mix64(tag + 0x632BE59BD9B4E019ULL));
}

// One random stream: key = seed, counter = (stream id, block index).
class Philox {
 public:
  Philox(std::uint64_t seed, std::uint64_t stream)
      : key0_(static_cast<std::uint32_t>(seed)),
        key1_(static_cast<std::uint32_t>(seed >> 32)),
        stream_(stream) {}

  std::uint32_t next_u32() {
    if (pos_ == 4) refill();
    return out_[pos_++];
  }

  std::uint64_t next_u64() {
    std::uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform double in (0, 1): safe for log().
  double uniform_open() {
    return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53;
  }

  // Unbiased integer in [0, n) (Lemire's multiply-shift with rejection).
  std::uint64_t below(std::uint64_t n) {
    if (n <= 0xFFFFFFFFULL) {
      const std::uint32_t n32 = static_cast<std::uint32_t>(n);
      std::uint64_t m = static_cast<std::uint64_t>(next_u32()) * n32;
      std::uint32_t low = static_cast<std::uint32_t>(m);
      if (low < n32) {
        const std::uint32_t threshold = static_cast<std::uint32_t>(-n32) % n32;
        while (low < threshold) {
          m = static_cast<std::uint64_t>(next_u32()) * n32;
          low = static_cast<std::uint32_t>(m);
        }
      }
      return m >> 32;
    }
    // Large n: rejection on 64-bit draws.
    const std::uint64_t limit = ~0ULL - (~0ULL % n);
    std::uint64_t x;
    do {
      x = next_u64();
    } while (x >= limit);
    return x % n;
  }

  std::uint64_t block() const { return block_; }

 private:
  static void round(std::uint32_t (&c)[4], std::uint32_t k0, std::uint32_t k1) {
    constexpr std::uint64_t M0 = 0xD2511F53ULL, M1 = 0xCD9E8D57ULL;
    const std::uint64_t p0 = M0 * c[0];
    const std::uint64_t p1 = M1 * c[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c[0] = hi1 ^ c[1] ^ k0;
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k1;
    c[3] = lo0;
  }

  void refill() {
    std::uint32_t c[4] = {static_cast<std::uint32_t>(block_), static_cast<std::uint32_t>(block_ >> 32),
                          static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)};
    std::uint32_t k0 = key0_, k1 = key1_;
    for (int r = 0; r < 10; ++r) {
      round(c, k0, k1);
      k0 += 0x9E3779B9U;
      k1 += 0xBB67AE85U;
    }
    for (int i = 0; i < 4; ++i) out_[i] = c[i];
    ++block_;
    pos_ = 0;
  }

  std::uint32_t key0_, key1_;
  std::uint64_t stream_;
  std::uint64_t block_ = 0;
  std::uint32_t out_[4] = {0, 0, 0, 0};
  int pos_ = 4;
};

}  // namespace collapse
