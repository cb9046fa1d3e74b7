"""The recursive-training experiment: config, real data, paradigms, filters, metrics, the loop, run directories, plots.

The package imports none of its modules itself: the model families (collapse.ngram.family,
collapse.transformer.family, a user's own) import its protocol module, experiment.family,
which sits below them, while the loop above imports the families. run_experiment is
collapse.run_experiment (collapse.experiment.loop).
"""
