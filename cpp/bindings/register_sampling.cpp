// Sampling from n-gram models: collapse._core.Sampler.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>

#include "collapse/sample.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

void register_sampling(py::module_& m) {
  py::class_<Sampler, std::shared_ptr<Sampler>>(
      m, "Sampler",
      "Exact ancestral sampler over an n-gram model in backoff form (forward structure built once).")
      .def(py::init([](std::shared_ptr<BackoffModel> model, double temperature) {
             py::gil_scoped_release release;
             return std::make_shared<Sampler>(std::shared_ptr<const BackoffModel>(std::move(model)), temperature);
           }),
           py::arg("model"), py::arg("temperature") = 1.0)
      .def_property_readonly("order", &Sampler::order)
      .def_property_readonly("temperature", &Sampler::temperature)
      .def_property_readonly("num_states", &Sampler::num_states)
      .def_property_readonly("nbytes", &Sampler::bytes,
                             "Bytes of the sampler's own arrays (the model's tables, which it reads, excluded).")
      .def(
          "sample",
          [](const Sampler& s, std::int64_t num_sequences, std::uint64_t seed, std::int64_t max_length,
             std::int64_t top_k, double top_p, int threads, std::uint64_t first_sequence) {
            if (num_sequences <= 0) throw std::invalid_argument("num_sequences must be positive");
            if (max_length <= 0 || max_length > 0xFFFFFFFFLL)
              throw std::invalid_argument("max_length must be a positive 32-bit count");
            if (top_k < 0 || top_k > 0xFFFFFFFFLL) throw std::invalid_argument("top_k must be >= 0");
            if (!(top_p > 0.0 && top_p <= 1.0)) throw std::invalid_argument("top_p must be in (0, 1]");
            if (threads < 0) throw std::invalid_argument("threads must be >= 0");
            SampleOptions opt;
            opt.num_sequences = static_cast<std::uint64_t>(num_sequences);
            opt.seed = seed;
            opt.first_sequence = first_sequence;
            opt.max_length = static_cast<std::uint32_t>(max_length);
            opt.top_k = static_cast<std::uint32_t>(top_k);
            opt.top_p = top_p;
            opt.threads = threads;
            SampledCorpus out;
            {
              py::gil_scoped_release release;
              out = s.sample(opt);
            }
            return py::make_tuple(to_numpy(std::move(out.tokens)), to_numpy(std::move(out.offsets)));
          },
          py::arg("num_sequences"), py::arg("seed") = 0, py::arg("max_length") = 4096, py::arg("top_k") = 0,
          py::arg("top_p") = 1.0, py::arg("threads") = 0, py::arg("first_sequence") = 0,
          "(tokens uint32, offsets int64): num_sequences sequences; sequence i uses Philox stream "
          "(seed, first_sequence + i).")
      .def(
          "distribution",
          [](const Sampler& s, CArray<std::uint32_t> history) {
            std::vector<WordId> h(history.data(), history.data() + history.size());
            std::vector<double> d;
            {
              py::gil_scoped_release release;
              d = s.distribution(h);
            }
            return to_numpy(std::move(d));
          },
          py::arg("history"),
          "Tempered, normalised p(. | history) over the vocabulary by the backoff formula (history: ids, "
          "oldest first, starting with <s> (id 1) for a sentence start).");
}

}  // namespace collapse::bindings
