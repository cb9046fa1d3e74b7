// Whitespace tokenization (lmplz's delimiters) with vocabulary building, on a bytes buffer.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "collapse/tokenize.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

namespace {

// A read-only view of a 1-d contiguous byte buffer (bytes, bytearray, memoryview, uint8
// array). The Py_buffer stays held by `info` for as long as the view is used.
std::string_view byte_view(const py::buffer_info& info) {
  if (info.itemsize != 1 || info.ndim > 1 || (info.ndim == 1 && info.strides[0] != 1))
    throw std::invalid_argument("data must be a contiguous buffer of bytes");
  return {static_cast<const char*>(info.ptr), static_cast<std::size_t>(info.size)};
}

}  // namespace

void register_tokenize(py::module_& m) {
  m.def(
      "first_invalid_utf8",
      [](py::buffer data) {
        py::buffer_info info = data.request();
        const std::string_view text = byte_view(info);
        py::gil_scoped_release release;
        return first_invalid_utf8(text);
      },
      py::arg("data"), "Byte offset of the first ill-formed UTF-8 sequence, or len(data) when all is valid.");
  m.def(
      "tokenize_whitespace",
      [](py::buffer data, std::optional<CArray<std::int64_t>> doc_bounds, std::vector<std::string> known,
         bool grow, int threads, std::int64_t min_bytes_per_thread) {
        if (min_bytes_per_thread < 1) throw std::invalid_argument("min_bytes_per_thread must be >= 1");
        py::buffer_info info = data.request();
        const std::string_view text = byte_view(info);
        std::vector<std::int64_t> bounds;
        if (doc_bounds) {
          if (doc_bounds->ndim() != 1) throw std::invalid_argument("doc_bounds must be a 1-d array");
          bounds.assign(doc_bounds->data(), doc_bounds->data() + doc_bounds->size());
        }
        TokenizedText out;
        std::size_t bad = 0;
        {
          py::gil_scoped_release release;
          bad = first_invalid_utf8(text);
          if (bad == text.size()) {
            if (!doc_bounds) bounds = line_bounds(text);
            // A bound inside a character would cut a word into invalid UTF-8.
            for (std::int64_t b : bounds)
              if (b > 0 && b < static_cast<std::int64_t>(text.size()) &&
                  (static_cast<unsigned char>(text[static_cast<std::size_t>(b)]) & 0xC0) == 0x80)
                throw std::invalid_argument("document bound " + std::to_string(b) + " is inside a UTF-8 character");
            out = tokenize_whitespace(text, bounds, known, grow, threads,
                                      static_cast<std::size_t>(min_bytes_per_thread));
          }
        }
        if (bad != text.size()) {
          const auto line = 1 + std::count(text.data(), text.data() + bad, '\n');
          throw std::invalid_argument("invalid UTF-8 at byte " + std::to_string(bad) + " (line " +
                                      std::to_string(line) + ")");
        }
        py::list new_words(out.new_words.size());
        for (std::size_t i = 0; i < out.new_words.size(); ++i) {
          const std::string& w = out.new_words[i];
          PyObject* s = PyUnicode_DecodeUTF8(w.data(), static_cast<Py_ssize_t>(w.size()), "strict");
          if (s == nullptr) throw py::error_already_set();
          PyList_SET_ITEM(new_words.ptr(), static_cast<Py_ssize_t>(i), s);
        }
        return py::make_tuple(to_numpy(std::move(out.tokens)), to_numpy(std::move(out.offsets)), new_words);
      },
      py::arg("data"), py::arg("doc_bounds") = py::none(), py::arg("known") = std::vector<std::string>{},
      py::arg("grow") = true, py::arg("threads") = 0, py::arg("min_bytes_per_thread") = 1 << 20,
      "Split UTF-8 bytes on NUL, tab, LF, CR and space (as lmplz) and map words to ids.\n\n"
      "Documents are data[doc_bounds[i]:doc_bounds[i+1]]; without doc_bounds, every line\n"
      "(split on '\\n' only) is a document, empty ones included, none after a final newline.\n"
      "known[i] is the word of id i; with grow, new words get the next ids in order of first\n"
      "appearance and are returned; without, they map to 0 (<unk>). Returns (tokens uint32,\n"
      "offsets int64, new_words). Raises ValueError naming the byte and line of bad UTF-8.\n"
      "Chunks of whole documents (>= min_bytes_per_thread bytes each) run on up to `threads`\n"
      "threads (0: all cores); the result does not depend on the number of threads.");
}

}  // namespace collapse::bindings
