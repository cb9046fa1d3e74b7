// Counting stage: the highest order by sorting packed windows of every document; the
// lower orders follow from it (adjust.cpp), as lmplz derives them from its N-gram stream.
//
// Bounded passes and memory. The documents are taken in chunks whose windows fit half of
// the memory budget; a chunk's windows are generated straight into buckets (two reads of
// its tokens: histogram, scatter), sorted and run-length counted into a sorted run. One
// chunk (the usual case) is the table itself. Otherwise the runs are kept in memory while
// they fit the other half of the budget, written to a temporary directory past that
// (removed afterwards, on error too), and merged. So every token is read a fixed number
// of times whatever the corpus size, and the working memory is the budget.
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>

#include "collapse/ngram_count.hpp"
#include "ngram_keys.hpp"

namespace collapse {

namespace detail {
std::atomic<std::uint64_t> g_narrow_count_limit{CountColumn::kEscape};
std::atomic<std::uint64_t> g_escaped_counts{0};
std::mutex g_escape_mutex;

template <int W>
void adjust_lower_orders(std::vector<KeyedOrder<W>>& orders, const Packing& pk,
                         const std::vector<PrefixTable<W>>& prefixes, int threads, bool keep_lower_raw,
                         NGramCounts& out);
}  // namespace detail

std::uint64_t narrow_count_limit() { return detail::g_narrow_count_limit.load(); }

std::uint64_t set_narrow_count_limit(std::uint64_t limit) {
  limit = std::max<std::uint64_t>(1, std::min<std::uint64_t>(limit, CountColumn::kEscape));
  return detail::g_narrow_count_limit.exchange(limit);
}

std::uint64_t escaped_count_total() { return detail::g_escaped_counts.load(); }

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

std::uint64_t default_count_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t{1} << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 4;
}

