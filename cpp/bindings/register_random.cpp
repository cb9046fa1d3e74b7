// Counter-based random streams, exposed so tests can check them and Python code can
// derive seeds the same way the core does.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "collapse/rng.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

void register_random(py::module_& m) {
  m.def(
      "philox_u32",
      [](std::uint64_t seed, std::uint64_t stream, std::size_t n) {
        std::vector<std::uint32_t> out(n);
        Philox rng(seed, stream);
        for (auto& x : out) x = rng.next_u32();
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("stream"), py::arg("n"),
      "First n 32-bit outputs of the Philox4x32-10 stream keyed by (seed, stream).");
  m.def(
      "philox_uniform",
      [](std::uint64_t seed, std::uint64_t stream, std::size_t n) {
        std::vector<double> out(n);
        Philox rng(seed, stream);
        for (auto& x : out) x = rng.uniform();
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("stream"), py::arg("n"), "n uniform doubles in [0, 1) from stream (seed, stream).");
  m.def("derive_seed", &derive_seed, py::arg("seed"), py::arg("tag"),
        "Child seed of (seed, tag), as the core derives per-generation and per-purpose seeds.");
}

}  // namespace collapse::bindings
