// Adjusted counts (Kneser-Ney's continuation counts), order by order downwards.
//
// The distinct n-grams of order n that do not begin with <s> are exactly the suffixes of
// the distinct (n+1)-grams (every such occurrence has a word before it), and the number of
// distinct (n+1)-grams sharing a suffix is its adjusted count N1+(. w). The n-grams
// beginning with <s> have nothing before them: they are the documents' prefixes and keep
// their raw counts, as lmplz's adjust_counts does. Raw counts of the lower orders are the
// sums of the raw counts of their left extensions (MLE and add-k use them).
//
// The prefixes come as a sorted table with counts (PrefixTable), so that counts of two
// corpora can be merged without their text (count.cpp, BaseCounts). They never share a
// key with a suffix (a suffix never begins with <s>), and are merged into the order's
// sorted rows in one walk.
//
// Memory: an order's keys are converted to id rows (into `out`) as soon as the order
// below has been derived from them, so at most two orders are held as keys; each order's
// rows are counted before they are stored, so no table grows by doubling. Raw counts
// below the highest order are summed only when they are kept (MLE, add-k); the sort
// entries are packed (16 W + 4 bytes).
#include <atomic>
#include <limits>
#include <stdexcept>
#include <algorithm>
#include <cstring>

#include "ngram_keys.hpp"

namespace collapse::detail {

namespace {
// 4-byte aligned: 16 W + 4 bytes instead of 16 W + 8 (the largest array of the
// derivation, one per row of the order above). The key is kept as 32-bit halves and
// copied out, so nothing reads a 64-bit word at a 4-byte address (undefined behaviour,
// which a packed struct would do).
template <int W>
struct Entry {
  std::uint32_t key_halves[2 * W];
  std::uint32_t origin;  // row in the order above

