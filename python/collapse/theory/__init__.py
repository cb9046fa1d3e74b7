"""Theory: simulated collapse processes with exact answers (categorical, Gaussian, n-gram) and the closed forms they obey.

``simulate(process="categorical" | "gaussian" | "ngram", ...)`` runs a process for many
trials; the law functions (``collapse.theory.laws``) give the closed forms, each with its
source, for the simulator's exact definitions (docs/theory.md); ``collapse.theory.study``
measures the paper's claim against the synthetic contribution per generation.
"""

from .categorical import make_p0
from .gaussian import GaussianResult, simulate_gaussian
from .laws import (GOLDEN_RATIO, categorical_weighted_sum_p2, gaussian_accumulate_mean_sq_error,
                   gaussian_accumulate_moments,
                   gaussian_accumulate_mean_sq_error_fixed_variance, gaussian_accumulate_mean_sq_error_limit,
                   gaussian_accumulate_subsample_moments, gaussian_accumulate_variance_limit,
                   gaussian_accumulate_variance_ratio, gaussian_fresh_moments, gaussian_fresh_stationary_fixed_variance,
                   gaussian_fresh_stationary_mean_sq_error, gaussian_mix_moments, gaussian_replace_log_det_moments,
                   gaussian_replace_mean_sq_error, gaussian_replace_mean_sq_error_fixed_variance,
                   gaussian_replace_variance_ratio,
                   gaussian_weighted_moments, gaussian_weighted_optimal_weight, gaussian_weighted_stationary_mean_sq_error,
                   gaussian_weighted_stationary_variance_ratio, he_xu_cheng_stationary_mean_sq_error, seddik_sum_p2,
                   synthetic_share, time_to_forget, time_to_forget_diffusion, wright_fisher_absorption_time,
                   wright_fisher_fixation_probability, galton_watson_extinction, replace_extinction_generation, replace_extinction_generation_poisson,
                   replace_missing_mass, replace_missing_mass_poisson, replace_survival, zipf_missing_mass_law)
from .result import SimulationResult
from .simulator import simulate
from . import tails  # collapse.theory.tails: the tail statistics of a categorical result

__all__ = [
    "GOLDEN_RATIO", "GaussianResult", "SimulationResult", "categorical_weighted_sum_p2",
    "gaussian_accumulate_mean_sq_error", "gaussian_accumulate_mean_sq_error_fixed_variance",
    "gaussian_accumulate_moments",
    "gaussian_accumulate_mean_sq_error_limit", "gaussian_accumulate_subsample_moments",
    "gaussian_accumulate_variance_limit", "gaussian_accumulate_variance_ratio", "gaussian_fresh_moments",
    "gaussian_fresh_stationary_fixed_variance", "gaussian_fresh_stationary_mean_sq_error", "gaussian_mix_moments",
    "gaussian_replace_log_det_moments", "gaussian_replace_mean_sq_error",
    "gaussian_replace_mean_sq_error_fixed_variance",
    "gaussian_replace_variance_ratio", "gaussian_weighted_moments", "gaussian_weighted_optimal_weight",
    "gaussian_weighted_stationary_mean_sq_error", "gaussian_weighted_stationary_variance_ratio",
    "he_xu_cheng_stationary_mean_sq_error", "make_p0", "seddik_sum_p2", "simulate", "simulate_gaussian", "tails",
    "synthetic_share", "time_to_forget", "time_to_forget_diffusion", "wright_fisher_absorption_time",
    "wright_fisher_fixation_probability", "galton_watson_extinction", "replace_extinction_generation",
    "replace_extinction_generation_poisson", "replace_missing_mass", "replace_missing_mass_poisson", "replace_survival", "zipf_missing_mass_law",
]
