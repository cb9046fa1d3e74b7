"""Closed forms of model collapse, for our exact definitions, each with its source.

Conventions (those of the simulator, docs/theory.md): generation 0 is the truth;
generation 1 is the maximum-likelihood fit to the N real samples, in every paradigm;
generation g >= 2 is refit on the paradigm's data. The issue and most papers count
t = g - 1 generations after the first fit. Gaussian fits are ML: sample mean and the
covariance with divisor n (not n - 1). ``sigma2`` is the truth's variance in 1-D, or
tr Sigma0 in d dimensions (every law below holds for traces: the expectations follow
linear recursions in E||m_g - mu0||^2 and E tr C_g).

Where a published law assumes something our process does not do (most often: that
every generation samples with the truth's variance, while an ML fit's variance shrinks),
both are here: the published form (``*_fixed_variance`` / ``he_xu_cheng_*``) and the
exact law for our definitions, derived in the docstrings; tests/test_theory_laws.py
checks the exact ones against the simulator.

``ddof=1`` (the unbiased covariance, divisor n - 1, as ``np.cov`` computes it and as He,
Xu & Cheng's and Suresh et al.'s simulation code fits): the Gaussian laws that take it
follow the simulator's ``ddof=1``; there the published Replace law g sigma^2 / N and He,
Xu & Cheng's golden-ratio optimum hold exactly at every N (tests/test_theory_ddof.py).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import numpy as np

from ..errors import CollapseError
from ..experiment.paradigms import synthetic_part
from ..experiment.tails import galton_watson_death_time, galton_watson_extinction, replace_extinction_law

ArrayLike = Union[int, float, np.ndarray]
GOLDEN_RATIO = (1 + math.sqrt(5)) / 2


def _generations(generation: ArrayLike) -> np.ndarray:
    g = np.asarray(generation)
    if np.any(g < 1) or not np.all(np.equal(np.mod(g, 1), 0)):
        raise CollapseError("generation must be an integer >= 1 (1 = the fit to the real sample)")
    return g.astype(np.int64)


def _scalar_or_array(values: np.ndarray, like: ArrayLike) -> ArrayLike:
    return float(values) if np.ndim(like) == 0 else values


def _check_N(N: int, minimum: int = 1) -> int:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < minimum:
        raise CollapseError(f"N must be an integer >= {minimum}, got {N!r}")
    return int(N)


def _check_ddof(ddof: int, N: int) -> int:
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise CollapseError(f"ddof must be 0 (ML covariance) or 1 (unbiased), got {ddof!r}")
    if N - ddof < 1:
        raise CollapseError(f"ddof = {ddof} needs N >= {ddof + 1}, got {N}")
    return int(ddof)


def synthetic_share(N: int, alpha: float) -> float:
    """The synthetic fraction a mix/fresh generation really has: round(alpha N) / N, with
    round(x) = floor(x + 1/2) as in the simulator."""
    if not 0.0 <= alpha <= 1.0:
        raise CollapseError(f"alpha must lie in [0, 1], got {alpha!r}")
    return synthetic_part(alpha, N) / N


# ---------------------------------------------------------------------- Gaussian: Replace

def gaussian_replace_variance_ratio(N: int, generation: ArrayLike, ddof: int = 0) -> ArrayLike:
    """E[C_g] / sigma^2 = ((N - 1) / (N - ddof))^g under Replace: ((N - 1) / N)^g for ML
    fits, 1 for unbiased ones (ddof = 1: the variance is a martingale, as Suresh et al. and
    He, Xu & Cheng's code fit it).

    Source: Shumailov et al., "AI models collapse when trained on recursively generated
    data" (Nature 2024), Gaussian toy; Suresh et al., "Rate of model collapse in recursive
    training" (AISTATS 2025). Derivation: the ML variance of N draws from N(m, v) has mean
    v (N - 1) / N; iterate from the truth (g = 0). Issue 12's sigma^2 ((N-1)/N)^(t+1).
    """
    N = _check_N(N)
    g = _generations(generation)
    ddof = _check_ddof(ddof, N)
    return _scalar_or_array(((N - 1) / (N - ddof)) ** g, generation)


def gaussian_replace_mean_sq_error(N: int, generation: ArrayLike, sigma2: float = 1.0, ddof: int = 0) -> ArrayLike:
    """E||m_g - mu0||^2 = sigma^2 (1 - ((N - 1) / N)^g) under Replace, exactly.

    Derivation (ours): m_{g+1} = m_g + e with E[e e^T | past] = C_g / N, so the error grows
    by E[tr C_g] / N = sigma^2 ((N-1)/N)^g / N per generation; summing the geometric series
    from E||m_1 - mu0||^2 = sigma^2 / N gives the law. It equals the published
    (t + 1) sigma^2 / N = g sigma^2 / N (``gaussian_replace_mean_sq_error_fixed_variance``)
    only to first order in g / N: that form assumes every generation samples with the
    truth's variance, while the ML variance shrinks. The error saturates at sigma^2 (the
    mean wanders a distance of the truth's own spread, then the variance is gone).

    ddof = 1 (unbiased fits): E[tr C_g] = sigma^2 for every g, so each step adds sigma^2 / N
    and the published g sigma^2 / N (Shumailov et al. 2024; Kazdan et al. 2024) holds exactly.
    """
    N = _check_N(N)
    g = _generations(generation)
    if _check_ddof(ddof, N) == 1:
        return _scalar_or_array(sigma2 * g / N, generation)
    return _scalar_or_array(sigma2 * (1.0 - ((N - 1) / N) ** g), generation)


def gaussian_replace_mean_sq_error_fixed_variance(N: int, generation: ArrayLike, sigma2: float = 1.0) -> ArrayLike:
    """g sigma^2 / N: the published Replace law (the mean as a random walk with steps of
    variance sigma^2 / N; Shumailov et al. 2024, Kazdan et al. 2024 "Collapse or Thrive",
    Dey & Donoho 2024). Exact when each generation's variance is the truth's (known
    variance, or the unbiased estimator in 1-D); for our ML fits see
    ``gaussian_replace_mean_sq_error``."""
    N = _check_N(N)
    g = _generations(generation)
    return _scalar_or_array(sigma2 * g / N, generation)


def _digamma_and_trigamma_of_half(k: int) -> Tuple[float, float]:
    """(psi(k / 2), psi'(k / 2)) for an integer k >= 1, from psi(1/2) = -gamma - 2 log 2,
    psi(1) = -gamma, psi'(1/2) = pi^2 / 2, psi'(1) = pi^2 / 6 and the recurrences
    psi(x + 1) = psi(x) + 1/x, psi'(x + 1) = psi'(x) - 1/x^2 (no scipy at run time)."""
    euler_gamma = 0.57721566490153286061
    if k % 2:
        x, psi, psi1 = 0.5, -euler_gamma - 2 * math.log(2), math.pi ** 2 / 2
    else:
        x, psi, psi1 = 1.0, -euler_gamma, math.pi ** 2 / 6
    while x < k / 2:
        psi, psi1, x = psi + 1 / x, psi1 - 1 / x ** 2, x + 1
    return psi, psi1


def gaussian_replace_log_det_moments(N: int, dim: int, generation: ArrayLike,
                                     ddof: int = 0) -> Tuple[ArrayLike, ArrayLike]:
    """(E, Var) of log det C_g - log det Sigma0 under Replace in d = dim dimensions, N > d.

    Derivation (ours): a fit to N draws x = m + L z from model g - 1 has the covariance
    C_g = L (S / N) L^T with S the scatter of N standard normals, S ~ Wishart_d(N - 1, I),
    independent of the past. So log det C_g - log det Sigma0 is a sum of g independent
    copies of log det (S / N), and det S is a product of independent chi-square(N - 1 - i),
    i = 0..d-1 (Bartlett's decomposition; Muirhead, "Aspects of Multivariate Statistical
    Theory", 1982, section 3.2). With E log chi-square(k) = psi(k/2) + log 2 and
    Var log chi-square(k) = psi'(k/2): E = g sum_i [psi((N-1-i)/2) + log(2/N)],
    Var = g sum_i psi'((N-1-i)/2). Finite for every g although C_g's condition number
    grows without bound; for N <= d, C_g is singular (log det = -inf). ddof = 1 divides S by
    N - 1 instead: the mean gains g d log(N / (N - 1)), the variance is unchanged.
    """
    d = _check_N(dim)
    N = _check_N(N, d + 1)
    g = _generations(generation)
    divisor = N - _check_ddof(ddof, N)
    step_mean = step_var = 0.0
    for i in range(d):
        psi, psi1 = _digamma_and_trigamma_of_half(N - 1 - i)
        step_mean += psi + math.log(2 / divisor)
        step_var += psi1
    return _scalar_or_array(g * step_mean, generation), _scalar_or_array(g * step_var, generation)


# ------------------------------------------------------------------- Gaussian: Accumulate

def gaussian_accumulate_variance_ratio(N: int, generation: ArrayLike, ddof: int = 0) -> ArrayLike:
    """E[C_g] / sigma^2 = prod_{j=1..g} (1 - 1 / (j^2 N)) under Accumulate (the fit to all
    g N samples so far), tending to sin(pi / sqrt N) / (pi / sqrt N) (Euler's product).

    Derivation (ours): with Q_g the pooled sum of squares about the pooled mean, adding N
    draws from N(m_g, C_g) gives E[Q_{g+1} | past] = Q_g + C_g (N - 1 + g / (g + 1)), i.e.
    E[C_{g+1}] = E[C_g] (1 - 1 / ((g + 1)^2 N)), with E[C_1] = sigma^2 (1 - 1/N).
    ddof = 1 (C_g = Q_g / (g N - 1)): E[C_{g+1}] = E[C_g] (1 - 1 / ((g + 1) ((g + 1) N - 1))),
    E[C_1] = sigma^2 (ours); still below 1, so the published fixed-variance form stays an
    approximation (closer, by O(1/N^2) per generation).
    """
    N = _check_N(N)
    g = _generations(generation)
    if _check_ddof(ddof, N) == 1:
        j = np.arange(1, int(g.max()) + 1, dtype=np.float64)
        return _scalar_or_array(np.cumprod(1.0 - (j > 1) / (j * (j * N - 1)))[g - 1], generation)
    j = np.arange(1, int(g.max()) + 1)
    prod = np.cumprod(1.0 - 1.0 / (j.astype(np.float64) ** 2 * N))
    return _scalar_or_array(prod[g - 1], generation)


def gaussian_accumulate_variance_limit(N: int) -> float:
    """lim E[C_g] / sigma^2 under Accumulate: sin(pi / sqrt N) / (pi / sqrt N)."""
    x = math.pi / math.sqrt(_check_N(N))
    return math.sin(x) / x


def gaussian_accumulate_mean_sq_error(N: int, generation: ArrayLike, sigma2: float = 1.0,
                                      ddof: int = 0) -> ArrayLike:
    """E||m_g - mu0||^2 = (sigma^2 / N) sum_{j=1..g} c_{j-1} / j^2 under Accumulate, with
    c_j = E[C_j] / sigma^2 (``gaussian_accumulate_variance_ratio``, c_0 = 1).

    Derivation (ours): the pooled mean moves by (mean of the N new draws - m_g) / (g + 1),
    whose variance is C_g / (N (g + 1)^2). With c_j = 1 this is the published law
    (sigma^2 / N) sum 1/j^2 -> (pi^2 / 6) sigma^2 / N (Gerstgrasser et al. 2024, "Is model
    collapse inevitable?"; Dey & Donoho 2024's pi^2/6;
    ``gaussian_accumulate_mean_sq_error_fixed_variance``); our ML variances shrink a little
    (c_j >= sin(pi/sqrt N)/(pi/sqrt N)), so the exact error is a little lower, by O(1/N).
    """
    N = _check_N(N)
    g = _generations(generation)
    G = int(g.max())
    j = np.arange(1, G + 1, dtype=np.float64)
    if _check_ddof(ddof, N) == 1:  # c_0 .. c_{G-1}, c_j = prod_{i=2..j} (1 - 1 / (i (i N - 1)))
        c_prev = np.concatenate([[1.0], np.cumprod(1.0 - (j[:-1] > 1) / (j[:-1] * (j[:-1] * N - 1)))])
    else:
        c_prev = np.concatenate([[1.0], np.cumprod(1.0 - 1.0 / (j[:-1] ** 2 * N))])  # c_0 .. c_{G-1}
    err = np.cumsum(c_prev / j ** 2) * sigma2 / N
    return _scalar_or_array(err[g - 1], generation)


def gaussian_accumulate_moments(N: int, generation: ArrayLike, sigma2: float = 1.0, ddof: int = 0,
                                m: Optional[int] = None) -> Tuple[ArrayLike, ArrayLike]:
    """(E||m_g - mu0||^2, E[tr C_g] / sigma^2) under Accumulate with m synthetic draws per
    generation (the simulator's ``contribution``; m = N unless given) and covariance divisor
    n - ddof, exactly.

    Derivation (ours), as for ``gaussian_accumulate_variance_ratio``: with n = N + (g - 1) m
    items pooled at generation g and C_g = Q_g / (n - ddof), adding m draws from N(m_g, C_g)
    gives E[Q_{g+1}] = E[Q_g] + E[C_g] (m - 1 + n / (n + m)), and the pooled mean moves by
    m (mean of the new draws - m_g) / (n + m), of variance m C_g / (n + m)^2. From E_1 =
    sigma^2 / N, E[C_1] = sigma^2 (N - 1) / (N - ddof). With m = N, ddof = 0 these are
    ``gaussian_accumulate_mean_sq_error`` and ``gaussian_accumulate_variance_ratio``.
    """
    N = _check_N(N)
    g = _generations(generation)
    ddof = _check_ddof(ddof, N)
    m = _check_m(N, m, 0)
    G = int(g.max())
    E = np.empty(G)
    V = np.empty(G)
    E[0], V[0] = sigma2 / N, sigma2 * (N - 1) / (N - ddof)
    for i in range(1, G):
        n = N + (i - 1) * m
        E[i] = E[i - 1] + m * V[i - 1] / (n + m) ** 2
        V[i] = V[i - 1] * ((n - ddof) + m - 1 + n / (n + m)) / (n + m - ddof)
    return _scalar_or_array(E[g - 1], generation), _scalar_or_array(V[g - 1] / sigma2, generation)


def gaussian_accumulate_mean_sq_error_fixed_variance(N: int, generation: ArrayLike, sigma2: float = 1.0) -> ArrayLike:
    """(sigma^2 / N) sum_{j=1..g} 1/j^2 -> (pi^2/6) sigma^2 / N: the published Accumulate
    law (Gerstgrasser et al. 2024; Dey & Donoho 2024), exact when every generation samples
    with the truth's variance."""
    N = _check_N(N)
    g = _generations(generation)
    j = np.arange(1, int(g.max()) + 1, dtype=np.float64)
    return _scalar_or_array(np.cumsum(1.0 / j ** 2)[g - 1] * sigma2 / N, generation)


def gaussian_accumulate_mean_sq_error_limit(N: int, sigma2: float = 1.0, terms: int = 1_000_000) -> float:
    """lim_g of ``gaussian_accumulate_mean_sq_error`` (the tail beyond `terms` is below
    sigma^2 / (N terms))."""
    return float(gaussian_accumulate_mean_sq_error(N, terms, sigma2))


# ------------------------------------------------------------- Gaussian: Fresh and Weighted

def gaussian_fresh_moments(N: int, alpha: float, generation: ArrayLike, sigma2: float = 1.0) -> Tuple[ArrayLike, ArrayLike]:
    """(E||m_g - mu0||^2, E[tr C_g] / sigma^2) under Fresh(alpha), exactly.

    Our Fresh(alpha): generation g + 1 is the ML fit to n_s = round(alpha N) draws from
    model g plus n_r = N - n_s new draws from the truth: alpha is the *synthetic* fraction
    (a = n_s / N, b = n_r / N). Derivation (ours): with E = E||m - mu0||^2, V = E tr C,
      E' = a^2 E + (a V + b sigma^2) / N,
      V' = [V (n_s - 1 + b) + sigma^2 (n_r - 1 + a) + N a b E] / N,
    the last term being the spread between the two groups' means, which the pooled ML
    variance contains. From E_1 = sigma^2 / N, V_1 = sigma^2 (N - 1) / N.
    """
    N = _check_N(N)
    g = _generations(generation)
    a = synthetic_share(N, alpha)
    b = 1.0 - a
    n_s, n_r = a * N, b * N
    G = int(g.max())
    E = np.empty(G)
    V = np.empty(G)
    E[0], V[0] = sigma2 / N, sigma2 * (N - 1) / N
    for i in range(1, G):
        E[i] = a * a * E[i - 1] + (a * V[i - 1] + b * sigma2) / N
        V[i] = (V[i - 1] * (n_s - 1 + b) + sigma2 * (n_r - 1 + a) + N * a * b * E[i - 1]) / N
    return _scalar_or_array(E[g - 1], generation), _scalar_or_array(V[g - 1] / sigma2, generation)


def gaussian_fresh_stationary_mean_sq_error(N: int, alpha: float, sigma2: float = 1.0) -> float:
    """Stationary E||m - mu0||^2 under our Fresh(alpha): sigma^2 / (N (1 - a^2) + a), a =
    round(alpha N) / N the synthetic fraction (the fixed point of
    ``gaussian_fresh_moments``; derivation in docs/theory.md).

    The published form (sigma^2 / N) / (1 - alpha^2) (``gaussian_fresh_stationary_fixed_variance``)
    takes the synthetic draws to have the truth's variance; the ML variance of the mixed
    sample is lower, which lowers the error: the "+ a" in the denominator, O(1/N) relative.
    Undefined (no stationary law: Replace) for a = 1."""
    N = _check_N(N)
    a = synthetic_share(N, alpha)
    if a >= 1.0:
        raise CollapseError("Fresh with alpha = 1 is Replace: no stationary error")
    return sigma2 / (N * (1 - a * a) + a)


def gaussian_fresh_stationary_fixed_variance(N: int, alpha: float, sigma2: float = 1.0) -> float:
    """(sigma^2 / N) / (1 - a^2): the mean's stationary error when the synthetic share a
    of each fit is drawn with the truth's variance (an AR(1) with coefficient a; issue 12's
    Fresh law; the same geometry as Bertrand et al.'s stability of iterative retraining
    with a small synthetic proportion)."""
    N = _check_N(N)
    a = synthetic_share(N, alpha)
    if a >= 1.0:
        raise CollapseError("Fresh with alpha = 1 is Replace: no stationary error")
    return sigma2 / N / (1 - a * a)


def _check_m(N: int, m: Optional[int], ddof: int) -> int:
    """m, the synthetic draws per generation (None: N), checked: an integer >= 1 + ddof."""
    if m is None:
        return N
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1 + ddof:
        raise CollapseError(f"m (synthetic draws per generation) must be an integer >= {1 + ddof}, got {m!r}")
    return int(m)


def gaussian_weighted_moments(N: int, w: float, generation: ArrayLike, sigma2: float = 1.0, ddof: int = 0,
                              m: Optional[int] = None) -> Tuple[ArrayLike, ArrayLike]:
    """(E||m_g - mu0||^2, E[tr C_g] / sigma^2) under Weighted(w), exactly.

    Weighted(w) (He, Xu & Cheng, JRSS-B): m' = (1 - w) mean(S) + w mean(F), C' = (1 - w)
    cov(S) + w cov(F), S m draws from model g (m = N unless given: the simulator's
    ``contribution``), F N new draws from the truth; covariances with divisor n - ddof.
    Derivation (ours), with r_n = (n - 1) / (n - ddof):
    E' = (1 - w)^2 (E + V / m) + w^2 sigma^2 / N, V' = (1 - w) r_m V + w r_N sigma^2,
    from E_1 = sigma^2 / N, V_1 = r_N sigma^2. (ML, m = N: V' = (N - 1) / N ((1 - w) V + w sigma^2).)
    """
    N = _check_N(N)
    g = _generations(generation)
    if not 0.0 <= w <= 1.0:
        raise CollapseError(f"w must lie in [0, 1], got {w!r}")
    ddof = _check_ddof(ddof, N)
    m = _check_m(N, m, ddof)
    r_N, r_m = (N - 1) / (N - ddof), (m - 1) / (m - ddof)
    G = int(g.max())
    E = np.empty(G)
    V = np.empty(G)
    if ddof == 0 and m == N:  # the original arithmetic, kept bit for bit
        E[0], V[0] = sigma2 / N, sigma2 * (N - 1) / N
        for i in range(1, G):
            E[i] = (1 - w) ** 2 * (E[i - 1] + V[i - 1] / N) + w * w * sigma2 / N
            V[i] = (N - 1) / N * ((1 - w) * V[i - 1] + w * sigma2)
    else:
        E[0], V[0] = sigma2 / N, sigma2 * r_N
        for i in range(1, G):
            E[i] = (1 - w) ** 2 * (E[i - 1] + V[i - 1] / m) + w * w * sigma2 / N
            V[i] = (1 - w) * r_m * V[i - 1] + w * r_N * sigma2
    return _scalar_or_array(E[g - 1], generation), _scalar_or_array(V[g - 1] / sigma2, generation)


def he_xu_cheng_stationary_mean_sq_error(N: int, w: float, sigma2: float = 1.0) -> float:
    """((1 - w)^2 + w^2) / (w (2 - w)) x sigma^2 / N: He, Xu & Cheng's stationary error of
    the weighted estimator's mean, smallest at w = 1 / phi = 0.618 (the golden ratio), where
    it equals sigma^2 / (phi N). Exact when the synthetic draws have the truth's variance:
    for unbiased fits (``gaussian_weighted_stationary_mean_sq_error(..., ddof=1)``), not for ML ones."""
    N = _check_N(N)
    if not 0.0 < w <= 1.0:
        raise CollapseError(f"w must lie in (0, 1] for a stationary error, got {w!r}")
    return ((1 - w) ** 2 + w * w) / (w * (2 - w)) * sigma2 / N


def gaussian_weighted_stationary_variance_ratio(N: int, w: float, ddof: int = 0, m: Optional[int] = None) -> float:
    """Stationary E[tr C] / sigma^2 under Weighted(w): rho = w r_N / (1 - (1 - w) r_m),
    r_n = (n - 1) / (n - ddof): rho = w (N - 1) / (1 + w (N - 1)) for ML fits with m = N,
    exactly 1 for unbiased ones (ddof = 1, any m)."""
    N = _check_N(N)
    if not 0.0 < w <= 1.0:
        raise CollapseError(f"w must lie in (0, 1] for a stationary law, got {w!r}")
    ddof = _check_ddof(ddof, N)
    m = _check_m(N, m, ddof)
    if ddof == 0 and m == N:
        return w * (N - 1) / (1 + w * (N - 1))
    r_N, r_m = (N - 1) / (N - ddof), (m - 1) / (m - ddof)
    return w * r_N / (1 - (1 - w) * r_m)


def gaussian_weighted_stationary_mean_sq_error(N: int, w: float, sigma2: float = 1.0, ddof: int = 0,
                                               m: Optional[int] = None) -> float:
    """Stationary E||m - mu0||^2 under our Weighted(w):
    ((1 - w)^2 rho N / m + w^2) / (w (2 - w)) x sigma^2 / N, rho =
    ``gaussian_weighted_stationary_variance_ratio`` (the fixed point of
    ``gaussian_weighted_moments``). ML fits: rho -> 1 as N grows, so He, Xu & Cheng's law is
    its limit and the optimal weight tends to 1/phi. Unbiased fits (ddof = 1, m = N): rho = 1
    and this is He, Xu & Cheng's law exactly, at every N."""
    rho = gaussian_weighted_stationary_variance_ratio(N, w, ddof, m)
    ratio = N / _check_m(N, m, ddof)
    if ratio == 1:
        return ((1 - w) ** 2 * rho + w * w) / (w * (2 - w)) * sigma2 / N
    return ((1 - w) ** 2 * rho * ratio + w * w) / (w * (2 - w)) * sigma2 / N


def gaussian_weighted_optimal_weight(N: int, resolution: float = 1e-6, ddof: int = 0) -> float:
    """The w in (0, 1] that minimises ``gaussian_weighted_stationary_mean_sq_error`` (grid
    search refined around the best point; 1/phi in the limit N -> infinity for ML fits, and
    at every N for unbiased ones, ddof = 1, where it is He, Xu & Cheng's golden ratio)."""
    N = _check_N(N)
    ddof = _check_ddof(ddof, N)
    lo, hi = 1e-4, 1.0
    while hi - lo > resolution:
        w = np.linspace(lo, hi, 201)
        rho = w * (N - 1) / (1 + w * (N - 1)) if ddof == 0 else np.ones_like(w)
        f = ((1 - w) ** 2 * rho + w * w) / (w * (2 - w))
        i = int(np.argmin(f))
        step = w[1] - w[0]
        lo, hi = max(1e-6, w[i] - step), min(1.0, w[i] + step)
    return float((lo + hi) / 2)


# ------------------------------------------- Gaussian: Accumulate-Subsample and Mix (exact)

def gaussian_accumulate_subsample_moments(N: int, generation: ArrayLike,
                                          sigma2: float = 1.0) -> Tuple[ArrayLike, ArrayLike]:
    """(E||m_g - mu0||^2, E[tr C_g] / sigma^2) under Accumulate-Subsample, exactly.

    Generation g + 1 is the ML fit to N items drawn without replacement from the pool of
    n' = (g + 1) N items R + S_1 + ... + S_g. No published closed form (Kazdan et al. 2024
    observe that it degrades slowly); derivation (ours): track the pool's mean P and sum of
    squares Q. With A = E||P - mu0||^2, B = E||m - mu0||^2 (and E[(m - mu0).(P - mu0)] = A,
    since m is a subsample mean of the pool), V = E tr C, n the pool size:
      A' = [n^2 A + 2 n N A + N^2 B + N V] / n'^2,
      E Q' = E Q + (N - 1) V + (n N / n') (B - A + V / N),
      B' = A' + E Q' / (n' - 1) x (1 / N) (1 - N / n')   (sampling without replacement),
      V' = (N - 1) / N x E Q' / (n' - 1),
    from A_1 = B_1 = sigma^2 / N, E Q_1 = (N - 1) sigma^2, V_1 = sigma^2 (N - 1) / N.
    """
    N = _check_N(N)
    g = _generations(generation)
    G = int(g.max())
    E = np.empty(G)
    V = np.empty(G)
    A = B = sigma2 / N
    Q = (N - 1) * sigma2
    E[0], V[0] = B, sigma2 * (N - 1) / N
    for i in range(1, G):
        n = i * N
        n_new = n + N
        v = V[i - 1]
        A_new = (n * n * A + 2 * n * N * A + N * N * B + N * v) / n_new ** 2
        Q = Q + (N - 1) * v + (n * N / n_new) * (B - A + v / N)
        B = A_new + Q / (n_new - 1) / N * (1 - N / n_new)
        A = A_new
        E[i], V[i] = B, (N - 1) / N * Q / (n_new - 1)
    return _scalar_or_array(E[g - 1], generation), _scalar_or_array(V[g - 1] / sigma2, generation)


def gaussian_mix_moments(N: int, alpha: float, generation: ArrayLike,
                         sigma2: float = 1.0) -> Tuple[ArrayLike, ArrayLike]:
    """(E||m_g - mu0||^2, E[tr C_g] / sigma^2) under Mix(alpha) with the finite real set R.

    Generation g + 1 is the ML fit to n_s = round(alpha N) draws from model g plus n_r = N -
    n_s items drawn without replacement from R (a = n_s / N, b = n_r / N). Derivation
    (ours): with R's mean Rbar (A = E||Rbar - mu0||^2 = sigma^2 / N) and its sum of squares
    (E = (N - 1) sigma^2, so a subset mean of R has conditional variance
    sigma^2-weighted f = (1 / n_r)(1 - n_r / N) in expectation), B = E||m - mu0||^2,
    C = E[(m - mu0).(Rbar - mu0)], V = E tr C:
      B' = a^2 B + a V / N + b^2 A + b (1 - b) sigma^2 / N + 2 a b C,
      C' = a C + b A,
      V' = [(n_s - 1)^+ V + (n_r - 1)^+ sigma^2 + N a b D] / N, where
      D = B - 2 C + A + V / n_s + (1 - b) sigma^2 / n_r is E||mean(S) - mean(R part)||^2
    (the spread between the two groups' means, part of the pooled ML variance; terms with
    n_s = 0 or n_r = 0 vanish), from B_1 = C_1 = A, V_1 = sigma^2 (N - 1) / N.
    Stationary, however small a > 0: the model is tied to R, and stays as far from the
    truth as R is, plus the synthetic noise.
    """
    N = _check_N(N)
    g = _generations(generation)
    a = synthetic_share(N, alpha)
    n_s = round(a * N)
    n_r = N - n_s
    b = n_r / N
    G = int(g.max())
    E = np.empty(G)
    V = np.empty(G)
    A = sigma2 / N
    B = C = A
    E[0], V[0] = B, sigma2 * (N - 1) / N
    for i in range(1, G):
        v = V[i - 1]
        # E||mean(S) - mean(R part)||^2 times n_s n_r / N (0 when either part is empty)
        between = 0.0
        if n_s and n_r:
            D = B - 2 * C + A + v / n_s + (1 - b) * sigma2 / n_r
            between = n_s * n_r / N * D
        V[i] = (max(n_s - 1, 0) * v + max(n_r - 1, 0) * sigma2 + between) / N
        B, C = a * a * B + a * v / N + b * b * A + b * (1 - b) * sigma2 / N + 2 * a * b * C, a * C + b * A
        E[i] = B
    return _scalar_or_array(E[g - 1], generation), _scalar_or_array(V[g - 1] / sigma2, generation)


# ----------------------------------------------------------------------------- categorical

def seddik_sum_p2(p0: np.ndarray, N: int, generation: ArrayLike) -> ArrayLike:
    """E[sum_i p_{g,i}^2] under Replace: 1 - E[S_g] = (1 - 1/N)^g (1 - S_0).

    Source: Seddik et al., "How bad is training on synthetic data? A statistical analysis
    of language model collapse" (arXiv 2404.05090), fully synthetic case; the same
    heterozygosity decay as Wright-Fisher. Each generation's N draws keep two distinct
    draws of distinct type with probability (1 - 1/N) times the previous."""
    N = _check_N(N)
    g = _generations(generation)
    h0 = 1.0 - float(np.sum(np.asarray(p0, dtype=np.float64) ** 2))
    return _scalar_or_array(1.0 - (1 - 1 / N) ** g * h0, generation)


def categorical_weighted_sum_p2(p0: np.ndarray, N: int, w: float, generation: ArrayLike) -> ArrayLike:
    """E[sum_i p_{g,i}^2] under the categorical Weighted(w): p' = (1 - w) S / N + w F / N.

    Derivation (ours, in the manner of Seddik et al.): E[p_g] = p0 for every g, and
    E[(S_i/N)^2 | p] = p_i^2 (1 - 1/N) + p_i / N, so with s = E[sum p^2], s0 = sum p0^2,
      s' = (1 - w)^2 (s (1 - 1/N) + 1/N) + 2 w (1 - w) s0 + w^2 (s0 (1 - 1/N) + 1/N),
    from s_1 = s0 (1 - 1/N) + 1/N. Stationary for w > 0: collapse is avoided."""
    N = _check_N(N)
    g = _generations(generation)
    s0 = float(np.sum(np.asarray(p0, dtype=np.float64) ** 2))
    G = int(g.max())
    s = np.empty(G)
    s[0] = s0 * (1 - 1 / N) + 1 / N
    for i in range(1, G):
        s[i] = (1 - w) ** 2 * (s[i - 1] * (1 - 1 / N) + 1 / N) + 2 * w * (1 - w) * s0 + \
            w * w * (s0 * (1 - 1 / N) + 1 / N)
    return _scalar_or_array(s[g - 1], generation)


def _binomial_matrix(N: int) -> np.ndarray:
    """P[i, j] = Bin(j; N, i / N): the Wright-Fisher (Replace, two outcomes) transition matrix."""
    from math import lgamma

    j = np.arange(N + 1)
    log_comb = np.array([lgamma(N + 1) - lgamma(k + 1) - lgamma(N - k + 1) for k in j])
    P = np.zeros((N + 1, N + 1))
    P[0, 0] = P[N, N] = 1.0
    for i in range(1, N):
        p = i / N
        P[i] = np.exp(log_comb + j * math.log(p) + (N - j) * math.log1p(-p))
    return P


def wright_fisher_fixation_probability(N: int, i: int) -> float:
    """P(the outcome with count i of N takes over) = i / N under Replace: the frequency is a
    martingale (Wright-Fisher; Kimura 1962). Its loss has probability 1 - i / N."""
    N = _check_N(N, 2)
    if not 0 <= i <= N:
        raise CollapseError(f"i must lie in [0, N], got {i}")
    return i / N


def wright_fisher_absorption_time(N: int, i: int) -> float:
    """Exact mean number of generations until one of two outcomes is lost, starting from
    counts (i, N - i), under Replace: t = (I - Q)^{-1} 1 over the transient states 1..N-1
    of the (N+1)-state Wright-Fisher chain."""
    N = _check_N(N, 2)
    if not 1 <= i <= N - 1:
        raise CollapseError(f"i must lie in [1, N - 1], got {i}")
    Q = _binomial_matrix(N)[1:N, 1:N]
    t = np.linalg.solve(np.eye(N - 1) - Q, np.ones(N - 1))
    return float(t[i - 1])


def time_to_forget(N: int, k: ArrayLike) -> ArrayLike:
    """Exact E[generations until an outcome seen k times among N is lost | it is lost],
    under Replace.

    The outcome's count is the two-state (it / the rest) Wright-Fisher chain; conditioning
    on absorption at 0 (probability h_i = 1 - i / N) is Doob's h-transform, Q*_ij = Q_ij h_j
    / h_i, and the conditional mean time is (I - Q*)^{-1} 1. Suresh et al., "Rate of model
    collapse in recursive training" (AISTATS 2025): the time to forget a symbol is about
    linear in its count k; Kimura & Ohta's diffusion approximation is
    ``time_to_forget_diffusion``."""
    N = _check_N(N, 2)
    ks = np.atleast_1d(np.asarray(k))
    if np.any(ks < 1) or np.any(ks > N - 1):
        raise CollapseError("k must lie in [1, N - 1]")
    Q = _binomial_matrix(N)[1:N, 1:N]
    h = 1.0 - np.arange(1, N) / N
    Q_star = Q * h[None, :] / h[:, None]
    tau = np.linalg.solve(np.eye(N - 1) - Q_star, np.ones(N - 1))
    out = tau[ks.astype(np.int64) - 1]
    return float(out[0]) if np.ndim(k) == 0 else out


def time_to_forget_diffusion(N: int, k: ArrayLike) -> ArrayLike:
    """Kimura & Ohta (1969)'s diffusion approximation of ``time_to_forget``:
    -2 N p ln p / (1 - p) generations, p = k / N; about 2 k ln(N / k) for k << N."""
    N = _check_N(N, 2)
    out = replace_extinction_law(N, k)
    return float(out) if np.ndim(k) == 0 else out


# ------------------------------------------------------------------ categorical: the tail
#
# Conventions of collapse.theory.tails: an outcome's original count k is its count in the
# real sample R (generation 1 = R / N); it is extinct at generation g when p_g gives it 0;
# its extinction generation is the first such g. Under Replace, counts follow the two-state
# Wright-Fisher chain from k at generation 1, so extinct_at = 1 + T with T the chain's
# absorption time at 0.

def _replace_lost_within(N: int, steps: int) -> np.ndarray:
    """L[j, k] = P(an outcome of count k is lost within j Replace refits), j = 0..steps,
    k = 0..N: L[j] = P^j e_0 for the (N+1)-state Wright-Fisher matrix P (exact)."""
    P = _binomial_matrix(N)
    L = np.empty((steps + 1, N + 1))
    a = np.zeros(N + 1)
    a[0] = 1.0
    for j in range(steps + 1):
        L[j] = a
        a = P @ a
    return L


def _counts(N: int, k: ArrayLike) -> np.ndarray:
    ks = np.atleast_1d(np.asarray(k))
    if np.any(ks < 1) or np.any(ks > N) or not np.all(np.equal(np.mod(ks, 1), 0)):
        raise CollapseError("k (the count in R) must be an integer in [1, N]")
    return ks.astype(np.int64)


def replace_survival(N: int, k: ArrayLike, generation: int) -> ArrayLike:
    """P(an outcome seen k times in R still has p_g > 0 at generation g) under Replace,
    exactly: 1 - (P^(g-1))_{k,0}, P the Wright-Fisher matrix (the outcome against the rest;
    each outcome's count is that chain on its own, whatever K is). N up to a few thousand."""
    N = _check_N(N, 2)
    g = int(_generations(generation))
    out = 1.0 - _replace_lost_within(N, g - 1)[g - 1, _counts(N, k)]
    return float(out[0]) if np.ndim(k) == 0 else out


def replace_extinction_generation(N: int, k: ArrayLike, generations: Optional[int] = None) -> ArrayLike:
    """E[extinct_at | count k in R, extinct by generation G] under Replace, exactly
    (extinct_at = 1 + T, T the Wright-Fisher absorption time at 0 from k). G = None: no
    horizon, 1 + ``time_to_forget``. A run of G generations sees only the outcomes that
    died by G: this is the mean it measures (the unconditional one is much larger)."""
    N = _check_N(N, 2)
    ks = _counts(N, k)
    if generations is None:
        if np.any(ks >= N):
            raise CollapseError("k must lie in [1, N - 1] without a horizon")
        out = 1.0 + np.atleast_1d(time_to_forget(N, ks))
    else:
        G = int(_generations(generations))
        if G < 2:
            raise CollapseError("generations must be >= 2 (generation 1 is R itself)")
        L = _replace_lost_within(N, G - 1)[:, ks]       # L[j]: lost within j refits, extinct_at <= 1 + j
        died = L[-1]
        if np.any(died <= 0):
            raise CollapseError("an outcome with this k cannot die within the horizon")
        steps = np.arange(1, G)
        out = ((1.0 + steps)[:, None] * np.diff(L, axis=0)).sum(axis=0) / died
    return float(out[0]) if np.ndim(k) == 0 else out


def _binomial_pmf(N: int, p: np.ndarray) -> np.ndarray:
    """B[i, k] = Bin(k; N, p_i), k = 0..N (p_i = 0 and 1 exactly)."""
    from math import lgamma

    k = np.arange(N + 1, dtype=np.float64)
    log_comb = np.array([lgamma(N + 1) - lgamma(j + 1) - lgamma(N - j + 1) for j in range(N + 1)])
    p = np.asarray(p, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = log_comb + k * np.log(p) + (N - k) * np.log1p(-p)
    out = np.exp(np.where(np.isnan(logs), -np.inf, logs))
    out[p[:, 0] == 0, 0] = 1.0
    out[p[:, 0] == 1, N] = 1.0
    return out


def replace_missing_mass(p0: np.ndarray, N: int, generation: ArrayLike) -> ArrayLike:
    """E[M_g], M_g = sum of p0 over the outcomes p_g gives probability 0 (Dohmatob et al.'s
    "Hutter" test error, weighted by p0), under Replace, exactly:
    sum_i p0_i sum_k Bin(k; N, p0_i) (P^(g-1))_{k,0}. Generation 1 (the fit to R):
    sum_i p0_i (1 - p0_i)^N. Also Accumulate's value at every g when g = 1 is passed (R stays
    in its pool: nothing R holds is ever lost). N up to a few thousand; for larger N,
    ``replace_missing_mass_poisson``."""
    N = _check_N(N, 2)
    g = _generations(generation)
    p0 = np.asarray(p0, dtype=np.float64)
    L = _replace_lost_within(N, int(g.max()) - 1)               # [g - 1, k]
    out = (p0 @ (_binomial_pmf(N, p0) @ L.T))[np.atleast_1d(g) - 1]  # P(outcome i lost by g), p0-weighted
    return float(out[0]) if np.ndim(generation) == 0 else out


def replace_extinction_generation_poisson(k: ArrayLike, generations: int) -> ArrayLike:
    """Large-N form of ``replace_extinction_generation`` with a horizon: with P(lost within
    j refits | k) = q_j^k (``galton_watson_extinction``), E[1 + T | T <= G - 1]. It does
    not depend on N: for k << N a run of G generations measures this, not 2 k ln(N / k)
    (the mean without a horizon, which a critical branching line makes infinite as N grows)."""
    G = int(_generations(generations))
    if G < 2:
        raise CollapseError("generations must be >= 2 (generation 1 is R itself)")
    if np.any(np.atleast_1d(np.asarray(k, dtype=np.float64)) < 1):
        raise CollapseError("k (the count in R) must be >= 1")
    out = 1.0 + galton_watson_death_time(k, G - 1)
    return float(out[0]) if np.ndim(k) == 0 else out


def replace_missing_mass_poisson(p0: np.ndarray, N: int, generation: ArrayLike) -> ArrayLike:
    """Large-N form of ``replace_missing_mass``: sum_i p0_i exp(-N p0_i (1 - q_{g-1})), the
    count in R taken Poisson(N p0_i) and each copy's line dying within g - 1 refits with
    probability q_{g-1} (``galton_watson_extinction``). g generations of Replace lose what
    one fit to N (1 - q_{g-1}) ~ 2 N / g draws would."""
    N = _check_N(N)
    g = _generations(generation)
    p0 = np.asarray(p0, dtype=np.float64)
    q = galton_watson_extinction(int(g.max()) - 1)
    lam = N * (1.0 - q[g - 1])
    out = (p0[:, None] * np.exp(-p0[:, None] * np.atleast_1d(lam)[None, :])).sum(axis=0)
    return float(out[0]) if np.ndim(generation) == 0 else out


def _zeta(beta: float, terms: int = 10_000) -> float:
    """Riemann's zeta(beta), beta > 1: the first `terms` terms and an Euler-Maclaurin tail."""
    M = float(terms)
    head = float(np.sum(np.arange(1, terms + 1, dtype=np.float64) ** -beta))
    return head + M ** (1 - beta) / (beta - 1) - M ** -beta / 2 + beta * M ** (-beta - 1) / 12


def zipf_missing_mass_law(N: int, beta: float, generation: ArrayLike = 1) -> ArrayLike:
    """Dohmatob et al.'s tail law for Zipf p0_i = i^-beta / zeta(beta) (infinitely many
    outcomes, beta > 1), with its constant and for g generations of Replace (ours):
    E[M_g] ~ Gamma(1 - 1/beta) / beta x zeta(beta)^(-1/beta) x N_g^(-(1 - 1/beta)),
    N_g = N (1 - q_{g-1}) (``galton_watson_extinction``; N_1 = N, N_g ~ 2 N / g).

    Derivation: the integral over ranks of ``replace_missing_mass_poisson`` (u = N_g p_i).
    At g = 1 it is "A Tale of Tails" (Dohmatob et al. 2024)'s T^-(1 - 1/beta) for clean
    data; a sample of size T cuts the tail at rank k ~ T^(1/beta), whose mass is
    k^-(beta - 1) / ((beta - 1) zeta(beta)), the same order: their tail-cutting term. Replace
    cuts g times: the error grows as g^(1 - 1/beta), as one sample of 2N / g would leave it.
    An asymptote: within a few per cent of the exact law for N p0_K >> 1 >> N p0_1 only
    (docs/theory.md)."""
    N = _check_N(N)
    if not (isinstance(beta, (int, float)) and beta > 1):
        raise CollapseError(f"beta must be > 1 for an infinite Zipf law, got {beta!r}")
    g = _generations(generation)
    q = galton_watson_extinction(int(g.max()) - 1)
    n_g = N * (1.0 - q[g - 1])
    c = math.gamma(1 - 1 / beta) / beta * _zeta(beta) ** (-1 / beta)
    out = c * np.atleast_1d(n_g) ** (-(1 - 1 / beta))
    return float(out[0]) if np.ndim(generation) == 0 else out
