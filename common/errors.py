"""The exception every user-caused error derives from."""


class InputError(ValueError):
    """Input a user can fix (a damaged or wrong file, an out-of-range value). Libraries raise
    their own subclasses; `common.cli.run` reports any of them as one line and exit code 2."""
