"""Latency-constrained search: evolution strategies (aging evolution, NSGA-II), one device's
search as a library by role (settings, preparation, the run), the record it produces (arch.json
and pareto.json are its dicts) and the report. `python -m nas.search` is this package's
`__main__`."""
