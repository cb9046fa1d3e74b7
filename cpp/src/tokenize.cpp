// Whitespace tokenization with vocabulary building in one pass over the bytes.
#include "collapse/parallel.hpp"
#include "collapse/tokenize.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <exception>
#include <stdexcept>
#include <thread>

namespace collapse {

namespace {

// lmplz's delimiters (lm/builder/corpus_count.cc): NUL, tab, LF, CR, space. Nothing else,
// so \v, \f and Unicode spaces stay inside tokens.
constexpr std::array<bool, 256> make_delimiter_table() {
  std::array<bool, 256> t{};
  t['\0'] = t['\t'] = t['\n'] = t['\r'] = t[' '] = true;
  return t;
}
constexpr std::array<bool, 256> kDelimiter = make_delimiter_table();

constexpr std::size_t kMaxWordBytes = std::numeric_limits<std::uint32_t>::max();

inline bool is_delimiter(char c) { return kDelimiter[static_cast<unsigned char>(c)]; }

// A word hash: 8 bytes at a time, multiply-rotate, then a final avalanche. Words are
// short, so the loop rarely runs more than twice.
inline std::uint64_t hash_bytes(const char* p, std::size_t n) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x2545F4914F6CDD1Dull ^ (n * kMul);
  while (n >= 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, p, 8);
    h = (h ^ chunk) * kMul;
    h = (h << 29) | (h >> 35);
    p += 8;
    n -= 8;
  }
  if (n) {
    std::uint64_t chunk = 0;
    std::memcpy(&chunk, p, n);
    h = (h ^ chunk) * kMul;
  }
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

// Open addressing, linear probing, at most half full. The words themselves are copied
// into one arena: a lookup compares against compact, cache-resident bytes instead of the
// word's first occurrence somewhere in a large text.
class WordTable {
 public:
  explicit WordTable(std::size_t expected) {
    std::size_t cap = 1024;
    while (cap < 2 * expected) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }

  // The id stored for the word; when absent, inserts it with `id_if_new` if `insert`
  // (setting `inserted`), else returns kAbsent.
  std::uint32_t find_or_insert(const char* p, std::uint32_t n, std::uint32_t id_if_new, bool insert,
                               bool& inserted) {
    const std::uint64_t h = hash_bytes(p, n);
    std::size_t i = h & mask_;
    inserted = false;
    while (true) {
      Slot& s = slots_[i];
      if (s.length == kEmpty) {
        if (!insert) return kAbsent;
        inserted = true;
        s = Slot{h, arena_.size(), n, id_if_new};
        arena_.insert(arena_.end(), p, p + n);
        if (++size_ * 2 > slots_.size()) rehash();
        return id_if_new;
      }
      if (s.hash == h && s.length == n && std::memcmp(arena_.data() + s.offset, p, n) == 0) return s.id;
      i = (i + 1) & mask_;
    }
  }

  static constexpr std::uint32_t kAbsent = std::numeric_limits<std::uint32_t>::max();

 private:
  static constexpr std::uint32_t kEmpty = std::numeric_limits<std::uint32_t>::max();
  struct Slot {
    std::uint64_t hash = 0;
    std::size_t offset = 0;        // of the word in arena_
    std::uint32_t length = kEmpty;  // kEmpty marks a free slot
    std::uint32_t id = 0;
  };

  void rehash() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.length == kEmpty) continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].length != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::vector<char> arena_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace

