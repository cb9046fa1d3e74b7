// Corpus metrics of the experiment loop (collapse.metrics calls these).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "collapse/metrics.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

void register_metrics(py::module_& m) {
  m.def(
      "ngram_diversity",
      [](CArray<std::uint32_t> tokens, CArray<std::int64_t> offsets, int max_n, int repeat_n, int threads) {
        check_offsets(offsets.data(), offsets.size(), tokens.size());
        NGramDiversity r;
        {
          py::gil_scoped_release release;
          r = ngram_diversity(tokens.data(), static_cast<std::size_t>(tokens.size()), offsets.data(),
                              static_cast<std::size_t>(offsets.size()), max_n, repeat_n, threads);
        }
        std::vector<std::uint64_t> distinct(r.distinct), total(r.total);
        py::dict out;
        out["distinct"] = to_numpy(std::move(distinct));
        out["total"] = to_numpy(std::move(total));
        out["repeated"] = r.repeated;
        out["repeat_total"] = r.repeat_total;
        return out;
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("max_n") = 4, py::arg("repeat_n") = 4, py::arg("threads") = 1,
      "Distinct n-gram counts (n = 1..max_n, within documents) and within-document repeats of "
      "repeat_n-grams: {distinct, total, repeated, repeat_total}; the same for any thread count.");
}

}  // namespace collapse::bindings
