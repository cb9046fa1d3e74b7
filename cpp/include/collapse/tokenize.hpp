// Whitespace tokenization of UTF-8 text into word ids, exactly as KenLM's lmplz splits
// (tokens separated by any run of NUL, tab, LF, CR or space), with the vocabulary built in
// the same pass: known words keep their ids, new words get the next ids in order of first
// appearance (or map to <unk> = 0 when the vocabulary may not grow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace collapse {

// Byte offset of the first byte of the first ill-formed UTF-8 sequence in `text` (the same
// position Python's bytes.decode("utf-8") reports as `start`), or text.size() when all of
// `text` is well-formed. Overlong forms, surrogates and code points above U+10FFFF are
// ill-formed.
std::size_t first_invalid_utf8(std::string_view text);

struct TokenizedText {
  std::vector<std::uint32_t> tokens;   // word ids, all documents back to back
  std::vector<std::int64_t> offsets;   // document i is tokens[offsets[i], offsets[i+1])
  std::vector<std::string> new_words;  // words that got ids >= known size, in id order
};

// Documents are the byte ranges [doc_bounds[i], doc_bounds[i+1]) of `text`; doc_bounds
// must be non-decreasing, start at 0 and end at text.size().
// `known` holds the vocabulary so far (its index is the id); with `grow`, a word not in it
// gets id known.size() + (number of new words before it) and is appended to new_words;
// without, it maps to 0 (<unk>).
// The text must be valid UTF-8 (check with first_invalid_utf8 first); throws
// std::invalid_argument on bad bounds or more than 2^32 - 1 words.
// Chunks of whole documents are tokenized on up to `threads` threads (0: hardware
// concurrency; at least min_bytes_per_thread bytes each); the result is the same for any
// number of threads.
TokenizedText tokenize_whitespace(std::string_view text, const std::vector<std::int64_t>& doc_bounds,
                                  const std::vector<std::string>& known, bool grow, int threads = 0,
                                  std::size_t min_bytes_per_thread = std::size_t{1} << 20);

// Document bounds of lmplz's line format: every '\n'-terminated line is a document, empty
// lines included; text after the last '\n' is one more document only when non-empty.
std::vector<std::int64_t> line_bounds(std::string_view text);

}  // namespace collapse
