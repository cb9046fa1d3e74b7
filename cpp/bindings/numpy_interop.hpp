// Shared helpers of the binding layer: numpy arrays in (zero-copy) and out (moved, not
// copied, from std::vector).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>
#include <memory>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <vector>

namespace collapse::bindings {

namespace py = pybind11;

// A C-contiguous integer array of exactly type T (token ids, offsets, indices), from a
// numpy array or anything numpy turns into one. Integers of another width or signedness
// are converted when every value fits in T; floats, bools and other kinds are refused
// with a ValueError naming the dtype (pybind11's forcecast used to truncate 1.7 to 1).
// No copy for the common case of the right dtype.
template <class T>
class __attribute__((visibility("hidden"))) IntArray {  // hidden, as pybind11's own types
 public:
  IntArray() = default;
  explicit IntArray(py::array_t<T, py::array::c_style> a) : array_(std::move(a)) {}
  const T* data() const { return array_.data(); }
  py::ssize_t size() const { return array_.size(); }
  py::ssize_t ndim() const { return array_.ndim(); }
  const py::array_t<T, py::array::c_style>& array() const { return array_; }

 private:
  // Not a py::object subclass: pybind11's caster for those would compete with ours.
  py::array_t<T, py::array::c_style> array_;
};

namespace detail {

inline bool python_less(py::handle a, py::handle b) {
  const int r = PyObject_RichCompareBool(a.ptr(), b.ptr(), Py_LT);
  if (r < 0) throw py::error_already_set();
  return r != 0;
}

// The integer array `src` as IntArray<T>; exact = false allows conversions (see IntArray).
// Returns false (no conversion tried) only when !convert and src is not already exact.
template <class T>
bool load_int_array(py::handle src, bool convert, IntArray<T>& out) {
  using Exact = py::array_t<T, py::array::c_style>;
  if (Exact::check_(src) && py::reinterpret_borrow<py::array>(src).flags() & py::array::c_style) {
    out = IntArray<T>(py::reinterpret_borrow<Exact>(src));
    return true;
  }
  if (!convert) return false;
  py::array arr = py::array::ensure(src);
  if (!arr) throw std::invalid_argument("expected an integer array, got " + std::string(py::str(py::type::handle_of(src).attr("__name__"))));
  const char kind = arr.dtype().kind();
  const bool empty_float = kind == 'f' && arr.size() == 0;  // np.asarray([]) holds no id to truncate
  if (kind != 'i' && kind != 'u' && !empty_float)
    throw std::invalid_argument("expected an integer array (ids, offsets or indices), got dtype " +
                                std::string(py::str(arr.dtype())));
  if (arr.size() > 0 && kind != 'f') {
    const py::object lo = arr.attr("min")(), hi = arr.attr("max")();
    if (python_less(lo, py::int_(std::numeric_limits<T>::min())) || python_less(py::int_(std::numeric_limits<T>::max()), hi))
      throw std::invalid_argument("integer array values out of range for " + std::string(py::str(py::dtype::of<T>())) +
                                  " (min " + std::string(py::str(lo)) + ", max " + std::string(py::str(hi)) + ")");
  }
  auto converted = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (!converted) throw py::error_already_set();
  out = IntArray<T>(std::move(converted));
  return true;
}

template <class T, bool = std::is_integral_v<T>>
struct CArraySelect {
  using type = py::array_t<T, py::array::c_style | py::array::forcecast>;
};
template <class T>
struct CArraySelect<T, true> {
  using type = IntArray<T>;
};

}  // namespace detail

// Array arguments of the bindings: integer T -> IntArray<T> (checked, never truncated);
// floating T -> converted from any numeric array (ints to doubles lose nothing we use).
template <class T>
using CArray = typename detail::CArraySelect<T>::type;

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

namespace pybind11::detail {
template <class T>
struct type_caster<collapse::bindings::IntArray<T>> {
  PYBIND11_TYPE_CASTER(collapse::bindings::IntArray<T>, const_name("numpy.ndarray[") + npy_format_descriptor<T>::name + const_name("]"));
  bool load(handle src, bool convert) { return collapse::bindings::detail::load_int_array<T>(src, convert, value); }
  static handle cast(const collapse::bindings::IntArray<T>& src, return_value_policy, handle) {
    return src.array().inc_ref();
  }
};
}  // namespace pybind11::detail