namespace {
using namespace detail;

// Splits documents [d0, d1) into `parts` ranges of about equal weight (cumulative[d] is
// the weight of documents before d).
std::vector<std::size_t> split_documents(const std::vector<std::size_t>& cumulative, std::size_t d0, std::size_t d1,
                                         int parts) {
  std::vector<std::size_t> bounds{d0};
  const std::size_t w0 = cumulative[d0], w1 = cumulative[d1];
  for (int t = 1; t < parts; ++t) {
    const std::size_t target = w0 + (w1 - w0) * static_cast<std::size_t>(t) / parts;
    const std::size_t d = static_cast<std::size_t>(
        std::lower_bound(cumulative.begin() + d0, cumulative.begin() + d1 + 1, target) - cumulative.begin());
    bounds.push_back(std::max(bounds.back(), std::min(d, d1)));
  }
  bounds.push_back(d1);
  return bounds;
}

// See NGramCounts::last_in_suffix_order. Windows end at every word and at </s>.
std::vector<WordId> last_in_suffix_order(const CorpusView& corpus, int order) {
  std::size_t best_doc = 0, best_pos = 0;
  bool have = false;
  auto word = [&](std::size_t d, std::ptrdiff_t p) -> WordId {
    if (p <= 0) return kBos;
    return padded_word(corpus, corpus.tokens + corpus.offsets[d], corpus.doc_length(d), static_cast<std::size_t>(p));
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

// --- sorted runs, in memory or on disk ----------------------------------------------------

// A temporary directory for spilled runs, created on first use and removed (with its
// files) when counting ends, normally or by an exception.
class SpillDirectory {
 public:
  explicit SpillDirectory(std::string parent) : parent_(std::move(parent)) {}
  ~SpillDirectory() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  SpillDirectory(const SpillDirectory&) = delete;
  SpillDirectory& operator=(const SpillDirectory&) = delete;

  std::string new_file() {
    if (path_.empty()) {
      std::string parent = parent_;
      if (parent.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        parent = (tmp && *tmp) ? tmp : "/tmp";
      }
      std::string templ = (std::filesystem::path(parent) / "collapse-count-XXXXXX").string();
      std::vector<char> buf(templ.begin(), templ.end());
      buf.push_back('\0');
      if (!mkdtemp(buf.data()))
        throw std::invalid_argument("cannot create a temporary directory for counting in " + parent);
      path_ = buf.data();
    }
    return (std::filesystem::path(path_) / ("run" + std::to_string(files_++))).string();
  }

 private:
  std::string parent_;
  std::string path_;
  int files_ = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

template <int W>
struct Record {
  Key<W> key;
  std::uint64_t count;
};

// A sorted run: distinct keys and their counts (a chunk holds fewer than 2^32 windows, so
// 32-bit counts are exact).
template <int W>
struct Run {
  std::vector<Key<W>> keys;
  std::vector<std::uint32_t> counts;
  std::string file;  // when spilled: the records are there and keys/counts are empty
  std::size_t rows = 0;
  // bucket_offset[b]: the first row whose key's top 16 bits are >= b (B + 1 entries), so
  // that runs can be merged bucket range by bucket range, in parallel.
  std::vector<std::size_t> bucket_offset;
};

template <int W, class Top16>
void index_buckets(Run<W>& run, Top16 top16) {
  constexpr std::size_t B = std::size_t{1} << 16;
  run.bucket_offset.assign(B + 1, run.rows);
  std::size_t b = 0;
  for (std::size_t i = 0; i < run.rows; ++i) {
    const std::size_t k = top16(run.keys[i]);
    while (b <= k) run.bucket_offset[b++] = i;
  }
}

template <int W>
void spill(Run<W>& run, SpillDirectory& dir) {
  run.file = dir.new_file();
  File f(std::fopen(run.file.c_str(), "wb"));
  if (!f) throw std::runtime_error("cannot write the counting run " + run.file);
  constexpr std::size_t kBlock = 1 << 15;
  std::vector<Record<W>> block;
  block.reserve(kBlock);
  for (std::size_t i = 0; i < run.rows; ++i) {
    block.push_back(Record<W>{run.keys[i], run.counts[i]});
    if (block.size() == kBlock || i + 1 == run.rows) {
      if (std::fwrite(block.data(), sizeof(Record<W>), block.size(), f.get()) != block.size())
        throw std::runtime_error("cannot write the counting run " + run.file + " (disk full?)");
      block.clear();
    }
  }
  if (std::fflush(f.get()) != 0) throw std::runtime_error("cannot write the counting run " + run.file);
  std::vector<Key<W>>().swap(run.keys);
  std::vector<std::uint32_t>().swap(run.counts);
}

// Reads rows [begin, end) of a run, from memory or through a small buffer from its file.
template <int W>
class RunCursor {
 public:
  RunCursor(const Run<W>& run, std::size_t begin, std::size_t end) : run_(&run), begin_(begin), end_(end) {
    rewind();
  }
  bool done() const { return pos_ >= end_; }
  const Key<W>& key() const { return run_->file.empty() ? run_->keys[pos_] : buffer_[pos_ - buffer_start_].key; }
  std::uint64_t count() const {
    return run_->file.empty() ? run_->counts[pos_] : buffer_[pos_ - buffer_start_].count;
  }
  void next() {
    ++pos_;
    if (!run_->file.empty() && !done() && pos_ - buffer_start_ >= buffer_.size()) fill();
  }
  void rewind() {
    pos_ = begin_;
    if (run_->file.empty() || begin_ == end_) return;
    file_.reset(std::fopen(run_->file.c_str(), "rb"));
    if (!file_) throw std::runtime_error("cannot read the counting run " + run_->file);
    if (std::fseek(file_.get(), static_cast<long>(begin_ * sizeof(Record<W>)), SEEK_SET) != 0)
      throw std::runtime_error("cannot read the counting run " + run_->file);
    buffer_.clear();
    fill();
  }

 private:
  void fill() {
    constexpr std::size_t kBlock = 1 << 13;
    buffer_start_ = pos_;
    buffer_.resize(std::min(kBlock, end_ - pos_));
    if (std::fread(buffer_.data(), sizeof(Record<W>), buffer_.size(), file_.get()) != buffer_.size())
      throw std::runtime_error("counting run " + run_->file + " is shorter than written");
  }
  const Run<W>* run_;
  std::size_t begin_, end_;
  std::size_t pos_ = 0, buffer_start_ = 0;
  std::vector<Record<W>> buffer_;
  File file_;
};

// Merges sorted runs, calling emit(key, summed count) once per distinct key, in order.
template <int W, class Emit>
void merge_runs(std::vector<RunCursor<W>>& cursors, Emit&& emit) {
  auto greater = [&](std::size_t a, std::size_t b) { return cursors[b].key() < cursors[a].key(); };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(greater)> heap(greater);
  for (std::size_t i = 0; i < cursors.size(); ++i)
    if (!cursors[i].done()) heap.push(i);
  while (!heap.empty()) {
    const std::size_t i = heap.top();
    heap.pop();
    const Key<W> key = cursors[i].key();
    std::uint64_t count = cursors[i].count();
    cursors[i].next();
    if (!cursors[i].done()) heap.push(i);
    while (!heap.empty() && cursors[heap.top()].key() == key) {
      const std::size_t j = heap.top();
      heap.pop();
      count += cursors[j].count();
      cursors[j].next();
      if (!cursors[j].done()) heap.push(j);
    }
    emit(key, count);
  }
}

// Sorted, run-length counted keys -> (keys, counts), merged into `into` (both sorted).
template <int W>
void merge_into(PrefixTable<W>& into, std::vector<Key<W>>& keys) {
  std::sort(keys.begin(), keys.end());
  PrefixTable<W> out;
  out.keys.reserve(into.keys.size() + keys.size());
  std::size_t a = 0, b = 0;
  while (a < into.keys.size() || b < keys.size()) {
    if (b == keys.size() || (a < into.keys.size() && into.keys[a] < keys[b])) {
      out.keys.push_back(into.keys[a]);
      out.count.push_back(into.count[a]);
      ++a;
      continue;
    }
    const Key<W> k = keys[b];
    std::uint64_t c = 0;
    while (b < keys.size() && keys[b] == k) ++c, ++b;
    if (a < into.keys.size() && into.keys[a] == k) c += into.count[a++];
    out.keys.push_back(k);
    out.count.push_back(c);
  }
  out.keys.shrink_to_fit();
  into = std::move(out);
}

// The highest order's keys and raw counts, and the documents' prefixes, of a corpus.
template <int W>
struct KeyedBase {
  KeyedOrder<W> top;
  std::vector<PrefixTable<W>> prefixes;  // lengths 1..order-1
  std::uint64_t windows = 0;
};

// A chunk's window buffer is at most this large even when the budget is larger: past it,
// sorting more windows at once saves little, while the buffer (16 bytes a window at order
// 5) would dominate the peak memory of a whole estimation (measured at 10M tokens: 96 MB
// still keeps order 3 in one chunk, 12M windows of 8 bytes, and takes the counting stage
// of order 5 from 270 to 239 MB of the process's peak; 128 MB had taken it from 326 to 316).
constexpr std::uint64_t kMaxChunkBytes = std::uint64_t{96} << 20;
constexpr std::uint64_t kMaxRuns = 256;

template <int W>
KeyedBase<W> count_keyed(const CorpusView& corpus, const Packing& pk, int order, int threads, std::uint64_t memory,
                         const std::string& temp_dir) {
  const std::size_t n = static_cast<std::size_t>(order);
  // Windows of the highest order per document: a padded document of length L holds
  // L - n + 1 of them.
  std::vector<std::size_t> first(corpus.n_docs + 1, 0);
  for (std::size_t d = 0; d < corpus.n_docs; ++d) {
    const std::size_t len = corpus.doc_length(d) + 2;
    first[d + 1] = first[d] + (len >= n ? len - n + 1 : 0);
  }
  KeyedBase<W> base;
  base.windows = first.back();
  base.prefixes.resize(n - 1);
  // Half the budget for one chunk's windows, half for runs kept in memory. A chunk stays
  // below 2^32 windows, so its counts fit 32 bits.
  std::uint64_t chunk_bytes = std::min<std::uint64_t>(memory / 2, kMaxChunkBytes);
  // At most kMaxRuns runs (each merge opens every spilled run once per thread): a budget
  // too small for that is exceeded rather than running out of file descriptors.
  const std::uint64_t min_chunk = (static_cast<std::uint64_t>(first.back()) + kMaxRuns - 1) / kMaxRuns;
  const std::size_t chunk_cap = static_cast<std::size_t>(std::min<std::uint64_t>(
      std::max<std::uint64_t>({1, min_chunk, chunk_bytes / sizeof(Key<W>)}), std::uint64_t{0xFFFFFFFF}));
  const std::size_t run_memory = static_cast<std::size_t>(memory / 2);

  const int shift = pk.top16_shift();
  constexpr std::size_t B = std::size_t{1} << 16;
  auto window_key = [&](const WordId* doc, std::size_t k, std::size_t s) {
    Key<W> key{};
    for (std::size_t i = 0; i < n; ++i) pk.set(key, static_cast<int>(i), padded_word(corpus, doc, k, s + i));
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
      pk.set(key, static_cast<int>(n - 1), padded_word(corpus, doc, k, s + n - 1));
      fn(key);
    }
  };

  SpillDirectory spill_dir(temp_dir);
  std::vector<Run<W>> runs;
  std::size_t runs_in_memory_bytes = 0;
  std::vector<Key<W>> windows;
  std::vector<std::vector<std::size_t>> hist;
  for (std::size_t d0 = 0; d0 < corpus.n_docs;) {
    // The chunk: documents [d0, d1) with at most chunk_cap windows (at least one document).
    std::size_t d1 = static_cast<std::size_t>(
        std::upper_bound(first.begin() + d0, first.end(), first[d0] + chunk_cap) - first.begin()) - 1;
    d1 = std::max(d1, d0 + 1);
    const std::size_t size = first[d1] - first[d0];
    if (size > 0xFFFFFFFFull) throw std::invalid_argument("a document holds more than 2^32 windows");

    // Prefixes of this chunk's documents, merged into the running tables.
    for (std::size_t len = 1; len < n; ++len) {
      std::vector<Key<W>> keys;
      keys.reserve(d1 - d0);
      for (std::size_t d = d0; d < d1; ++d) {
        const std::size_t k = corpus.doc_length(d);
        if (k + 2 < len) continue;
        const WordId* doc = corpus.tokens + corpus.offsets[d];
        Key<W> key{};
        for (std::size_t i = 0; i < len; ++i) pk.set(key, static_cast<int>(i), padded_word(corpus, doc, k, i));
        keys.push_back(key);
      }
      merge_into(base.prefixes[len - 1], keys);
    }

    Run<W> run;
    windows.resize(size);
    if (size < (1u << 15)) {
      // Small chunk: generate and sort directly.
      std::size_t pos = 0;
      for (std::size_t d = d0; d < d1; ++d)
        for_each_window(corpus.tokens + corpus.offsets[d], corpus.doc_length(d),
                        [&](const Key<W>& key) { windows[pos++] = key; });
      std::sort(windows.begin(), windows.end());
      for (std::size_t i = 0; i < size;) {
        std::size_t j = i + 1;
        while (j < size && windows[j] == windows[i]) ++j;
        run.keys.push_back(windows[i]);
        run.counts.push_back(static_cast<std::uint32_t>(j - i));
        i = j;
      }
    } else {
      // Windows are generated straight into buckets by the top 16 bits of their key (two
      // passes: histogram, then scatter), each bucket is sorted and run-length counted on
      // its own. The buckets fit in cache.
      const std::vector<std::size_t> parts = split_documents(first, d0, d1, threads);
      hist.assign(threads, std::vector<std::size_t>(B, 0));
      run_threads(threads, [&](int t) {
        auto& h = hist[t];
        for (std::size_t d = parts[t]; d < parts[t + 1]; ++d)
          for_each_window(corpus.tokens + corpus.offsets[d], corpus.doc_length(d),
                          [&](const Key<W>& key) { ++h[bucket_of(key)]; });
      });
      // Offsets of (bucket, thread), so each thread scatters without locking.
      const std::vector<std::size_t> bucket_start = scatter_offsets(hist, B);
      run_threads(threads, [&](int t) {
        auto& h = hist[t];
        for (std::size_t d = parts[t]; d < parts[t + 1]; ++d)
          for_each_window(corpus.tokens + corpus.offsets[d], corpus.doc_length(d),
                          [&](const Key<W>& key) { windows[h[bucket_of(key)]++] = key; });
      });
      // Sort each bucket and compact its distinct keys to its front.
      std::vector<std::size_t> distinct(B, 0);
      std::vector<std::vector<std::uint32_t>> bucket_counts(B);
      std::atomic<std::size_t> next{0};
      run_threads(threads, [&](int) {
        std::vector<Key<W>> scratch;
        for (;;) {
          const std::size_t b0 = next.fetch_add(64);
          if (b0 >= B) break;
          for (std::size_t b = b0; b < std::min(B, b0 + 64); ++b) {
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
      std::size_t total = 0;
      for (std::size_t b = 0; b < B; ++b) total += distinct[b];
      run.keys.reserve(total);
      run.counts.reserve(total);
      for (std::size_t b = 0; b < B; ++b) {
        run.keys.insert(run.keys.end(), windows.begin() + bucket_start[b],
                        windows.begin() + bucket_start[b] + distinct[b]);
        run.counts.insert(run.counts.end(), bucket_counts[b].begin(), bucket_counts[b].end());
        std::vector<std::uint32_t>().swap(bucket_counts[b]);
      }
    }
    run.rows = run.keys.size();
    index_buckets(run, bucket_of);
    const bool last_chunk = d1 == corpus.n_docs;
    if (last_chunk && runs.empty()) {
      // The whole corpus in one chunk: the run is the table.
      std::vector<Key<W>>().swap(windows);
      base.top.keys = std::move(run.keys);
      base.top.raw.reserve(run.rows);
      for (std::uint32_t c : run.counts) base.top.raw.push_back(c);
      return base;
    }
    const std::size_t bytes = run.rows * (sizeof(Key<W>) + sizeof(std::uint32_t));
    if (runs_in_memory_bytes + bytes > run_memory) {
      spill(run, spill_dir);
    } else {
      runs_in_memory_bytes += bytes;
    }
    runs.push_back(std::move(run));
    d0 = d1;
  }
  std::vector<Key<W>>().swap(windows);
  std::vector<std::vector<std::size_t>>().swap(hist);
  release_free_memory();

  // Merge, bucket range by bucket range on all threads: a first pass counts each range's
  // distinct keys (so the table is allocated once, exactly), the second fills it.
  std::vector<std::size_t> weight(B + 1, 0);  // entries of all runs before bucket b
  for (std::size_t b = 0; b < B; ++b) {
    weight[b + 1] = weight[b];
    for (const Run<W>& r : runs) weight[b + 1] += r.bucket_offset[b + 1] - r.bucket_offset[b];
  }
  const std::size_t segments = static_cast<std::size_t>(threads) * 8;
  std::vector<std::size_t> seg_bucket{0};
  for (std::size_t s = 1; s < segments; ++s) {
    const std::size_t target = weight[B] * s / segments;
    const std::size_t b = static_cast<std::size_t>(std::lower_bound(weight.begin(), weight.end(), target) -
                                                   weight.begin());
    seg_bucket.push_back(std::max(seg_bucket.back(), std::min(b, B)));
  }
  seg_bucket.push_back(B);
  auto segment_cursors = [&](std::size_t s) {
    std::vector<RunCursor<W>> cursors;
    cursors.reserve(runs.size());
    for (const Run<W>& r : runs)
      cursors.emplace_back(r, r.bucket_offset[seg_bucket[s]], r.bucket_offset[seg_bucket[s + 1]]);
    return cursors;
  };
  std::vector<std::size_t> seg_rows(segments + 1, 0);
  {
    std::atomic<std::size_t> next{0};
    run_threads(threads, [&](int) {
      for (std::size_t s; (s = next.fetch_add(1)) < segments;) {
        auto cursors = segment_cursors(s);
        std::size_t rows = 0;
        merge_runs<W>(cursors, [&](const Key<W>&, std::uint64_t) { ++rows; });
        seg_rows[s + 1] = rows;
      }
    });
  }
  for (std::size_t s = 0; s < segments; ++s) seg_rows[s + 1] += seg_rows[s];
  base.top.keys.resize(seg_rows[segments]);
  base.top.raw.resize(seg_rows[segments]);
  {
    std::atomic<std::size_t> next{0};
    run_threads(threads, [&](int) {
      for (std::size_t s; (s = next.fetch_add(1)) < segments;) {
        auto cursors = segment_cursors(s);
        std::size_t row = seg_rows[s];
        merge_runs<W>(cursors, [&](const Key<W>& key, std::uint64_t count) {
          base.top.keys[row] = key;
          base.top.raw.set_concurrent(row, count);
          ++row;
        });
      }
    });
  }
  return base;
}

template <int W>
NGramCounts counts_from_keyed(KeyedBase<W>&& base, const Packing& pk, std::size_t vocab_size, int order,
                              int threads, bool keep_lower_raw, std::vector<WordId> last_in_suffix_order) {
  std::vector<KeyedOrder<W>> orders(static_cast<std::size_t>(order));
  if (base.top.keys.size() > kMaxRows32)
    throw std::invalid_argument("more than 2^32 - 2 distinct n-grams of one order");
  orders[order - 1] = std::move(base.top);
  NGramCounts counts;
  counts.vocab_size = vocab_size;
  counts.last_in_suffix_order = std::move(last_in_suffix_order);
  release_free_memory();
  adjust_lower_orders<W>(orders, pk, base.prefixes, threads, keep_lower_raw, counts);
  return counts;
}

void check_corpus(const CorpusView& corpus, std::size_t vocab_size, int order) {
  if (order < 1 || order > kMaxNGramOrder)
    throw std::invalid_argument("n-gram order must be between 1 and " + std::to_string(kMaxNGramOrder) +
                                ", got " + std::to_string(order));
  if (corpus.n_docs == 0) throw std::invalid_argument("the corpus is empty (no documents)");
  if (vocab_size < 3) throw std::invalid_argument("vocabulary must hold <unk>, <s>, </s>");
  if (vocab_size > (std::size_t{1} << 32) - 1) throw std::invalid_argument("vocabulary too large");
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    WordId w = corpus.tokens[i];
    if (corpus.id_map) {
      if (w >= corpus.id_map_size) throw std::invalid_argument("token id outside the vocabulary");
      w = corpus.id_map[w];
    }
    if (w >= vocab_size) throw std::invalid_argument("token id outside the vocabulary");
    if (w == kBos || w == kEos)
      throw std::invalid_argument("the corpus holds <s> or </s> inside a document (boundaries come from offsets)");
  }
}

// Calls fn(std::integral_constant<int, W>) for the key width of this order and vocabulary.
template <class Fn>
auto with_key_width(const Packing& pk, int order, Fn&& fn) {
  switch (pk.width(order)) {
    case 1: return fn(std::integral_constant<int, 1>{});
    case 2: return fn(std::integral_constant<int, 2>{});
    case 3: return fn(std::integral_constant<int, 3>{});
    case 4: return fn(std::integral_constant<int, 4>{});
    default: throw std::invalid_argument("n-gram order too high for this vocabulary size");
  }
}

std::uint64_t memory_of(const CountOptions& options) {
  return options.memory ? options.memory : default_count_memory();
}

}  // namespace

NGramCounts count_ngrams(const CorpusView& corpus, std::size_t vocab_size, int order, const CountOptions& options) {
  check_corpus(corpus, vocab_size, order);
  const int threads = resolve_threads(options.threads);
  const Packing pk(vocab_size);
  return with_key_width(pk, order, [&](auto w) {
    constexpr int W = decltype(w)::value;
    KeyedBase<W> base = count_keyed<W>(corpus, pk, order, threads, memory_of(options), options.temp_dir);
    return counts_from_keyed<W>(std::move(base), pk, vocab_size, order, threads, options.keep_lower_raw,
                                last_in_suffix_order(corpus, order));
  });
}

BaseCounts count_base(const CorpusView& corpus, std::size_t vocab_size, int order, const CountOptions& options) {
  check_corpus(corpus, vocab_size, order);
  const int threads = resolve_threads(options.threads);
  const Packing pk(vocab_size);
  BaseCounts out = with_key_width(pk, order, [&](auto w) {
    constexpr int W = decltype(w)::value;
    KeyedBase<W> base = count_keyed<W>(corpus, pk, order, threads, memory_of(options), options.temp_dir);
    BaseCounts b;
    b.order = order;
    b.windows = base.windows;
    auto unpack = [&](const std::vector<Key<W>>& keys, int len, std::vector<WordId>& words) {
      words.resize(keys.size() * static_cast<std::size_t>(len));
      for (std::size_t r = 0; r < keys.size(); ++r)
        for (int i = 0; i < len; ++i) words[r * len + i] = pk.get(keys[r], i);
    };
    unpack(base.top.keys, order, b.top_words);
    std::vector<Key<W>>().swap(base.top.keys);
    b.top_raw = std::move(base.top.raw);
    b.prefix_words.resize(order - 1);
    b.prefix_count.resize(order - 1);
    for (int len = 1; len < order; ++len) {
      unpack(base.prefixes[len - 1].keys, len, b.prefix_words[len - 1]);
      b.prefix_count[len - 1] = std::move(base.prefixes[len - 1].count);
    }
    return b;
  });
  out.last_in_suffix_order = last_in_suffix_order(corpus, order);
  return out;
}

namespace {

// Merges two sorted tables of rows of `len` ids with counts (a += b).
void merge_rows(std::vector<WordId>& a_words, CountColumn& a_count, const std::vector<WordId>& b_words,
                const CountColumn& b_count, int len) {
  const std::size_t L = static_cast<std::size_t>(len);
  const std::size_t na = a_count.size(), nb = b_count.size();
  std::vector<WordId> words;
  words.reserve(a_words.size() + b_words.size());
  CountColumn count;
  count.reserve(na + nb);
  std::size_t i = 0, j = 0;
  while (i < na || j < nb) {
    const WordId* x = i < na ? a_words.data() + i * L : nullptr;
    const WordId* y = j < nb ? b_words.data() + j * L : nullptr;
    int c;
    if (!x) c = 1;
    else if (!y) c = -1;
    else if (std::lexicographical_compare(x, x + L, y, y + L)) c = -1;
    else if (std::equal(x, x + L, y)) c = 0;
    else c = 1;
    if (c <= 0) {
      words.insert(words.end(), x, x + L);
      count.push_back(a_count[i] + (c == 0 ? b_count[j] : 0));
      ++i;
      if (c == 0) ++j;
    } else {
      words.insert(words.end(), y, y + L);
      count.push_back(b_count[j]);
      ++j;
    }
  }
  words.shrink_to_fit();
  count.shrink_to_fit();
  a_words.swap(words);
  a_count = std::move(count);
}

// Greater in suffix order: compare the last word, then the one before, ...
bool suffix_order_less(const std::vector<WordId>& a, const std::vector<WordId>& b) {
  for (std::size_t i = a.size(); i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i];
  return false;
}

}  // namespace

void merge_base_counts(BaseCounts& a, const BaseCounts& b) {
  if (a.order != b.order) throw std::invalid_argument("cannot merge counts of different orders");
  merge_rows(a.top_words, a.top_raw, b.top_words, b.top_raw, a.order);
  for (int len = 1; len < a.order; ++len)
    merge_rows(a.prefix_words[len - 1], a.prefix_count[len - 1], b.prefix_words[len - 1], b.prefix_count[len - 1],
               len);
  if (suffix_order_less(a.last_in_suffix_order, b.last_in_suffix_order))
    a.last_in_suffix_order = b.last_in_suffix_order;
  a.windows += b.windows;
}

NGramCounts derive_counts(const BaseCounts& base, std::size_t vocab_size, int threads, bool keep_lower_raw) {
  const int order = base.order;
  if (order < 1 || order > kMaxNGramOrder) throw std::invalid_argument("bad order in n-gram counts");
  threads = resolve_threads(threads);
  const Packing pk(vocab_size);
  return with_key_width(pk, order, [&](auto w) {
    constexpr int W = decltype(w)::value;
    auto pack = [&](const std::vector<WordId>& words, int len, std::vector<Key<W>>& keys) {
      const std::size_t rows = words.size() / static_cast<std::size_t>(len);
      keys.assign(rows, Key<W>{});
      for (std::size_t r = 0; r < rows; ++r)
        for (int i = 0; i < len; ++i) {
          const WordId id = words[r * len + i];
          if (id >= vocab_size) throw std::invalid_argument("n-gram id outside the vocabulary");
          pk.set(keys[r], i, id);
        }
    };
    KeyedBase<W> keyed;
    pack(base.top_words, order, keyed.top.keys);
    keyed.top.raw = base.top_raw;
    keyed.prefixes.resize(order - 1);
    for (int len = 1; len < order; ++len) {
      pack(base.prefix_words[len - 1], len, keyed.prefixes[len - 1].keys);
      keyed.prefixes[len - 1].count = base.prefix_count[len - 1];
    }
    return counts_from_keyed<W>(std::move(keyed), pk, vocab_size, order, threads, keep_lower_raw,
                                base.last_in_suffix_order);
  });
}

std::vector<WordId> compact_id_map(const CorpusView& corpus, std::size_t vocab_size, std::vector<WordId>& new_to_old) {
  constexpr WordId kUnset = ~WordId{0};
  std::vector<WordId> old_to_new(vocab_size, kUnset);
  new_to_old = {kUnk, kBos, kEos};
  for (WordId s = 0; s < 3 && s < vocab_size; ++s) old_to_new[s] = s;
  for (std::size_t i = 0; i < corpus.n_tokens; ++i) {
    const WordId w = corpus.tokens[i];
    if (w >= vocab_size) throw std::invalid_argument("token id outside the vocabulary");
    WordId& m = old_to_new[w];
    if (m == kUnset) {
      m = static_cast<WordId>(new_to_old.size());
      new_to_old.push_back(w);
    }
  }
  return old_to_new;
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
