// n-gram counting, estimation and scoring: numpy in (zero-copy), GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "collapse/estimate.hpp"
#include "collapse/ngram_count.hpp"
#include "collapse/ngram_pool.hpp"
#include "collapse/score.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

namespace {

CorpusView corpus_view(const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets) {
  if (tokens.ndim() != 1 || offsets.ndim() != 1) throw std::invalid_argument("tokens and offsets must be 1-d");
  check_offsets(offsets.data(), offsets.size(), tokens.size());
  CorpusView v;
  v.tokens = tokens.data();
  v.n_tokens = static_cast<std::size_t>(tokens.size());
  v.offsets = offsets.data();
  v.n_docs = static_cast<std::size_t>(offsets.size() - 1);
  return v;
}

}  // namespace

void register_ngram(py::module_& m) {
  m.attr("MAX_NGRAM_ORDER") = kMaxNGramOrder;

  m.def(
      "fit_ngram",
      [](const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets,
         const std::vector<std::string>& vocab, int order, const std::string& smoothing, double add_k,
         int threads, std::uint64_t memory, const std::string& temp_dir, const std::vector<std::uint64_t>& prune) {
        const CorpusView corpus = corpus_view(tokens, offsets);
        FitOptions options;
        options.prune = prune;
        options.order = order;
        options.smoothing = smoothing;
        options.add_k = add_k;
        options.threads = threads;
        options.memory = memory;
        options.temp_dir = temp_dir;
        std::shared_ptr<BackoffModel> model;
        {
          py::gil_scoped_release release;
          model = std::make_shared<BackoffModel>(fit_ngram_model(corpus, vocab, options));
        }
        return model;
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("vocab"), py::arg("order"), py::arg("smoothing") = "mkn",
      py::arg("add_k") = 1.0, py::arg("threads") = 0, py::arg("memory") = 0, py::arg("temp_dir") = "",
      py::arg("prune") = std::vector<std::uint64_t>{},
      "Estimate a BackoffModel from a corpus (ids of vocab). The model's vocabulary holds "
      "only the words that occur, in order of first appearance after <unk>, <s>, </s>. "
      "memory: counting's budget in bytes (0: a quarter of RAM); temp_dir: where runs spill. "
      "prune: lmplz's --prune thresholds, one per order (empty: none).");

  m.def(
      "count_ngrams",
      [](const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets, std::size_t vocab_size,
         int order, int threads, std::uint64_t memory, const std::string& temp_dir) {
        const CorpusView corpus = corpus_view(tokens, offsets);
        CountOptions options;
        options.threads = threads;
        options.memory = memory;
        options.temp_dir = temp_dir;
        NGramCounts counts;
        {
          py::gil_scoped_release release;
          counts = count_ngrams(corpus, vocab_size, order, options);
        }
        py::list out;
        for (CountedOrder& o : counts.orders) {
          const auto rows = static_cast<py::ssize_t>(o.size());
          out.append(py::make_tuple(to_numpy_2d(std::move(o.words), rows, o.n), to_numpy(o.raw.to_vector()),
                                    to_numpy(o.adjusted.to_vector())));
        }
        return out;
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("vocab_size"), py::arg("order"), py::arg("threads") = 0,
      py::arg("memory") = 0, py::arg("temp_dir") = "",
      "Per order n: (ids[rows, n] sorted, raw counts uint64, Kneser-Ney adjusted counts uint64). "
      "Documents are <s> w1 .. wk </s>.");

  m.def("default_count_memory", &default_count_memory, "Counting's default memory budget in bytes (RAM / 4).");
  m.def("_set_narrow_count_limit", &set_narrow_count_limit, py::arg("limit"),
        "Test hook: counts at or above limit take the 64-bit path; returns the previous limit.");
  m.def("_escaped_count_total", &escaped_count_total, "Test hook: counts that took the 64-bit path so far.");

  py::class_<NGramPool, std::shared_ptr<NGramPool>>(
      m, "NGramPool", "Accumulated n-gram counts of several corpora, merged without recounting.")
      .def(py::init([](int order, int threads, std::uint64_t memory, const std::string& temp_dir) {
             CountOptions options;
             options.threads = threads;
             options.memory = memory;
             options.temp_dir = temp_dir;
             return std::make_shared<NGramPool>(order, options);
           }),
           py::arg("order"), py::arg("threads") = 0, py::arg("memory") = 0, py::arg("temp_dir") = "")
      .def(
          "add",
          [](NGramPool& pool, const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets,
             std::size_t vocab_size) {
            const CorpusView corpus = corpus_view(tokens, offsets);
            py::gil_scoped_release release;
            pool.add(corpus, vocab_size);
          },
          py::arg("tokens"), py::arg("offsets"), py::arg("vocab_size"))
      .def(
          "estimate",
          [](const NGramPool& pool, const std::vector<std::string>& vocab, const std::string& smoothing,
             double add_k, int threads, const std::vector<std::uint64_t>& prune) {
            FitOptions options;
            options.prune = prune;
            options.order = pool.order();
            options.smoothing = smoothing;
            options.add_k = add_k;
            options.threads = threads;
            std::shared_ptr<BackoffModel> model;
            {
              py::gil_scoped_release release;
              model = std::make_shared<BackoffModel>(pool.estimate(vocab, options));
            }
            return model;
          },
          py::arg("vocab"), py::arg("smoothing") = "mkn", py::arg("add_k") = 1.0, py::arg("threads") = 0,
          py::arg("prune") = std::vector<std::uint64_t>{})
      .def_property_readonly("order", &NGramPool::order)
      .def_property_readonly("documents", &NGramPool::documents)
      .def_property_readonly("tokens", &NGramPool::tokens)
      .def_property_readonly("top_rows", &NGramPool::top_rows)
      .def_property_readonly("num_words", &NGramPool::num_words)
      .def_property_readonly("nbytes", &NGramPool::bytes);

  py::class_<NGramIndex, std::shared_ptr<NGramIndex>>(m, "NGramIndex", "Hash index of a model's n-grams, for scoring.")
      .def(py::init([](std::shared_ptr<BackoffModel> model, int threads) {
             py::gil_scoped_release release;
             return std::make_shared<NGramIndex>(std::shared_ptr<const BackoffModel>(model), threads);
           }),
           py::arg("model"), py::arg("threads") = 1)
      .def_property_readonly("nbytes", &NGramIndex::bytes, "Bytes the index holds (the model's tables not counted).")
      .def(
          "score",
          [](const NGramIndex& index, const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets,
             int threads) {
            const CorpusView corpus = corpus_view(tokens, offsets);
            ScoreResult r;
            {
              py::gil_scoped_release release;
              r = score_corpus(index, corpus, threads);
            }
            return py::make_tuple(to_numpy(std::move(r.log10_prob)), r.tokens, r.oov);
          },
          py::arg("tokens"), py::arg("offsets"), py::arg("threads") = 0,
          "(log10 prob per document with </s>, tokens, oov); tokens are model ids.");
}

}  // namespace collapse::bindings
