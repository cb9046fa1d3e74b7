#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace collapse::bindings {

// Filled in by the ngram work.
void register_ngram(py::module_& m) { (void)m; }

}  // namespace collapse::bindings
