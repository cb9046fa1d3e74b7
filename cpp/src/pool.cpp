// The accumulating pool: compaction extended corpus by corpus, counts merged.
//
// Why the result equals a fit on the concatenation: lmplz's vocabulary numbers words by
// first appearance, and the first appearances in A + B are those in A followed by the
// new words of B in their order; the counts of the highest order and the documents'
// beginnings of A + B are the sums of A's and B's (no window crosses a document); all
// else (lower orders, adjusted counts, discounts) is derived from those (derive_counts),
// exactly as count_ngrams derives it.
#include "collapse/ngram_pool.hpp"

#include <stdexcept>

namespace collapse {

namespace {
constexpr WordId kUnseen = ~WordId{0};
}

NGramPool::NGramPool(int order, const CountOptions& options) : order_(order), options_(options) {
  if (order < 1 || order > kMaxNGramOrder)
    throw std::invalid_argument("n-gram order must be between 1 and " + std::to_string(kMaxNGramOrder) + ", got " +
                                std::to_string(order));
  new_to_old_ = {kUnk, kBos, kEos};
  old_to_new_ = {kUnk, kBos, kEos};
  base_.order = order;
  base_.prefix_words.resize(order - 1);
  base_.prefix_count.resize(order - 1);
}

void NGramPool::add(const CorpusView& corpus, std::size_t vocab_size) {
  if (corpus.n_docs == 0) throw std::invalid_argument("the corpus is empty (no documents)");
  if (vocab_size < 3) throw std::invalid_argument("vocabulary must hold <unk>, <s>, </s>");
  if (vocab_size >= kUnseen) throw std::invalid_argument("vocabulary too large");
  if (vocab_size < old_to_new_.size()) throw std::invalid_argument("the pool's vocabulary may only grow");
  // Validate before changing anything, so a bad corpus leaves the pool as it was.
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    const WordId w = corpus.tokens[i];
    if (w >= vocab_size) throw std::invalid_argument("token id outside the vocabulary");
    if (w == kBos || w == kEos)
      throw std::invalid_argument("the corpus holds <s> or </s> inside a document (boundaries come from offsets)");
  }
  std::vector<WordId> old_to_new = old_to_new_, new_to_old = new_to_old_;
  old_to_new.resize(vocab_size, kUnseen);
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    WordId& m = old_to_new[corpus.tokens[i]];
    if (m == kUnseen) {
      m = static_cast<WordId>(new_to_old.size());
      new_to_old.push_back(corpus.tokens[i]);
    }
  }
  // Counting reads the tokens through the map (no renumbered copy).
  CorpusView compact = corpus;
  compact.id_map = old_to_new.data();
  compact.id_map_size = old_to_new.size();
  BaseCounts counts = count_base(compact, new_to_old.size(), order_, options_);
  if (documents_ == 0) {
    base_ = std::move(counts);
  } else {
    merge_base_counts(base_, counts);
  }
  old_to_new_.swap(old_to_new);
  new_to_old_.swap(new_to_old);
  documents_ += corpus.n_docs;
  tokens_ += corpus.n_tokens;
}

BackoffModel NGramPool::estimate(const std::vector<std::string>& vocab, const FitOptions& options) const {
  check_fit_options(options);
  if (options.order != order_) throw std::invalid_argument("the pool counts another order");
  if (documents_ == 0) throw std::invalid_argument("the pool is empty (nothing added)");
  if (vocab.size() < 3 || vocab[kUnk] != "<unk>" || vocab[kBos] != "<s>" || vocab[kEos] != "</s>")
    throw std::invalid_argument("vocabulary must begin with <unk>, <s>, </s>");
  if (vocab.size() < old_to_new_.size()) throw std::invalid_argument("vocabulary smaller than the pool's");
  NGramCounts counts = derive_counts(base_, new_to_old_.size(), options.threads, options.needs_lower_raw());
  return estimate_from_counts(std::move(counts), new_to_old_, vocab, options);
}

std::size_t NGramPool::bytes() const {
  std::size_t b = base_.top_words.capacity() * sizeof(WordId) + base_.top_raw.bytes();
  for (std::size_t i = 0; i < base_.prefix_words.size(); ++i)
    b += base_.prefix_words[i].capacity() * sizeof(WordId) + base_.prefix_count[i].bytes();
  return b + (old_to_new_.capacity() + new_to_old_.capacity()) * sizeof(WordId);
}

}  // namespace collapse
