// The extension module collapse._core: one register_* function per area.
#include <pybind11/pybind11.h>

#include "collapse/parallel.hpp"

namespace py = pybind11;

namespace collapse::bindings {
void register_random(py::module_& m);
void register_model(py::module_& m);
void register_ngram(py::module_& m);
void register_sampling(py::module_& m);
void register_resample(py::module_& m);
void register_simulation(py::module_& m);
void register_metrics(py::module_& m);
void register_tokenize(py::module_& m);
}  // namespace collapse::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "collapse C++ core: n-gram counting, estimation, ARPA, scoring, sampling, simulation";
  using namespace collapse::bindings;
  register_random(m);
  register_model(m);
  register_ngram(m);
  register_sampling(m);
  register_resample(m);
  register_simulation(m);
  register_metrics(m);
  register_tokenize(m);
  // Thread counts: the limit and the cap live in parallel.hpp; Python's validator reads them.
  m.attr("MAX_THREADS") = collapse::kMaxThreads;
  m.attr("THREADS_PER_CORE") = collapse::kThreadsPerCore;
  m.def("resolve_threads", &collapse::resolve_threads, py::arg("threads"),
        "The thread count the core runs for a request: 0 -> every hardware thread, else at most "
        "4 per hardware thread; ValueError outside [0, MAX_THREADS].");
}
