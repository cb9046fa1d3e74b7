// Counting stage: the highest order by sorting packed windows of every document; the
// lower orders follow from it (adjust.cpp), as lmplz derives them from its N-gram stream.
#include <atomic>
#include <stdexcept>
#include <string>

#include "collapse/ngram_count.hpp"
#include "ngram_keys.hpp"

namespace collapse {
namespace detail {
template <int W>
void adjust_lower_orders(std::vector<KeyedOrder<W>>& orders, const Packing& pk, const CorpusView& corpus,
                         int threads);
}  // namespace detail

namespace {
using namespace detail;

// Splits documents [0, n_docs) into `parts` ranges of about equal weight.
std::vector<std::size_t> split_documents(const std::vector<std::size_t>& cumulative, int parts) {
  const std::size_t n_docs = cumulative.size() - 1;
  std::vector<std::size_t> bounds{0};
  for (int t = 1; t < parts; ++t) {
    const std::size_t target = cumulative.back() * static_cast<std::size_t>(t) / parts;
    const std::size_t d = static_cast<std::size_t>(
        std::lower_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin());
    bounds.push_back(std::max(bounds.back(), std::min(d, n_docs)));
  }
  bounds.push_back(n_docs);
  return bounds;
}

// See NGramCounts::last_in_suffix_order. Windows end at every word and at </s>.
std::vector<WordId> last_in_suffix_order(const CorpusView& corpus, int order) {
  std::size_t best_doc = 0, best_pos = 0;
  bool have = false;
  auto word = [&](std::size_t d, std::ptrdiff_t p) -> WordId {
    if (p <= 0) return kBos;
    return padded_word(corpus.tokens + corpus.offsets[d], corpus.doc_length(d), static_cast<std::size_t>(p));
  };
  for (std::size_t d = 0; d < corpus.n_docs; ++d) {
    const std::size_t k = corpus.doc_length(d);
    for (std::size_t p = 1; p <= k + 1; ++p) {
      if (!have) {
        best_doc = d, best_pos = p, have = true;
        continue;
      }
      for (int i = 0; i < order; ++i) {
        const WordId a = word(d, static_cast<std::ptrdiff_t>(p) - i);
        const WordId b = word(best_doc, static_cast<std::ptrdiff_t>(best_pos) - i);
        if (a != b) {
          if (a > b) best_doc = d, best_pos = p;
          break;
        }
      }
    }
  }
  std::vector<WordId> out(order);
  for (int i = 0; i < order; ++i)
    out[order - 1 - i] = word(best_doc, static_cast<std::ptrdiff_t>(best_pos) - i);
  return out;
}

template <int W>
NGramCounts count_packed(const CorpusView& corpus, const Packing& pk, std::size_t vocab_size, int order,
                         int threads) {
  const std::size_t n = static_cast<std::size_t>(order);
  // Windows of the highest order per document: a padded document of length L holds
  // L - n + 1 of them.
  std::vector<std::size_t> first(corpus.n_docs + 1, 0);
  for (std::size_t d = 0; d < corpus.n_docs; ++d) {
    const std::size_t len = corpus.doc_length(d) + 2;
    first[d + 1] = first[d] + (len >= n ? len - n + 1 : 0);
  }
  if (first.back() >= (std::size_t{1} << 32) - 1)
    throw std::invalid_argument("corpus too large: more than 2^32 n-gram windows");
  // Windows are generated straight into buckets by the top 16 bits of their key (two
  // passes: histogram, then scatter), each bucket is sorted and run-length counted on its
  // own. No full-size second buffer, and the buckets fit in cache.
  const std::vector<std::size_t> parts = split_documents(first, threads);
  const int shift = pk.top16_shift();
  constexpr std::size_t B = std::size_t{1} << 16;
  auto window_key = [&](const WordId* doc, std::size_t k, std::size_t s) {
    Key<W> key{};
    for (std::size_t i = 0; i < n; ++i) pk.set(key, static_cast<int>(i), padded_word(doc, k, s + i));
    return key;
  };
  auto bucket_of = [shift](const Key<W>& key) { return static_cast<std::size_t>((key.v[0] >> shift) & 0xFFFF); };
  // Calls fn(key) for every window of the document; the key slides (drop the first word,
  // set the new last one).
  auto for_each_window = [&](const WordId* doc, std::size_t k, auto&& fn) {
    if (k + 2 < n) return;
    Key<W> key = window_key(doc, k, 0);
    fn(key);
    for (std::size_t s = 1; s + n <= k + 2; ++s) {
      key = pk.drop_first(key, static_cast<int>(n));
      pk.set(key, static_cast<int>(n - 1), padded_word(doc, k, s + n - 1));
      fn(key);
    }
  };
  std::vector<std::vector<std::size_t>> hist(threads, std::vector<std::size_t>(B, 0));
  run_threads(threads, [&](int t) {
    auto& h = hist[t];
    for (std::size_t d = parts[t]; d < parts[t + 1]; ++d) {
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      const std::size_t k = corpus.doc_length(d);
      for_each_window(doc, k, [&](const Key<W>& key) { ++h[bucket_of(key)]; });
    }
  });
  // Bucket totals; then the buckets are processed in contiguous ranges holding at most
  // kWindowBudget bytes of windows each (one pass over the corpus per range), which bounds
  // the memory of this stage whatever the corpus size.
  std::vector<std::size_t> totals(B, 0);
  for (int t = 0; t < threads; ++t)
    for (std::size_t b = 0; b < B; ++b) totals[b] += hist[t][b];
  constexpr std::size_t kWindowBudget = std::size_t{96} << 20;
  const std::size_t per_pass = std::max<std::size_t>(1, kWindowBudget / sizeof(Key<W>));
  std::vector<KeyedOrder<W>> orders(n);
  KeyedOrder<W>& top = orders[n - 1];
  std::vector<std::uint32_t> bucket_raw_start;
  for (std::size_t range_lo = 0; range_lo < B;) {
    std::size_t range_hi = range_lo, size = 0;
    while (range_hi < B && (range_hi == range_lo || size + totals[range_hi] <= per_pass)) size += totals[range_hi++];
    // Offsets of (bucket, thread) inside this range.
    std::vector<std::size_t> bucket_start(range_hi - range_lo + 1, 0);
    {
      std::size_t pos = 0;
      for (std::size_t b = range_lo; b < range_hi; ++b) {
        bucket_start[b - range_lo] = pos;
        for (int t = 0; t < threads; ++t) {
          const std::size_t c = hist[t][b];
          hist[t][b] = pos;
          pos += c;
        }
      }
      bucket_start[range_hi - range_lo] = pos;
    }
    std::vector<Key<W>> windows(size);
    if (size) {
      run_threads(threads, [&](int t) {
        auto& h = hist[t];
        for (std::size_t d = parts[t]; d < parts[t + 1]; ++d) {
          const WordId* doc = corpus.tokens + corpus.offsets[d];
          const std::size_t k = corpus.doc_length(d);
          for_each_window(doc, k, [&](const Key<W>& key) {
            const std::size_t b = bucket_of(key);
            if (b >= range_lo && b < range_hi) windows[h[b]++] = key;
          });
        }
      });
    }
    // Sort each bucket and compact its distinct keys to its front.
    const std::size_t nb = range_hi - range_lo;
    std::vector<std::size_t> distinct(nb, 0);
    std::vector<std::vector<std::uint32_t>> bucket_counts(nb);
    std::atomic<std::size_t> next{0};
    run_threads(threads, [&](int) {
      std::vector<Key<W>> scratch;
      for (;;) {
        const std::size_t b0 = next.fetch_add(64);
        if (b0 >= nb) break;
        for (std::size_t b = b0; b < std::min(nb, b0 + 64); ++b) {
          Key<W>* lo = windows.data() + bucket_start[b];
          Key<W>* hi = windows.data() + bucket_start[b + 1];
          if (lo == hi) continue;
          sort_large_bucket(lo, hi, shift, scratch);
          std::vector<std::uint32_t>& counts = bucket_counts[b];
          Key<W>* out = lo;
          for (Key<W>* i = lo; i < hi;) {
            Key<W>* j = i + 1;
            while (j < hi && *j == *i) ++j;
            *out++ = *i;
            counts.push_back(static_cast<std::uint32_t>(j - i));
            i = j;
          }
          distinct[b] = static_cast<std::size_t>(out - lo);
        }
      }
    });
    if (range_lo == 0 && range_hi < B) {
      // Reserve for the whole order from this first range's distinct/window ratio, so that
      // appending later ranges does not reallocate and copy.
      std::size_t d = 0;
      for (std::size_t b = 0; b < nb; ++b) d += distinct[b];
      const double ratio = size ? static_cast<double>(d) / static_cast<double>(size) : 1.0;
      const std::size_t estimate = static_cast<std::size_t>(ratio * 1.15 * static_cast<double>(first.back())) + 1024;
      top.keys.reserve(estimate);
      top.raw.reserve(estimate);
    }
    for (std::size_t b = 0; b < nb; ++b) {
      top.keys.insert(top.keys.end(), windows.begin() + bucket_start[b],
                      windows.begin() + bucket_start[b] + distinct[b]);
      top.raw.insert(top.raw.end(), bucket_counts[b].begin(), bucket_counts[b].end());
    }
    range_lo = range_hi;
  }
  std::vector<std::vector<std::size_t>>().swap(hist);
  top.keys.shrink_to_fit();
  top.raw.shrink_to_fit();
  top.adjusted = top.raw;

  adjust_lower_orders<W>(orders, pk, corpus, threads);

  NGramCounts counts;
  counts.last_in_suffix_order = last_in_suffix_order(corpus, order);
  counts.order = order;
  counts.vocab_size = vocab_size;
  counts.orders.resize(n);
  for (std::size_t o = 0; o < n; ++o) {
    KeyedOrder<W>& src = orders[o];
    CountedOrder& dst = counts.orders[o];
    dst.n = static_cast<int>(o + 1);
    dst.words.resize(src.keys.size() * (o + 1));
    for (std::size_t r = 0; r < src.keys.size(); ++r)
      for (std::size_t i = 0; i <= o; ++i) dst.words[r * (o + 1) + i] = pk.get(src.keys[r], static_cast<int>(i));
    std::vector<Key<W>>().swap(src.keys);
    dst.raw = std::move(src.raw);
    dst.adjusted = std::move(src.adjusted);
    dst.suffix = std::move(src.suffix);
  }
  return counts;
}

}  // namespace

NGramCounts count_ngrams(const CorpusView& corpus, std::size_t vocab_size, int order, int threads) {
  if (order < 1 || order > kMaxNGramOrder)
    throw std::invalid_argument("n-gram order must be between 1 and " + std::to_string(kMaxNGramOrder) +
                                ", got " + std::to_string(order));
  if (corpus.n_docs == 0) throw std::invalid_argument("the corpus is empty (no documents)");
  if (vocab_size < 3) throw std::invalid_argument("vocabulary must hold <unk>, <s>, </s>");
  if (vocab_size > (std::size_t{1} << 32) - 1) throw std::invalid_argument("vocabulary too large");
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    const WordId w = corpus.tokens[i];
    if (w >= vocab_size) throw std::invalid_argument("token id outside the vocabulary");
    if (w == kBos || w == kEos)
      throw std::invalid_argument("the corpus holds <s> or </s> inside a document (boundaries come from offsets)");
  }
  threads = resolve_threads(threads);
  const Packing pk(vocab_size);
  switch (pk.width(order)) {
    case 1: return count_packed<1>(corpus, pk, vocab_size, order, threads);
    case 2: return count_packed<2>(corpus, pk, vocab_size, order, threads);
    case 3: return count_packed<3>(corpus, pk, vocab_size, order, threads);
    case 4: return count_packed<4>(corpus, pk, vocab_size, order, threads);
    default: throw std::invalid_argument("n-gram order too high for this vocabulary size");
  }
}

std::vector<WordId> compact_vocabulary(const CorpusView& corpus, std::size_t vocab_size,
                                       std::vector<WordId>& new_to_old) {
  constexpr WordId kUnset = ~WordId{0};
  std::vector<WordId> old_to_new(vocab_size, kUnset);
  new_to_old = {kUnk, kBos, kEos};
  for (WordId s = 0; s < 3 && s < vocab_size; ++s) old_to_new[s] = s;
  std::vector<WordId> out(corpus.n_tokens);
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    const WordId w = corpus.tokens[i];
    if (w >= vocab_size) throw std::invalid_argument("token id outside the vocabulary");
    WordId& m = old_to_new[w];
    if (m == kUnset) {
      m = static_cast<WordId>(new_to_old.size());
      new_to_old.push_back(w);
    }
    out[i] = m;
  }
  return out;
}

bool is_compact_vocabulary(const CorpusView& corpus, std::size_t vocab_size) {
  // Ids >= 3 must first appear as 3, 4, 5, ...: track the next new id expected.
  WordId next = 3;
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    const WordId w = corpus.tokens[i];
    if (w < 3 || w < next) continue;
    if (w != next) return false;
    ++next;
  }
  return next == vocab_size;
}

}  // namespace collapse
