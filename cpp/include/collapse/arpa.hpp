// ARPA text format: read and write the backoff form.
#pragma once

#include <string>

#include "collapse/backoff_model.hpp"

namespace collapse {

// Writes atomically (to PATH.tmp, then renames). Throws std::runtime_error on I/O errors.
// Lines are formatted on `threads` threads (0: all); the file is the same for any count.
void write_arpa(const BackoffModel& model, const std::string& path, int threads = 1);

// Throws std::invalid_argument with a message naming the line for a malformed or
// truncated file, std::runtime_error if the file cannot be opened.
// Word ids follow the file's unigram order, except that <unk>, <s>, </s> take ids 0, 1, 2
// (an absent <unk> is added with probability 0, as KenLM does). The header's counts are
// checked against the file's size before anything is reserved from them. n-grams stored
// without their prefix or suffix (pruned models) get blanks (insert_blanks).
BackoffModel read_arpa(const std::string& path);

}  // namespace collapse
