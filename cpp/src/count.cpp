// Counting stage: the highest order by sorting packed windows of every document; the
// lower orders follow from it (adjust.cpp), as lmplz derives them from its N-gram stream.
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
  std::vector<Key<W>> windows(first.back());
  const std::vector<std::size_t> parts = split_documents(first, threads);
  run_threads(threads, [&](int t) {
    for (std::size_t d = parts[t]; d < parts[t + 1]; ++d) {
      const WordId* doc = corpus.tokens + corpus.offsets[d];
      const std::size_t k = corpus.doc_length(d);
      Key<W>* out = windows.data() + first[d];
      for (std::size_t s = 0; s + n <= k + 2; ++s) {
        Key<W> key{};
        for (std::size_t i = 0; i < n; ++i) pk.set(key, static_cast<int>(i), padded_word(doc, k, s + i));
        out[s] = key;
      }
    }
  });
  parallel_sort(windows, threads, [](const Key<W>& a, const Key<W>& b) { return a < b; });

  std::vector<KeyedOrder<W>> orders(n);
  KeyedOrder<W>& top = orders[n - 1];
  for (std::size_t i = 0; i < windows.size();) {
    std::size_t j = i + 1;
    while (j < windows.size() && windows[j] == windows[i]) ++j;
    top.keys.push_back(windows[i]);
    top.raw.push_back(static_cast<std::uint32_t>(j - i));
    i = j;
  }
  top.adjusted = top.raw;
  std::vector<Key<W>>().swap(windows);

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

}  // namespace collapse
