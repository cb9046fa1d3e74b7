// Adjusted counts (Kneser-Ney's continuation counts), order by order downwards.
//
// The distinct n-grams of order n that do not begin with <s> are exactly the suffixes of
// the distinct (n+1)-grams (every such occurrence has a word before it), and the number of
// distinct (n+1)-grams sharing a suffix is its adjusted count N1+(. w). The n-grams
// beginning with <s> have nothing before them: they are the documents' prefixes and keep
// their raw counts, as lmplz's adjust_counts does. Raw counts of the lower orders are the
// sums of the raw counts of their left extensions (MLE and add-k use them).
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
    std::vector<Entry<W>> entries;
    entries.reserve(rows_above + corpus.n_docs);
    entries.resize(rows_above);
    {
      const int t_count = rows_above > (1u << 16) ? threads : 1;
      run_threads(t_count, [&](int t) {
        const std::size_t lo = rows_above * t / t_count, hi = rows_above * (t + 1) / t_count;
        for (std::size_t r = lo; r < hi; ++r)
          entries[r] = Entry<W>{pk.drop_first(above.keys[r], n + 1), static_cast<std::uint32_t>(r)};
      });
    }
    for (std::size_t d = 0; d < corpus.n_docs; ++d) {
      const std::size_t k = corpus.doc_length(d);
      if (k + 2 < static_cast<std::size_t>(n)) continue;
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      Key<W> key{};
      for (int i = 0; i < n; ++i) pk.set(key, i, padded_word(doc, k, static_cast<std::size_t>(i)));
      entries.push_back(Entry<W>{key, kFromPrefix});
    }
    parallel_sort(entries, threads, [](const Entry<W>& a, const Entry<W>& b) { return a.key < b.key; });

    above.suffix.assign(rows_above, 0);
    here.keys.clear();
    for (std::size_t i = 0; i < entries.size();) {
      const std::uint32_t row = static_cast<std::uint32_t>(here.keys.size());
      std::size_t j = i;
      std::uint64_t raw = 0;
      for (; j < entries.size() && entries[j].key == entries[i].key; ++j) {
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
