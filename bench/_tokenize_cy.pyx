# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Cython implementations of the whitespace tokenizer, measured by bench_tokenize.py only
(not part of the package: the C++ core is faster, see DESIGN.md "Cython").

Two variants with the interface of collapse._core.tokenize_whitespace in lines mode:
  tokenize_dict: C loop over the bytes, Python dict keyed by bytes slices (idiomatic Cython);
  tokenize_umap: C loop, libcpp unordered_map[string, uint32] (no Python object per token).
"""
import numpy as np
from libc.stdint cimport uint32_t, int64_t
from libcpp.string cimport string
from libcpp.unordered_map cimport unordered_map
from cpython.bytes cimport PyBytes_FromStringAndSize
from cython.operator cimport dereference as deref


cdef inline bint is_delim(unsigned char c) nogil:
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 0


def tokenize_dict(bytes data, list known, bint grow=True):
    cdef const unsigned char* s = data
    cdef Py_ssize_t n = len(data), i = 0, start, line_start
    cdef dict ids = {w.encode("utf-8"): k for k, w in enumerate(known)}
    cdef list new_words = []
    tokens_arr = np.empty(n // 2 + 1, dtype=np.uint32)
    cdef uint32_t[::1] tokens = tokens_arr
    cdef list offsets = [0]
    cdef Py_ssize_t t = 0
    cdef uint32_t next_id = len(known)
    cdef object key, got
    while i < n:
        # one line: tokens up to the next '\n'
        while i < n and s[i] != 10:
            if is_delim(s[i]):
                i += 1
                continue
            start = i
            while i < n and not is_delim(s[i]):
                i += 1
            key = PyBytes_FromStringAndSize(<const char*>s + start, i - start)
            got = ids.get(key)
            if got is None:
                if grow:
                    ids[key] = next_id
                    new_words.append(key.decode("utf-8"))
                    tokens[t] = next_id
                    next_id += 1
                else:
                    tokens[t] = 0
            else:
                tokens[t] = got
            t += 1
        offsets.append(t)
        i += 1  # past '\n' (or the end)
    return tokens_arr[:t].copy(), np.asarray(offsets, dtype=np.int64), new_words


def tokenize_umap(bytes data, list known, bint grow=True):
    cdef const unsigned char* s = data
    cdef Py_ssize_t n = len(data), i = 0, start
    cdef unordered_map[string, uint32_t] ids
    cdef unordered_map[string, uint32_t].iterator it
    cdef string key
    cdef Py_ssize_t k
    for k in range(len(known)):
        ids[known[k].encode("utf-8")] = k
    cdef list new_words = []
    tokens_arr = np.empty(n // 2 + 1, dtype=np.uint32)
    cdef uint32_t[::1] tokens = tokens_arr
    offsets_arr = np.empty(n + 2, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    cdef uint32_t* tok = &tokens[0]
    cdef int64_t* off = &offsets[0]
    cdef Py_ssize_t t = 0, d = 0
    cdef uint32_t next_id = len(known)
    off[0] = 0
    while i < n:
        while i < n and s[i] != 10:
            if is_delim(s[i]):
                i += 1
                continue
            start = i
            while i < n and not is_delim(s[i]):
                i += 1
            key.assign(<const char*>s + start, i - start)
            it = ids.find(key)
            if it == ids.end():
                if grow:
                    ids[key] = next_id
                    new_words.append((<const char*>s + start)[:i - start].decode("utf-8"))
                    tok[t] = next_id
                    next_id += 1
                else:
                    tok[t] = 0
            else:
                tok[t] = deref(it).second
            t += 1
        d += 1
        off[d] = t
        i += 1
    return tokens_arr[:t].copy(), offsets_arr[:d + 1].copy(), new_words
