"""Supernet training, accuracy estimation, evolutionary search, export and the command lines."""
