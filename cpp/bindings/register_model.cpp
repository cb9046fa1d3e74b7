// BackoffModel and ARPA I/O.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "collapse/arpa.hpp"
#include "collapse/backoff_model.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

void register_model(py::module_& m) {
  py::class_<BackoffModel, std::shared_ptr<BackoffModel>>(m, "BackoffModel",
                                                          "An n-gram model in backoff (ARPA) form.")
      .def_readonly("order", &BackoffModel::order)
      .def_readonly("vocab", &BackoffModel::vocab)
      .def_readonly("smoothing", &BackoffModel::smoothing)
      .def_readonly("discount_policy", &BackoffModel::discount_policy)
      .def_readonly("discounts", &BackoffModel::discounts)
      .def(
          "table",
          [](const BackoffModel& model, int n) {
            if (n < 1 || n > model.order)
              throw std::invalid_argument("n must be in [1, " + std::to_string(model.order) + "]");
            const NGramTable& t = model.tables[n - 1];
            std::vector<WordId> words(t.words);
            std::vector<float> p(t.log10_prob), b(t.log10_backoff);
            const auto rows = static_cast<py::ssize_t>(t.size());
            return py::make_tuple(to_numpy_2d(std::move(words), rows, n), to_numpy(std::move(p)),
                                  to_numpy(std::move(b)));
          },
          py::arg("n"),
          "(ids[rows, n] uint32, log10_prob[rows] float32, log10_backoff[rows] float32), rows sorted "
          "lexicographically.")
      .def("num_ngrams",
           [](const BackoffModel& model) {
             std::vector<std::size_t> c;
             for (const auto& t : model.tables) c.push_back(t.size());
             return c;
           })
      .def(
          "write_arpa",
          [](const BackoffModel& model, const std::string& path, int threads) {
            py::gil_scoped_release release;
            write_arpa(model, path, threads);
          },
          py::arg("path"), py::arg("threads") = 1);
  m.def(
      "read_arpa",
      [](const std::string& path) {
        std::shared_ptr<BackoffModel> model;
        {
          py::gil_scoped_release release;
          model = std::make_shared<BackoffModel>(read_arpa(path));
        }
        return model;
      },
      py::arg("path"));
}

}  // namespace collapse::bindings
