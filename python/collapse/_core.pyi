# Type stubs for collapse._core. Each area adds its own clearly delimited block.
from typing import Any, Dict, Optional

def __getattr__(name: str) -> Any: ...  # areas without stubs yet

import numpy as np

# ---- simulation (register_simulation.cpp) ------------------------------------------------
def simulate_categorical(p0: np.ndarray, N: int, generations: int, paradigm: str, alpha: float, seed: int,
                         first_trial: int, trials: int, threads: int = 0, tail_fraction: float = 0.1,
                         keep_final_p: bool = True, record_every: int = 1) -> Dict[str, Any]:
    """Trials [first_trial, first_trial + trials) of the categorical collapse process: dict with
    first_trial, generation (recorded generations), entropy/support/sum_p2/kl_to_truth/
    tv_to_truth/tail_mass (trials x recorded), first_extinction/collapse/collapsed_to (trials),
    final_p (trials x K or None)."""
    ...
def simulation_tail_set(p0: np.ndarray, tail_fraction: float) -> np.ndarray: ...
def simulation_binomial(seed: int, n: int, p: float, count: int) -> np.ndarray: ...
def simulation_hypergeometric(seed: int, draws: int, successes: int, population: int, count: int) -> np.ndarray: ...
def simulation_alias(seed: int, weights: np.ndarray, count: int) -> np.ndarray: ...
# ---- end simulation ----------------------------------------------------------------------
