"""Latency-constrained search: evolution strategies (aging evolution, NSGA-II), the per-device
search as a library (settings in, a result that writes arch.json, pareto.json and the report
out), and the report. `python -m nas.search` is this package's `__main__`."""
