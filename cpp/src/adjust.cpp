// Adjusted counts (Kneser-Ney's continuation counts), order by order downwards.
//
// The distinct n-grams of order n that do not begin with <s> are exactly the suffixes of
// the distinct (n+1)-grams (every such occurrence has a word before it), and the number of
// distinct (n+1)-grams sharing a suffix is its adjusted count N1+(. w). The n-grams
// beginning with <s> have nothing before them: they are the documents' prefixes and keep
// their raw counts, as lmplz's adjust_counts does. Raw counts of the lower orders are the
// sums of the raw counts of their left extensions (MLE and add-k use them).
#include <atomic>
#include <limits>

#include "ngram_keys.hpp"

namespace collapse::detail {

namespace {
constexpr std::uint32_t kFromPrefix = std::numeric_limits<std::uint32_t>::max();

template <int W>
struct Entry {
  Key<W> key;
  std::uint32_t origin;  // row in the order above, or kFromPrefix
};
}  // namespace

template <int W>
void adjust_lower_orders(std::vector<KeyedOrder<W>>& orders, const Packing& pk, const CorpusView& corpus,
                         int threads) {
  const int top = static_cast<int>(orders.size());
  for (int n = top - 1; n >= 1; --n) {
    KeyedOrder<W>& above = orders[n];  // order n + 1
    KeyedOrder<W>& here = orders[n - 1];
    const std::size_t rows_above = above.keys.size();
    // Entries (suffixes of the order above, then the documents' prefixes) are scattered
    // straight into buckets by the top 16 bits of their key, then each bucket is sorted:
    // no full-size sort buffer.
    const int shift = pk.top16_shift();
    constexpr std::size_t B = std::size_t{1} << 16;
    auto bucket_of = [shift](const Key<W>& k) { return static_cast<std::size_t>((k.v[0] >> shift) & 0xFFFF); };
    std::vector<Entry<W>> prefixes;
    for (std::size_t d = 0; d < corpus.n_docs; ++d) {
      const std::size_t k = corpus.doc_length(d);
      if (k + 2 < static_cast<std::size_t>(n)) continue;
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      Key<W> key{};
      for (int i = 0; i < n; ++i) pk.set(key, i, padded_word(doc, k, static_cast<std::size_t>(i)));
      prefixes.push_back(Entry<W>{key, kFromPrefix});
    }
    const int t_count = rows_above > (1u << 16) ? threads : 1;
    auto lo = [&](int t) { return rows_above * static_cast<std::size_t>(t) / t_count; };
    std::vector<std::vector<std::size_t>> hist(t_count + 1, std::vector<std::size_t>(B, 0));
    run_threads(t_count, [&](int t) {
      auto& h = hist[t];
      for (std::size_t r = lo(t); r < lo(t + 1); ++r) ++h[bucket_of(pk.drop_first(above.keys[r], n + 1))];
    });
    for (const Entry<W>& e : prefixes) ++hist[t_count][bucket_of(e.key)];
    std::vector<std::size_t> bucket_start(B + 1, 0);
    {
      std::size_t pos = 0;
      for (std::size_t b = 0; b < B; ++b) {
        bucket_start[b] = pos;
        for (int t = 0; t <= t_count; ++t) {
          const std::size_t c = hist[t][b];
          hist[t][b] = pos;
          pos += c;
        }
      }
      bucket_start[B] = pos;
    }
    std::vector<Entry<W>> entries(bucket_start[B]);
    run_threads(t_count, [&](int t) {
      auto& h = hist[t];
      for (std::size_t r = lo(t); r < lo(t + 1); ++r) {
        const Key<W> key = pk.drop_first(above.keys[r], n + 1);
        entries[h[bucket_of(key)]++] = Entry<W>{key, static_cast<std::uint32_t>(r)};
      }
    });
    for (const Entry<W>& e : prefixes) entries[hist[t_count][bucket_of(e.key)]++] = e;
    std::vector<std::vector<std::size_t>>().swap(hist);
    {
      std::atomic<std::size_t> next{0};
      run_threads(threads, [&](int) {
        for (;;) {
          const std::size_t b0 = next.fetch_add(64);
          if (b0 >= B) break;
          for (std::size_t b = b0; b < std::min(B, b0 + 64); ++b)
            if (bucket_start[b + 1] - bucket_start[b] > 1)
              std::sort(entries.begin() + bucket_start[b], entries.begin() + bucket_start[b + 1],
                        [](const Entry<W>& a, const Entry<W>& b) { return a.key < b.key; });
        }
      });
    }
    above.suffix.assign(rows_above, 0);
    here.keys.clear();
    for (std::size_t i = 0; i < entries.size();) {
      const std::uint32_t row = static_cast<std::uint32_t>(here.keys.size());
      std::size_t j = i;
      std::uint64_t raw = 0;
      for (; j < entries.size() && entries[j].key == entries[i].key; ++j) {
        if (j + 16 < entries.size() && entries[j + 16].origin != kFromPrefix) {
          __builtin_prefetch(&above.raw[entries[j + 16].origin]);
          __builtin_prefetch(&above.suffix[entries[j + 16].origin], 1);
        }
        const std::uint32_t origin = entries[j].origin;
        if (origin == kFromPrefix) {
          raw += 1;
        } else {
          raw += above.raw[origin];
          above.suffix[origin] = row;
        }
      }
      here.keys.push_back(entries[i].key);
      here.raw.push_back(static_cast<std::uint32_t>(raw));
      here.adjusted.push_back(static_cast<std::uint32_t>(j - i));
      i = j;
    }
  }

  // Unigrams: <unk> is always there (count 0 when absent), <s> has adjusted count 0.
  KeyedOrder<W>& uni = orders[0];
  if (uni.keys.empty() || pk.get(uni.keys[0], 0) != kUnk) {
    Key<W> unk{};
    uni.keys.insert(uni.keys.begin(), unk);
    uni.raw.insert(uni.raw.begin(), 0);
    uni.adjusted.insert(uni.adjusted.begin(), 0);
    if (orders.size() > 1)
      for (auto& s : orders[1].suffix) ++s;
  }
  for (std::size_t r = 0; r < uni.keys.size(); ++r)
    if (pk.get(uni.keys[r], 0) == kBos) uni.adjusted[r] = 0;
}

template void adjust_lower_orders<1>(std::vector<KeyedOrder<1>>&, const Packing&, const CorpusView&, int);
template void adjust_lower_orders<2>(std::vector<KeyedOrder<2>>&, const Packing&, const CorpusView&, int);
template void adjust_lower_orders<3>(std::vector<KeyedOrder<3>>&, const Packing&, const CorpusView&, int);
template void adjust_lower_orders<4>(std::vector<KeyedOrder<4>>&, const Packing&, const CorpusView&, int);

}  // namespace collapse::detail
