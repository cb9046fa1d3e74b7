// Finite-corpus resampling: index draws and document gathering on Corpus arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "collapse/resample.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

namespace {
std::uint64_t count_arg(std::int64_t v, const char* name) {
  if (v < 0) throw std::invalid_argument(std::string(name) + " must be >= 0");
  return static_cast<std::uint64_t>(v);
}
}  // namespace

void register_resample(py::module_& m) {
  m.def(
      "draw_with_replacement",
      [](std::int64_t num_docs, std::int64_t n, std::uint64_t seed, int threads) {
        const auto d = count_arg(num_docs, "num_docs"), k = count_arg(n, "n");
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release release;
          out = draw_with_replacement(d, k, seed, threads);
        }
        return to_numpy(std::move(out));
      },
      py::arg("num_docs"), py::arg("n"), py::arg("seed"), py::arg("threads") = 0,
      "n document indices drawn uniformly with replacement; draw i uses Philox stream (seed, i).");
  m.def(
      "draw_without_replacement",
      [](std::int64_t num_docs, std::int64_t n, std::uint64_t seed, int threads) {
        const auto d = count_arg(num_docs, "num_docs"), k = count_arg(n, "n");
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release release;
          out = draw_without_replacement(d, k, seed, threads);
        }
        return to_numpy(std::move(out));
      },
      py::arg("num_docs"), py::arg("n"), py::arg("seed"), py::arg("threads") = 0,
      "The first n indices of the random permutation keyed by seed.");
  m.def(
      "random_permutation",
      [](std::int64_t num_docs, std::uint64_t seed, int threads) {
        const auto d = count_arg(num_docs, "num_docs");
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release release;
          out = random_permutation(d, seed, threads);
        }
        return to_numpy(std::move(out));
      },
      py::arg("num_docs"), py::arg("seed"), py::arg("threads") = 0);
  m.def(
      "gather_documents",
      [](CArray<std::uint32_t> tokens, CArray<std::int64_t> offsets, CArray<std::int64_t> indices, int threads) {
        if (tokens.ndim() != 1 || offsets.ndim() != 1 || indices.ndim() != 1)
          throw std::invalid_argument("tokens, offsets and indices must be 1-d arrays");
        check_offsets(offsets.data(), offsets.size(), tokens.size());
        std::vector<std::uint32_t> out_tokens;
        std::vector<std::int64_t> out_offsets;
        {
          py::gil_scoped_release release;
          gather_documents(tokens.data(), offsets.data(), static_cast<std::uint64_t>(offsets.size() - 1),
                           indices.data(), static_cast<std::uint64_t>(indices.size()), out_tokens, out_offsets,
                           threads);
        }
        return py::make_tuple(to_numpy(std::move(out_tokens)), to_numpy(std::move(out_offsets)));
      },
      py::arg("tokens"), py::arg("offsets"), py::arg("indices"), py::arg("threads") = 0,
      "(tokens, offsets) of the documents at indices, in that order (repeats allowed).");
}

}  // namespace collapse::bindings