  static Entry make(const Key<W>& key, std::uint32_t origin) {
    Entry e;
    std::memcpy(e.key_halves, key.v, sizeof key.v);
    e.origin = origin;
    return e;
  }
  Key<W> key() const {
    Key<W> k;
    std::memcpy(k.v, key_halves, sizeof k.v);
    return k;
  }
};
static_assert(sizeof(Entry<2>) == 20 && alignof(Entry<2>) == 4, "entries take 16 W + 4 bytes");

// Kneser-Ney's discounts read one raw count below the highest order: that of the suffix of
// length n of last (see NGramCounts::last_suffix_raw). It is the sum of the raw counts of
// the highest-order rows and of the documents' prefixes (lengths n .. top-1) that end in
// that suffix, which is what the raw sums of adjust_lower_orders would give, so without
// raw counts below the top they are not kept: one pass over the top order instead.
template <int W>
std::vector<std::uint64_t> raw_of_last_suffixes(const KeyedOrder<W>& top_order, int top, const Packing& pk,
                                                const std::vector<PrefixTable<W>>& prefixes,
                                                const std::vector<WordId>& last) {
  std::vector<std::uint64_t> raw(static_cast<std::size_t>(top), 0);
  if (static_cast<int>(last.size()) != top) return raw;
  // Adds count to raw[n-1] for every n < top such that the last n words of key (len
  // words) are the last n words of `last`.
  auto add = [&](const Key<W>& key, int len, std::uint64_t count) {
    for (int n = 1; n <= len && n < top; ++n) {
      if (pk.get(key, len - n) != last[static_cast<std::size_t>(top - n)]) break;
      raw[static_cast<std::size_t>(n - 1)] += count;
    }
  };
  for (std::size_t r = 0; r < top_order.keys.size(); ++r) add(top_order.keys[r], top, top_order.raw[r]);
  for (int m = 1; m < top; ++m) {
    const PrefixTable<W>& p = prefixes[static_cast<std::size_t>(m - 1)];
    for (std::size_t r = 0; r < p.keys.size(); ++r) add(p.keys[r], m, p.count[r]);
  }
  return raw;
}
}  // namespace

template <int W>
void adjust_lower_orders(std::vector<KeyedOrder<W>>& orders, const Packing& pk,
                         const std::vector<PrefixTable<W>>& prefixes, int threads, bool keep_lower_raw,
                         NGramCounts& out) {
  const int top = static_cast<int>(orders.size());
  out.order = top;
  out.orders.resize(static_cast<std::size_t>(top));
  // Below the highest order, raw counts are summed only when they are kept (MLE, add-k).
  if (!keep_lower_raw)
    out.last_suffix_raw = raw_of_last_suffixes<W>(orders[static_cast<std::size_t>(top - 1)], top, pk, prefixes,
                                                  out.last_in_suffix_order);
  for (int n = top - 1; n >= 1; --n) {
    KeyedOrder<W>& above = orders[n];  // order n + 1
    KeyedOrder<W>& here = orders[n - 1];
    const PrefixTable<W>& prefix = prefixes[n - 1];
    const std::size_t rows_above = above.keys.size();
    if (rows_above > kMaxRows32) throw std::invalid_argument("more than 2^32 - 2 distinct n-grams of one order");
    // Entries (suffixes of the order above) are scattered straight into buckets by the
    // top 16 bits of their key, then each bucket is sorted: no full-size sort buffer.
    const int shift = pk.top16_shift();
    constexpr std::size_t B = std::size_t{1} << 16;
    auto bucket_of = [shift](const Key<W>& k) { return static_cast<std::size_t>((k.v[0] >> shift) & 0xFFFF); };
    const int t_count = rows_above > (1u << 16) ? threads : 1;
    auto lo = [&](int t) { return rows_above * static_cast<std::size_t>(t) / t_count; };
    std::vector<std::vector<std::size_t>> hist(t_count, std::vector<std::size_t>(B, 0));
    run_threads(t_count, [&](int t) {
      auto& h = hist[t];
      for (std::size_t r = lo(t); r < lo(t + 1); ++r) ++h[bucket_of(pk.drop_first(above.keys[r], n + 1))];
    });
    std::vector<std::size_t> bucket_start(B + 1, 0);
    {
      std::size_t pos = 0;
      for (std::size_t b = 0; b < B; ++b) {
        bucket_start[b] = pos;
        for (int t = 0; t < t_count; ++t) {
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
        entries[h[bucket_of(key)]++] = Entry<W>::make(key, static_cast<std::uint32_t>(r));
      }
    });
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
                        [](const Entry<W>& a, const Entry<W>& b) { return a.key() < b.key(); });
        }
      });
    }
    above.suffix.assign(rows_above, 0);
    here.keys.clear();
    here.raw.clear();
    here.adjusted.clear();
    {
      // Rows of this order: distinct suffixes plus prefixes (they never coincide with a
      // suffix; should one, the reservation is merely one too large).
      std::size_t rows = prefix.keys.size();
      for (std::size_t i = 0; i < entries.size(); ++i)
        if (i == 0 || entries[i].key() != entries[i - 1].key()) ++rows;
      here.keys.reserve(rows);
      if (keep_lower_raw) here.raw.reserve(rows);
      here.adjusted.reserve(rows);
    }
    const std::uint32_t* above_raw = above.raw.cells();
    std::size_t p = 0;  // next prefix row
    auto emit_prefixes_below = [&](const Key<W>* bound) {
      for (; p < prefix.keys.size() && (!bound || prefix.keys[p] < *bound); ++p) {
        here.keys.push_back(prefix.keys[p]);
        if (keep_lower_raw) here.raw.push_back(prefix.count[p]);
        here.adjusted.push_back(prefix.count[p]);
      }
    };
    for (std::size_t i = 0; i < entries.size();) {
      const Key<W> key = entries[i].key();
      emit_prefixes_below(&key);
      if (here.keys.size() > kMaxRows32) throw std::invalid_argument("more than 2^32 - 2 distinct n-grams of one order");
      const std::uint32_t row = static_cast<std::uint32_t>(here.keys.size());
      std::size_t j = i;
      std::uint64_t raw = 0;
      for (; j < entries.size() && entries[j].key() == key; ++j) {
        if (j + 16 < entries.size()) {
          if (keep_lower_raw) __builtin_prefetch(&above_raw[entries[j + 16].origin]);
          __builtin_prefetch(&above.suffix[entries[j + 16].origin], 1);
        }
        const std::uint32_t origin = entries[j].origin;
        if (keep_lower_raw) raw += above.raw[origin];
        above.suffix[origin] = row;
      }
      std::uint64_t adjusted = j - i;
      if (p < prefix.keys.size() && prefix.keys[p] == key) {  // never for lmplz's counts
        raw += prefix.count[p];
        adjusted += prefix.count[p];
        ++p;
      }
      here.keys.push_back(key);
      if (keep_lower_raw) here.raw.push_back(raw);
      here.adjusted.push_back(adjusted);
      i = j;
    }
    emit_prefixes_below(nullptr);
    std::vector<Entry<W>>().swap(entries);
    // The order above is done with: store it as id rows. At the highest order the adjusted
    // count is the raw count.
    if (n + 1 == top) {
      if (keep_lower_raw)
        above.adjusted = above.raw;
      else
        above.adjusted = std::move(above.raw);  // Kneser-Ney reads no raw count at the top
    }
    out.orders[n] = to_counted_order<W>(above, n + 1, pk);
    release_free_memory();
  }
  if (top == 1) orders[0].adjusted = orders[0].raw;

  // Unigrams: <unk> is always there (count 0 when absent), <s> has adjusted count 0.
  KeyedOrder<W>& uni = orders[0];
  if (uni.keys.empty() || pk.get(uni.keys[0], 0) != kUnk) {
    Key<W> unk{};
    uni.keys.insert(uni.keys.begin(), unk);
    if (keep_lower_raw || top == 1) uni.raw.insert_front(0);
    uni.adjusted.insert_front(0);
    if (top > 1)
      for (auto& s : out.orders[1].suffix) ++s;
  }
  for (std::size_t r = 0; r < uni.keys.size(); ++r)
    if (pk.get(uni.keys[r], 0) == kBos) uni.adjusted.set(r, 0);
  out.orders[0] = to_counted_order<W>(uni, 1, pk);
}

template void adjust_lower_orders<1>(std::vector<KeyedOrder<1>>&, const Packing&,
                                     const std::vector<PrefixTable<1>>&, int, bool, NGramCounts&);
template void adjust_lower_orders<2>(std::vector<KeyedOrder<2>>&, const Packing&,
                                     const std::vector<PrefixTable<2>>&, int, bool, NGramCounts&);
template void adjust_lower_orders<3>(std::vector<KeyedOrder<3>>&, const Packing&,
                                     const std::vector<PrefixTable<3>>&, int, bool, NGramCounts&);
template void adjust_lower_orders<4>(std::vector<KeyedOrder<4>>&, const Packing&,
                                     const std::vector<PrefixTable<4>>&, int, bool, NGramCounts&);

}  // namespace collapse::detail