std::size_t first_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    if (i + 8 <= n) {
      std::uint64_t chunk;
      std::memcpy(&chunk, s + i, 8);
      if ((chunk & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Well-formed sequences (Unicode Table 3-7): the allowed range of the second byte
    // depends on the lead byte; later bytes are 80..BF.
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + 1 >= n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (i + k >= n || s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += len;
  }
  return n;
}

std::vector<std::int64_t> line_bounds(std::string_view text) {
  std::vector<std::int64_t> bounds{0};
  const char* base = text.data();
  const char* end = base + text.size();
  for (const char* p = base; p < end;) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    if (nl == nullptr) {
      bounds.push_back(static_cast<std::int64_t>(text.size()));  // unterminated last line
      break;
    }
    p = static_cast<const char*>(nl) + 1;
    bounds.push_back(p - base);
  }
  return bounds;
}

namespace {

// The tokens of documents [doc_begin, doc_end) with ids from a table seeded with `known`;
// a word new to this chunk gets the provisional id known.size() + (its rank among the
// chunk's new words), resolved to a global id when the chunks are merged.
struct ChunkTokens {
  std::vector<std::uint32_t> tokens;
  std::vector<std::int64_t> doc_ends;  // token count after each document of the chunk
  std::vector<std::string_view> new_words;
};

ChunkTokens tokenize_chunk(std::string_view text, const std::vector<std::int64_t>& doc_bounds,
                           std::size_t doc_begin, std::size_t doc_end, const std::vector<std::string>& known,
                           bool grow) {
  WordTable table(known.size() + 4096);
  bool inserted = false;
  for (std::size_t id = 0; id < known.size(); ++id) {
    const std::string& w = known[id];
    // A word that cannot come out of the scan (empty, or holding a delimiter) is never
    // matched; a repeated word keeps its first id, as Python's dict in Vocab does.
    if (w.size() >= kMaxWordBytes) continue;
    table.find_or_insert(w.data(), static_cast<std::uint32_t>(w.size()), static_cast<std::uint32_t>(id), true,
                         inserted);
  }
  ChunkTokens out;
  const std::size_t chunk_bytes = static_cast<std::size_t>(doc_bounds[doc_end] - doc_bounds[doc_begin]);
  out.tokens.reserve(chunk_bytes / 6 + 16);
  out.doc_ends.reserve(doc_end - doc_begin);
  std::uint64_t next_id = known.size();
  const char* base = text.data();
  for (std::size_t d = doc_begin; d < doc_end; ++d) {
    const char* p = base + doc_bounds[d];
    const char* end = base + doc_bounds[d + 1];
    while (p < end) {
      while (p < end && is_delimiter(*p)) ++p;
      if (p == end) break;
      const char* start = p;
      while (p < end && !is_delimiter(*p)) ++p;
      const std::size_t len = static_cast<std::size_t>(p - start);
      if (len >= kMaxWordBytes) throw std::invalid_argument("a token of 4 GiB or more");
      std::uint32_t id = table.find_or_insert(start, static_cast<std::uint32_t>(len),
                                              static_cast<std::uint32_t>(next_id), grow, inserted);
      if (id == WordTable::kAbsent) {
        id = 0;  // <unk>
      } else if (inserted) {
        out.new_words.emplace_back(start, len);
        if (++next_id >= std::numeric_limits<std::uint32_t>::max())
          throw std::invalid_argument("more than 2^32 - 1 distinct words");
      }
      out.tokens.push_back(id);
    }
    out.doc_ends.push_back(static_cast<std::int64_t>(out.tokens.size()));
  }
  return out;
}


}  // namespace

TokenizedText tokenize_whitespace(std::string_view text, const std::vector<std::int64_t>& doc_bounds,
                                  const std::vector<std::string>& known, bool grow, int threads,
                                  std::size_t min_bytes_per_thread) {
  if (doc_bounds.empty() || doc_bounds.front() != 0 ||
      doc_bounds.back() != static_cast<std::int64_t>(text.size()))
    throw std::invalid_argument("document bounds must start at 0 and end at the text size");
  for (std::size_t i = 1; i < doc_bounds.size(); ++i)
    if (doc_bounds[i] < doc_bounds[i - 1]) throw std::invalid_argument("document bounds must be non-decreasing");
  if (known.size() >= std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument("vocabulary too large for 32-bit ids");

  // Chunks of whole documents, about equal in bytes. The result does not depend on how
  // many there are: the merge below numbers new words in order of first appearance.
  const std::size_t num_docs = doc_bounds.size() - 1;
  std::size_t num_chunks = static_cast<std::size_t>(resolve_threads(threads));
  num_chunks = std::min({num_chunks, std::max<std::size_t>(1, text.size() / std::max<std::size_t>(1, min_bytes_per_thread)),
                         std::max<std::size_t>(1, num_docs)});
  std::vector<std::size_t> cuts{0};
  for (std::size_t k = 1; k < num_chunks; ++k) {
    const auto target = static_cast<std::int64_t>(text.size() / num_chunks * k);
    const auto d = static_cast<std::size_t>(std::lower_bound(doc_bounds.begin(), doc_bounds.end(), target) -
                                            doc_bounds.begin());
    if (d > cuts.back() && d < num_docs) cuts.push_back(d);
  }
  cuts.push_back(num_docs);
  num_chunks = cuts.size() - 1;

  std::vector<ChunkTokens> chunks(num_chunks);
  run_threads(static_cast<int>(num_chunks), [&](int chunk) {
    const auto k = static_cast<std::size_t>(chunk);
    chunks[k] = tokenize_chunk(text, doc_bounds, cuts[k], cuts[k + 1], known, grow);
  });

  TokenizedText out;
  out.offsets.reserve(num_docs + 1);
  out.offsets.push_back(0);
  std::int64_t base_tokens = 0;
  for (const ChunkTokens& c : chunks) {
    for (std::int64_t e : c.doc_ends) out.offsets.push_back(base_tokens + e);
    base_tokens += static_cast<std::int64_t>(c.tokens.size());
  }
  if (num_chunks == 1) {  // provisional ids are final
    out.tokens = std::move(chunks[0].tokens);
    out.new_words.assign(chunks[0].new_words.begin(), chunks[0].new_words.end());
    return out;
  }

  // Merge: a chunk's new words, in chunk order, get the next global ids unless an earlier
  // chunk already named them; then every chunk's provisional ids are rewritten.
  const std::uint32_t first_new = static_cast<std::uint32_t>(known.size());
  WordTable merged(4096);
  std::vector<std::vector<std::uint32_t>> global_id(num_chunks);
  std::uint64_t next_id = first_new;
  bool inserted = false;
  for (std::size_t k = 0; k < num_chunks; ++k) {
    global_id[k].reserve(chunks[k].new_words.size());
    for (std::string_view w : chunks[k].new_words) {
      const std::uint32_t id = merged.find_or_insert(w.data(), static_cast<std::uint32_t>(w.size()),
                                                     static_cast<std::uint32_t>(next_id), true, inserted);
      if (inserted) {
        out.new_words.emplace_back(w);
        if (++next_id >= std::numeric_limits<std::uint32_t>::max())
          throw std::invalid_argument("more than 2^32 - 1 distinct words");
      }
      global_id[k].push_back(id);
    }
  }
  out.tokens.resize(static_cast<std::size_t>(base_tokens));
  std::vector<std::size_t> token_start(num_chunks + 1, 0);
  for (std::size_t k = 0; k < num_chunks; ++k) token_start[k + 1] = token_start[k] + chunks[k].tokens.size();
  run_threads(static_cast<int>(num_chunks), [&](int chunk) {
    const auto k = static_cast<std::size_t>(chunk);
    const std::vector<std::uint32_t>& to_global = global_id[k];
    std::uint32_t* dst = out.tokens.data() + token_start[k];
    for (std::uint32_t id : chunks[k].tokens) *dst++ = id < first_new ? id : to_global[id - first_new];
    std::vector<std::uint32_t>().swap(chunks[k].tokens);
  });
  return out;
}

}  // namespace collapse
