#include "collapse/arpa.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "collapse/parallel.hpp"

namespace collapse {
namespace {

// Field separators: kenlm's (kARPASpaces: space, tab, CR; lines end at LF). \v and \f stay
// inside words, as lmplz's tokenizer and ours keep them (splitting on them made a model
// with such words read back as another model: found by tools/fuzz.sh).
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

class LineReader {
 public:
  explicit LineReader(const std::string& text) : text_(text) {}
  // Returns false at end of input.
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string::npos) end = text_.size();
    line = std::string_view(text_).substr(pos_, end - pos_);
    pos_ = end + 1;
    ++number_;
    return true;
  }
  std::size_t number() const { return number_; }
  std::size_t remaining() const { return pos_ < text_.size() ? text_.size() - pos_ : 0; }

 private:
  const std::string& text_;
  std::size_t pos_ = 0;
  std::size_t number_ = 0;
};

constexpr std::size_t kMaxArpaOrder = 64;

[[noreturn]] void fail(const std::string& path, std::size_t line, const std::string& what) {
  throw std::invalid_argument("malformed ARPA file " + path + " (line " + std::to_string(line) + "): " + what);
}

// A finite float (from_chars also reads "nan" and "inf", which no model may hold).
bool parse_float(std::string_view s, float& out) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

void append_float(std::string& out, float x) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  (void)ec;
  out.append(buf, ptr);
}

}  // namespace

namespace {

// The whole file into f. Lines are formatted in chunks of rows on the threads, a batch of
// chunks at a time (so the text in memory stays about threads x 4 chunks), and written in
// row order: the file is the same for any thread count.
void write_arpa_text(const BackoffModel& model, std::FILE* f, const std::string& name, int threads) {
  auto write = [&](const std::string& text) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) throw std::runtime_error("write failed: " + name);
  };
  std::string head = "\\data\\\n";
  for (int k = 0; k < model.order; ++k)
    head += "ngram " + std::to_string(k + 1) + "=" + std::to_string(model.tables[k].size()) + "\n";
  write(head);
  constexpr std::size_t kChunkRows = 1 << 16;
  const std::size_t batch = static_cast<std::size_t>(threads) * 4;
  std::vector<std::string> text(batch);
  for (int k = 0; k < model.order; ++k) {
    const NGramTable& t = model.tables[k];
    const bool highest = (k + 1 == model.order);
    write("\n\\" + std::to_string(k + 1) + "-grams:\n");
    const std::size_t chunks = (t.size() + kChunkRows - 1) / kChunkRows;
    for (std::size_t first = 0; first < chunks; first += batch) {
      const std::size_t in_batch = std::min(batch, chunks - first);
      std::atomic<std::size_t> next{0};
      run_threads(static_cast<int>(std::min<std::size_t>(threads, in_batch)), [&](int) {
        for (std::size_t c; (c = next.fetch_add(1)) < in_batch;) {
          std::string& out = text[c];
          out.clear();
          const std::size_t begin = (first + c) * kChunkRows, end = std::min(t.size(), begin + kChunkRows);
          for (std::size_t i = begin; i < end; ++i) {
            append_float(out, t.log10_prob[i]);
            out += '\t';
            const WordId* w = t.row(i);
            for (int j = 0; j < t.n; ++j) {
              if (j) out += ' ';
              out += model.vocab[w[j]];
            }
            if (!highest) {
              out += '\t';
              append_float(out, t.log10_backoff[i]);
            }
            out += '\n';
          }
        }
      });
      for (std::size_t c = 0; c < in_batch; ++c) write(text[c]);
    }
  }
  write("\n\\end\\\n");
}

}  // namespace

