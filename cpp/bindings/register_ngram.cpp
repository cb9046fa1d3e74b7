// n-gram counting, estimation and scoring: numpy in (zero-copy), GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "collapse/estimate.hpp"
#include "collapse/ngram_count.hpp"
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
         int threads) {
        const CorpusView corpus = corpus_view(tokens, offsets);
        FitOptions options;
        options.order = order;
        options.smoothing = smoothing;
        options.add_k = add_k;
        options.threads = threads;
        std::shared_ptr<BackoffModel> model;
        {
          py::gil_scoped_release release;
          model = std::make_shared<BackoffModel>(fit_ngram_model(corpus, vocab, options));
        }
        return model;
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("vocab"), py::arg("order"), py::arg("smoothing") = "mkn",
      py::arg("add_k") = 1.0, py::arg("threads") = 0,
      "Estimate a BackoffModel from a corpus (ids of vocab). The model's vocabulary holds "
      "only the words that occur, in order of first appearance after <unk>, <s>, </s>.");

  m.def(
      "count_ngrams",
      [](const CArray<std::uint32_t>& tokens, const CArray<std::int64_t>& offsets, std::size_t vocab_size,
         int order, int threads) {
        const CorpusView corpus = corpus_view(tokens, offsets);
        NGramCounts counts;
        {
          py::gil_scoped_release release;
          counts = count_ngrams(corpus, vocab_size, order, threads);
        }
        py::list out;
        for (CountedOrder& o : counts.orders) {
          const auto rows = static_cast<py::ssize_t>(o.size());
          out.append(py::make_tuple(to_numpy_2d(std::move(o.words), rows, o.n), to_numpy(std::move(o.raw)),
                                    to_numpy(std::move(o.adjusted))));
        }
        return out;
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("vocab_size"), py::arg("order"), py::arg("threads") = 0,
      "Per order n: (ids[rows, n] sorted, raw counts, Kneser-Ney adjusted counts). Documents are "
      "<s> w1 .. wk </s>.");

  py::class_<NGramIndex, std::shared_ptr<NGramIndex>>(m, "NGramIndex", "Hash index of a model's n-grams, for scoring.")
      .def(py::init([](std::shared_ptr<BackoffModel> model) {
             py::gil_scoped_release release;
             return std::make_shared<NGramIndex>(std::shared_ptr<const BackoffModel>(model));
           }),
           py::arg("model"))
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
