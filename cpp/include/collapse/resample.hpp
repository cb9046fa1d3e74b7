// Finite-corpus resampling: document indices drawn with or without replacement, random
// permutations, and gathering documents into a new corpus.
//
// Determinism: draw i with replacement uses the Philox stream (seed, i); without
// replacement, document d gets the random key of stream (seed, d) and documents are
// taken in key order (ties by index), which is a uniformly random permutation. So the
// first n documents drawn without replacement are the first n of the permutation, and
// no result depends on the number of threads.
#pragma once

#include <cstdint>
#include <vector>

namespace collapse {

// n indices in [0, num_docs), independent and uniform.
std::vector<std::int64_t> draw_with_replacement(std::uint64_t num_docs, std::uint64_t n, std::uint64_t seed,
                                                int threads = 0);

// The first n documents of the random permutation keyed by seed (n <= num_docs), in
// permutation order: a uniformly random ordered sample without replacement.
std::vector<std::int64_t> draw_without_replacement(std::uint64_t num_docs, std::uint64_t n, std::uint64_t seed,
                                                   int threads = 0);

// A uniformly random permutation of [0, num_docs).
std::vector<std::int64_t> random_permutation(std::uint64_t num_docs, std::uint64_t seed, int threads = 0);

// Documents indices[0], indices[1], ... of the corpus (tokens, offsets) as a new corpus.
void gather_documents(const std::uint32_t* tokens, const std::int64_t* offsets, std::uint64_t num_docs,
                      const std::int64_t* indices, std::uint64_t n, std::vector<std::uint32_t>& out_tokens,
                      std::vector<std::int64_t>& out_offsets, int threads = 0);

}  // namespace collapse