void write_arpa(const BackoffModel& model, const std::string& path, int threads) {
  validate(model);
  threads = resolve_threads(threads);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + tmp);
  bool closed = false;
  try {
    write_arpa_text(model, f, tmp, threads);
    closed = true;
    if (std::fclose(f) != 0) throw std::runtime_error("write failed: " + tmp);
  } catch (...) {  // a write, an allocation, a thread: nothing is left behind
    if (!closed) std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

BackoffModel read_arpa(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open ARPA file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  LineReader reader(text);
  std::string_view line;

  // Header: anything, then \data\ and the counts.
  bool found_data = false;
  while (reader.next(line)) {
    if (trim(line) == "\\data\\") {
      found_data = true;
      break;
    }
  }
  if (!found_data) fail(path, reader.number(), "no \\data\\ section");
  std::vector<std::size_t> counts;
  while (reader.next(line)) {
    std::string_view t = trim(line);
    if (t.empty()) {
      if (counts.empty()) continue;
      break;
    }
    if (t.substr(0, 6) != "ngram ") fail(path, reader.number(), "expected 'ngram N=COUNT'");
    t.remove_prefix(6);
    const std::size_t eq = t.find('=');
    if (eq == std::string_view::npos) fail(path, reader.number(), "expected 'ngram N=COUNT'");
    std::size_t n = 0, c = 0;
    std::string_view ns = trim(t.substr(0, eq)), cs = trim(t.substr(eq + 1));
    auto r1 = std::from_chars(ns.data(), ns.data() + ns.size(), n);
    auto r2 = std::from_chars(cs.data(), cs.data() + cs.size(), c);
    if (r2.ec == std::errc::result_out_of_range) fail(path, reader.number(), "n-gram count too large");
    if (r1.ec != std::errc() || r2.ec != std::errc() || r1.ptr != ns.data() + ns.size() ||
        r2.ptr != cs.data() + cs.size())
      fail(path, reader.number(), "bad n-gram count line");
    if (n != counts.size() + 1) fail(path, reader.number(), "n-gram counts out of order");
    // Orders past any tool's (lmplz and kenlm stop at a compile-time limit of about 8); the
    // sampler keeps a state's length in 8 bits.
    if (n > kMaxArpaOrder) fail(path, reader.number(), "order above " + std::to_string(kMaxArpaOrder));
    counts.push_back(c);
  }
  if (counts.empty()) fail(path, reader.number(), "no n-gram counts");
  // The header is a claim, not a size to allocate: an n-gram line takes at least 2n+2
  // bytes (a one-character log10 prob, n one-character words, n separators, a newline),
  // so counts the rest of the file cannot hold are refused before anything is reserved.
  {
    std::size_t left = reader.remaining();
    for (std::size_t k = 0; k < counts.size(); ++k) {
      const std::size_t min_line = 2 * (k + 1) + 2;
      if (counts[k] > left / min_line)
        fail(path, reader.number(),
             "the header claims " + std::to_string(counts[k]) + " " + std::to_string(k + 1) +
                 "-grams, more than the rest of the file (" + std::to_string(reader.remaining()) + " bytes) can hold");
      left -= counts[k] * min_line;
    }
  }

  BackoffModel model;
  model.order = static_cast<int>(counts.size());
  model.smoothing = "arpa";
  model.vocab = {"<unk>", "<s>", "</s>"};
  std::unordered_map<std::string_view, WordId> ids;
  std::vector<bool> seen_special(3, false);
  ids.emplace("<unk>", kUnk);
  ids.emplace("<s>", kBos);
  ids.emplace("</s>", kEos);
  model.tables.resize(counts.size());

  std::vector<std::string_view> fields;
  for (int k = 0; k < model.order; ++k) {
    const int n = k + 1;
    const std::string header = "\\" + std::to_string(n) + "-grams:";
    bool found = false;
    while (reader.next(line)) {
      std::string_view t = trim(line);
      if (t.empty()) continue;
      if (t != header) fail(path, reader.number(), "expected " + header);
      found = true;
      break;
    }
    if (!found) fail(path, reader.number(), "truncated: missing " + header);
    NGramTable& table = model.tables[k];
    table.n = n;
    table.words.reserve(counts[k] * n);
    table.log10_prob.reserve(counts[k]);
    table.log10_backoff.reserve(counts[k]);
    for (std::size_t i = 0; i < counts[k]; ++i) {
      if (!reader.next(line))
        fail(path, reader.number(),
             "truncated: expected " + std::to_string(counts[k]) + " " + std::to_string(n) + "-grams, found " +
                 std::to_string(i));
      fields.clear();
      std::size_t p = 0;
      while (p < line.size()) {
        while (p < line.size() && is_space(line[p])) ++p;
        std::size_t q = p;
        while (q < line.size() && !is_space(line[q])) ++q;
        if (q > p) fields.push_back(line.substr(p, q - p));
        p = q;
      }
      if (fields.size() != static_cast<std::size_t>(n + 1) && fields.size() != static_cast<std::size_t>(n + 2))
        fail(path, reader.number(),
             "expected " + std::to_string(n) + " words with a log10 probability" + " (found " +
                 std::to_string(fields.size()) + " fields; file truncated or wrong n-gram count?)");
      float prob = 0, bo = 0;
      if (!parse_float(fields[0], prob)) fail(path, reader.number(), "bad log10 probability (not a finite number)");
      if (fields.size() == static_cast<std::size_t>(n + 2) && !parse_float(fields[n + 1], bo))
        fail(path, reader.number(), "bad log10 backoff (not a finite number)");
      if (prob > 0.0f) fail(path, reader.number(), "log10 probability above 0");
      for (int j = 1; j <= n; ++j) {
        const std::string_view word = fields[j];
        auto it = ids.find(word);
        WordId id;
        if (n == 1) {
          if (it == ids.end()) {
            id = static_cast<WordId>(model.vocab.size());
            model.vocab.emplace_back(word);
            // Key the map with the string owned by the file buffer (stable).
            ids.emplace(word, id);
          } else {
            id = it->second;
            if (id < 3 && !seen_special[id]) {
              seen_special[id] = true;
            } else {
              fail(path, reader.number(), "duplicate unigram '" + std::string(word) + "'");
            }
          }
        } else {
          if (it == ids.end()) fail(path, reader.number(), "word '" + std::string(word) + "' is not a unigram");
          id = it->second;
        }
        table.words.push_back(id);
      }
      table.log10_prob.push_back(prob);
      table.log10_backoff.push_back(bo);
    }
  }
  // \end\ must follow.
  bool ended = false;
  while (reader.next(line)) {
    std::string_view t = trim(line);
    if (t.empty()) continue;
    if (t == "\\end\\") {
      ended = true;
      break;
    }
    fail(path, reader.number(), "unexpected line after the last n-gram section (n-gram count too small?)");
  }
  if (!ended) fail(path, reader.number(), "truncated: missing \\end\\");
  // Specials absent from the file get probability zero; an absent <unk> log10 -100, the
  // value kenlm substitutes, so that out-of-vocabulary words score as in kenlm.
  for (WordId s = 0; s < 3; ++s) {
    if (!seen_special[s]) {
      NGramTable& uni = model.tables[0];
      uni.words.push_back(s);
      uni.log10_prob.push_back(s == kUnk ? -100.0f : kLog10Zero);
      uni.log10_backoff.push_back(0.0f);
    }
  }
  // <s> is never predicted: lmplz writes its unigram probability as 0 (KenLM's "probability
  // 1, ignored" convention), other tools as -99. The backoff form holds -99 (probability 0)
  // so that every conditional distribution sums to one without it.
  {
    NGramTable& uni = model.tables[0];
    for (std::size_t i = 0; i < uni.size(); ++i)
      if (uni.words[i] == kBos) uni.log10_prob[i] = kLog10Zero;
  }
  sort_tables(model);
  // Duplicate higher-order n-grams are malformed too.
  for (const NGramTable& t : model.tables) {
    for (std::size_t i = 1; i < t.size(); ++i) {
      if (std::equal(t.row(i - 1), t.row(i - 1) + t.n, t.row(i)))
        throw std::invalid_argument("malformed ARPA file " + path + ": duplicate " + std::to_string(t.n) + "-gram");
    }
  }
  // Pruned models (SRILM, by hand) may store an n-gram without its prefix or suffix.
  insert_blanks(model);
  validate(model);
  return model;
}

}  // namespace collapse
