// The theory simulator: the categorical and Gaussian collapse processes and, for the
// tests, their exact random variates.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "collapse/rng.hpp"
#include "collapse/simulate.hpp"
#include "collapse/simulate_gaussian.hpp"
#include "collapse/simulate_variates.hpp"
#include "numpy_interop.hpp"

namespace collapse::bindings {

namespace {

py::dict run_to_dict(CategoricalRun&& run) {
  const auto trials = static_cast<py::ssize_t>(run.trials);
  const auto cols = static_cast<py::ssize_t>(run.recorded.size());
  py::dict out;
  out["first_trial"] = run.first_trial;
  out["generation"] = to_numpy(std::vector<std::int64_t>(run.recorded.begin(), run.recorded.end()));
  out["entropy"] = to_numpy_2d(std::move(run.entropy), trials, cols);
  out["support"] = to_numpy_2d(std::move(run.support), trials, cols);
  out["sum_p2"] = to_numpy_2d(std::move(run.sum_p2), trials, cols);
  out["kl_to_truth"] = to_numpy_2d(std::move(run.kl_to_truth), trials, cols);
  out["tv_to_truth"] = to_numpy_2d(std::move(run.tv_to_truth), trials, cols);
  out["tail_mass"] = to_numpy_2d(std::move(run.tail_mass), trials, cols);
  out["first_extinction"] = to_numpy(std::move(run.first_extinction));
  out["collapse"] = to_numpy(std::move(run.collapse));
  out["collapsed_to"] = to_numpy(std::move(run.collapsed_to));
  if (!run.final_p.empty())
    out["final_p"] = to_numpy_2d(std::move(run.final_p), trials, static_cast<py::ssize_t>(run.K));
  else
    out["final_p"] = py::none();
  if (!run.fit_p.empty())
    out["fit_p"] = to_numpy_2d(std::move(run.fit_p), trials, cols * static_cast<py::ssize_t>(run.K))
                       .reshape({trials, cols, static_cast<py::ssize_t>(run.K)});
  return out;
}

py::dict gaussian_run_to_dict(GaussianRun&& run) {
  const auto trials = static_cast<py::ssize_t>(run.trials);
  const auto cols = static_cast<py::ssize_t>(run.recorded.size());
  const auto d = static_cast<py::ssize_t>(run.dim);
  py::dict out;
  out["first_trial"] = run.first_trial;
  out["generation"] = to_numpy(std::vector<std::int64_t>(run.recorded.begin(), run.recorded.end()));
  out["mean_sq_error"] = to_numpy_2d(std::move(run.mean_sq_error), trials, cols);
  out["variance_ratio"] = to_numpy_2d(std::move(run.variance_ratio), trials, cols);
  out["log_det_ratio"] = to_numpy_2d(std::move(run.log_det_ratio), trials, cols);
  out["final_mean"] = to_numpy_2d(std::move(run.final_mean), trials, d);
  out["final_cov"] = to_numpy_2d(std::move(run.final_cov), trials, d * d).reshape({trials, d, d});
  if (!run.fit_mean.empty()) {
    out["fit_mean"] = to_numpy_2d(std::move(run.fit_mean), trials, cols * d).reshape({trials, cols, d});
    out["fit_cov"] = to_numpy_2d(std::move(run.fit_cov), trials, cols * d * d).reshape({trials, cols, d, d});
  }
  return out;
}

}  // namespace

void register_simulation(py::module_& m) {
  m.def(
      "simulate_categorical",
      [](CArray<double> p0, std::int64_t sample_size, int generations, const std::string& paradigm, double alpha,
         std::uint64_t seed, std::int64_t first_trial, std::int64_t trials, int threads, double tail_fraction,
         bool keep_final_p, int record_every, const std::string& without_replacement, double weight,
         std::int64_t synthetic_per_generation, bool record_fits) {
        if (p0.ndim() != 1) throw std::invalid_argument("p0 must be a 1-d array");
        CategoricalSpec spec;
        spec.p0.assign(p0.data(), p0.data() + p0.size());
        spec.sample_size = sample_size;
        spec.generations = generations;
        spec.paradigm = parse_paradigm(paradigm);
        spec.alpha = alpha;
        spec.weight = weight;
        spec.synthetic_per_generation = synthetic_per_generation;
        spec.record_fits = record_fits;
        spec.seed = seed;
        spec.tail_fraction = tail_fraction;
        spec.record_every = record_every;
        if (without_replacement == "auto")
          spec.without_replacement = WithoutReplacement::Auto;
        else if (without_replacement == "hypergeometric")
          spec.without_replacement = WithoutReplacement::Hypergeometric;
        else if (without_replacement == "items")
          spec.without_replacement = WithoutReplacement::Items;
        else
          throw std::invalid_argument("without_replacement must be auto, hypergeometric or items");
        CategoricalRun run;
        {
          py::gil_scoped_release release;
          run = simulate_categorical(spec, first_trial, trials, threads, keep_final_p);
        }
        return run_to_dict(std::move(run));
      },
      py::arg("p0"), py::arg("N"), py::arg("generations"), py::arg("paradigm"), py::arg("alpha"), py::arg("seed"),
      py::arg("first_trial"), py::arg("trials"), py::arg("threads") = 0, py::arg("tail_fraction") = 0.1,
      py::arg("keep_final_p") = true, py::arg("record_every") = 1,
      py::arg("without_replacement") = "auto", py::arg("weight") = 0.5, py::arg("synthetic_per_generation") = -1,
      py::arg("record_fits") = false,
      "Run trials [first_trial, first_trial + trials) of the categorical collapse process. Returns a dict of\n"
      "arrays: trials x (recorded generations) metrics, the recorded generations, per-trial events, and final_p (trials x K) or None;\n"
      "with record_fits, fit_p (trials x recorded x K): every recorded generation's p.");
  m.def(
      "simulate_gaussian",
      [](CArray<double> mean, CArray<double> cov, std::int64_t sample_size, int generations,
         const std::string& paradigm, double alpha, double weight, std::uint64_t seed, std::int64_t first_trial,
         std::int64_t trials, int threads, int record_every, const std::string& draws, int ddof,
         std::int64_t synthetic_per_generation, bool record_fits) {
        if (mean.ndim() != 1) throw std::invalid_argument("mean must be a 1-d array");
        if (cov.ndim() != 2 || cov.shape(0) != mean.shape(0) || cov.shape(1) != mean.shape(0))
          throw std::invalid_argument("cov must be a dim x dim array (dim = len(mean))");
        GaussianSpec spec;
        spec.dim = static_cast<int>(std::min<py::ssize_t>(mean.shape(0), kMaxGaussianDim + 1));
        spec.mean.assign(mean.data(), mean.data() + mean.size());
        spec.cov.assign(cov.data(), cov.data() + cov.size());
        spec.sample_size = sample_size;
        spec.generations = generations;
        spec.paradigm = parse_paradigm(paradigm);
        spec.alpha = alpha;
        spec.weight = weight;
        spec.seed = seed;
        spec.record_every = record_every;
        spec.ddof = ddof;
        spec.synthetic_per_generation = synthetic_per_generation;
        spec.record_fits = record_fits;
        if (draws == "statistics")
          spec.draws = GaussianDraws::Statistics;
        else if (draws == "samples")
          spec.draws = GaussianDraws::Samples;
        else
          throw std::invalid_argument("draws must be statistics or samples");
        GaussianRun run;
        {
          py::gil_scoped_release release;
          run = simulate_gaussian(spec, first_trial, trials, threads);
        }
        return gaussian_run_to_dict(std::move(run));
      },
      py::arg("mean"), py::arg("cov"), py::arg("N"), py::arg("generations"), py::arg("paradigm"), py::arg("alpha"),
      py::arg("weight"), py::arg("seed"), py::arg("first_trial"), py::arg("trials"), py::arg("threads") = 0,
      py::arg("record_every") = 1, py::arg("draws") = "statistics", py::arg("ddof") = 0,
      py::arg("synthetic_per_generation") = -1, py::arg("record_fits") = false,
      "Run trials [first_trial, first_trial + trials) of the Gaussian collapse process (fits of N(mean, cov):\n"
      "covariance divisor n - ddof; synthetic_per_generation m draws from the model per generation, -1: N).\n"
      "Returns a dict: trials x (recorded generations) mean_sq_error, variance_ratio, log_det_ratio, the recorded\n"
      "generations, and generation G's final_mean (trials x dim) and final_cov (trials x dim x dim); with\n"
      "record_fits, every recorded generation's fit_mean (trials x recorded x dim) and fit_cov (... x dim x dim).");
  m.def("simulation_tail_set",
        [](CArray<double> p0, double tail_fraction) {
          std::vector<double> p(p0.data(), p0.data() + p0.size());
          return to_numpy(tail_set(p, tail_fraction));
        },
        py::arg("p0"), py::arg("tail_fraction"), "Outcome ids of the tail set used by tail_mass.");
  // Exact variates, exposed for their distribution tests.
  m.def(
      "simulation_binomial",
      [](std::uint64_t seed, std::int64_t n, double p, std::int64_t count) {
        std::vector<std::int64_t> out(static_cast<std::size_t>(count));
        Philox rng(seed, 0);
        for (auto& x : out) x = variates::binomial(rng, n, p);
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("n"), py::arg("p"), py::arg("count"));
  m.def(
      "simulation_hypergeometric",
      [](std::uint64_t seed, std::int64_t draws, std::int64_t successes, std::int64_t population, std::int64_t count) {
        std::vector<std::int64_t> out(static_cast<std::size_t>(count));
        Philox rng(seed, 0);
        for (auto& x : out) x = variates::hypergeometric(rng, draws, successes, population);
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("draws"), py::arg("successes"), py::arg("population"), py::arg("count"));
  m.def(
      "simulation_normal",
      [](std::uint64_t seed, std::int64_t count) {
        if (count < 0 || count > (std::int64_t{1} << 30)) throw std::invalid_argument("count must lie in [0, 2^30]");
        std::vector<double> out(static_cast<std::size_t>(count));
        Philox rng(seed, 0);
        for (auto& x : out) x = variates::standard_normal(rng);
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("count"));
  m.def(
      "simulation_gamma",
      [](std::uint64_t seed, double shape, std::int64_t count) {
        if (count < 0 || count > (std::int64_t{1} << 30)) throw std::invalid_argument("count must lie in [0, 2^30]");
        std::vector<double> out(static_cast<std::size_t>(count));
        Philox rng(seed, 0);
        for (auto& x : out) x = variates::gamma(rng, shape);
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("shape"), py::arg("count"));
  m.def(
      "simulation_alias",
      [](std::uint64_t seed, CArray<double> weights, std::int64_t count) {
        variates::AliasTable table(std::vector<double>(weights.data(), weights.data() + weights.size()));
        std::vector<std::int64_t> out(static_cast<std::size_t>(count));
        Philox rng(seed, 0);
        for (auto& x : out) x = static_cast<std::int64_t>(table.draw(rng));
        return to_numpy(std::move(out));
      },
      py::arg("seed"), py::arg("weights"), py::arg("count"));
}

}  // namespace collapse::bindings
