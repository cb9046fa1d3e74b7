// Shared helpers of the binding layer: numpy arrays in (zero-copy) and out (moved, not
// copied, from std::vector).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace collapse::bindings {

namespace py = pybind11;

// A C-contiguous array of exactly type T; converting only when the caller passed another
// dtype (pybind11's forcecast). No copy for the common case of the right dtype.
template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), owner);
}

template <class T>
py::array_t<T> to_numpy_2d(std::vector<T>&& v, py::ssize_t rows, py::ssize_t cols) {
  if (static_cast<py::ssize_t>(v.size()) != rows * cols) throw std::logic_error("to_numpy_2d: size mismatch");
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({rows, cols}, {static_cast<py::ssize_t>(cols * sizeof(T)), static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), owner);
}

// Checks that offsets describe documents over a token array: starts at 0, ends at
// n_tokens, non-decreasing. Throws std::invalid_argument (ValueError in Python).
inline void check_offsets(const std::int64_t* offsets, py::ssize_t n_offsets, py::ssize_t n_tokens) {
  if (n_offsets < 1) throw std::invalid_argument("offsets must hold at least one entry (0)");
  if (offsets[0] != 0) throw std::invalid_argument("offsets must start at 0");
  if (offsets[n_offsets - 1] != n_tokens)
    throw std::invalid_argument("offsets must end at the number of tokens");
  for (py::ssize_t i = 1; i < n_offsets; ++i)
    if (offsets[i] < offsets[i - 1]) throw std::invalid_argument("offsets must be non-decreasing");
}

}  // namespace collapse::bindings
