"""Supernet training, accuracy estimation, evolutionary search and export, by role:

- `nas.supernet`: the elastic supernet and the plain networks it yields.
- `nas.training`: data, the compiled step, run folders, the trainer, evaluation with inherited weights.
- `nas.accuracy`: accuracy estimators and fitting them on a trained supernet.
- `nas.search`: evolution strategies and one device's search as a library (`python -m nas.search`).
- `nas.export`: a subnet out of the supernet into .tflite, Flax or a spec (`python -m nas.export`).

The commands `nas.train`, `nas.evaluate` and `nas.fit_accuracy` are the modules beside them.
"""
