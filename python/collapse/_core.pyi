"""Type stubs of the C++ extension collapse._core. Each area keeps its own block."""

from typing import Any, Dict, List, Tuple

import numpy as np
import numpy.typing as npt

# ---- model (skeleton): BackoffModel and ARPA I/O ------------------------------------------
class BackoffModel:
    order: int
    vocab: List[str]
    smoothing: str
    discount_policy: List[str]
    discounts: List[List[float]]
    def table(self, n: int) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
    def num_ngrams(self) -> List[int]: ...
    def write_arpa(self, path: str, threads: int = 1) -> None: ...

def read_arpa(path: str) -> BackoffModel: ...

# ---- threads (module.cpp, parallel.hpp) ------------------------------------------------------
MAX_THREADS: int
THREADS_PER_CORE: int

def resolve_threads(threads: int) -> int: ...

# ---- random (skeleton) --------------------------------------------------------------------
def philox_u32(seed: int, stream: int, n: int) -> npt.NDArray[np.uint32]: ...
def philox_uniform(seed: int, stream: int, n: int) -> npt.NDArray[np.float64]: ...
def derive_seed(seed: int, tag: int) -> int: ...

# ---- ngram: counting, estimation, scoring (register_ngram.cpp) ------------------------------
MAX_NGRAM_ORDER: int

def fit_ngram(tokens: npt.ArrayLike, offsets: npt.ArrayLike, vocab: List[str], order: int,
              smoothing: str = "mkn", add_k: float = 1.0, threads: int = 0) -> BackoffModel: ...
def count_ngrams(tokens: npt.ArrayLike, offsets: npt.ArrayLike, vocab_size: int, order: int,
                 threads: int = 0) -> List[Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32],
                                                 npt.NDArray[np.uint32]]]: ...

class NGramIndex:
    def __init__(self, model: BackoffModel, threads: int = 1) -> None: ...
    @property
    def nbytes(self) -> int: ...
    def score(self, tokens: npt.ArrayLike, offsets: npt.ArrayLike,
              threads: int = 0) -> Tuple[npt.NDArray[np.float64], int, int]: ...
# ---- end ngram -----------------------------------------------------------------------------

# ---- simulation (register_simulation.cpp) ------------------------------------------------
def simulate_categorical(p0: npt.ArrayLike, N: int, generations: int, paradigm: str, alpha: float, seed: int,
                         first_trial: int, trials: int, threads: int = 0, tail_fraction: float = 0.1,
                         keep_final_p: bool = True, record_every: int = 1,
                         without_replacement: str = "auto", weight: float = 0.5,
                         synthetic_per_generation: int = -1) -> Dict[str, Any]:
    """Trials [first_trial, first_trial + trials) of the categorical collapse process: dict with
    first_trial, generation (recorded generations), entropy/support/sum_p2/kl_to_truth/
    tv_to_truth/tail_mass (trials x recorded), first_extinction/collapse/collapsed_to (trials),
    final_p (trials x K or None)."""
    ...
def simulate_gaussian(mean: npt.ArrayLike, cov: npt.ArrayLike, N: int, generations: int, paradigm: str,
                      alpha: float, weight: float, seed: int, first_trial: int, trials: int, threads: int = 0,
                      record_every: int = 1, draws: str = "statistics") -> Dict[str, Any]:
    """Trials [first_trial, first_trial + trials) of the Gaussian collapse process: dict with
    first_trial, generation, mean_sq_error/variance_ratio/log_det_ratio (trials x recorded),
    final_mean (trials x dim), final_cov (trials x dim x dim)."""
def simulation_normal(seed: int, count: int) -> npt.NDArray[np.float64]: ...
def simulation_gamma(seed: int, shape: float, count: int) -> npt.NDArray[np.float64]: ...
def simulation_tail_set(p0: npt.ArrayLike, tail_fraction: float) -> npt.NDArray[np.uint32]: ...
def simulation_binomial(seed: int, n: int, p: float, count: int) -> npt.NDArray[np.int64]: ...
def simulation_hypergeometric(seed: int, draws: int, successes: int, population: int,
                              count: int) -> npt.NDArray[np.int64]: ...
def simulation_alias(seed: int, weights: npt.ArrayLike, count: int) -> npt.NDArray[np.int64]: ...
# ---- end simulation ----------------------------------------------------------------------
# ---- sampling and resampling (register_sampling.cpp, register_resample.cpp) ----------------
class Sampler:
    order: int
    temperature: float
    num_states: int
    nbytes: int
    def __init__(self, model: BackoffModel, temperature: float = 1.0) -> None: ...
    def sample(self, num_sequences: int, seed: int = 0, max_length: int = 4096, top_k: int = 0,
               top_p: float = 1.0, threads: int = 0,
               first_sequence: int = 0) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...
    def distribution(self, history: npt.ArrayLike) -> npt.NDArray[np.float64]: ...

def draw_with_replacement(num_docs: int, n: int, seed: int, threads: int = 0) -> npt.NDArray[np.int64]: ...
def draw_without_replacement(num_docs: int, n: int, seed: int, threads: int = 0) -> npt.NDArray[np.int64]: ...
def random_permutation(num_docs: int, seed: int, threads: int = 0) -> npt.NDArray[np.int64]: ...
def gather_documents(tokens: npt.ArrayLike, offsets: npt.ArrayLike, indices: npt.ArrayLike,
                     threads: int = 0) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...
# ---- end sampling ----------------------------------------------------------------------------

# --- metrics (cpp/bindings/register_metrics.cpp) ------------------------------------------
from typing import Dict, Union

def ngram_diversity(
    tokens: npt.NDArray[np.uint32], offsets: npt.NDArray[np.int64], max_n: int = 4, repeat_n: int = 4,
    threads: int = 1,
) -> Dict[str, Union[npt.NDArray[np.uint64], int]]:
    """{'distinct': uint64[max_n], 'total': uint64[max_n], 'repeated': int, 'repeat_total': int}."""
    ...
# --- end metrics ---------------------------------------------------------------------------
# ---- tokenize: whitespace tokenizer with vocabulary building (register_tokenize.cpp) ---------
def first_invalid_utf8(data: Any) -> int: ...
def tokenize_whitespace(data: Any, doc_bounds: npt.ArrayLike | None = None, known: List[str] = [],
                        grow: bool = True, threads: int = 0, min_bytes_per_thread: int = 1 << 20
                        ) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], List[str]]: ...
# ---- end tokenize --------------------------------------------------------------------------
