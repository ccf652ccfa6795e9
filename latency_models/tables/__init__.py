"""Latency tables: block signatures (the key of every row), the table file, and other projects'
published tables read as tables."""
