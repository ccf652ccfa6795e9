"""The neutral layer below search_spaces, latency_models and nas: what every command shares.

- `common.errors`: `InputError`, the base of every library exception that a user can cause
  (a bad file, a bad value); commands show it as one line and exit 2.
- `common.files`: atomic writes, the one reader of JSON and JSON lines, `check_document` for
  the kind and schema version of the project's versioned files, and `check_new_folder`.
- `common.values`: the one check that a value read from a file is a finite number.
- `common.progress`: the one progress bar of the long commands.
- `common.home`: $NAS_HOME, the user's own folder for what this machine makes.
- `common.locks`: the writer lock on a table, profile, search folder or run.
- `common.cli`: the exit-2 runner, the argument parser and argparse types (the flags several
  commands of a package share, each with its one default, are `nas.options` and
  `latency_models.options`).
- `common.stats`: Kendall's tau, the rank agreement every fidelity report gives.

It imports nothing from the project, so any package may use it.
"""
