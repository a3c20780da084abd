"""Benchmarks: ``make bench`` (``python -m bench``) prints figures beside same-run baselines."""
