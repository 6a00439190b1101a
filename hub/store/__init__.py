"""Persistence: the SQLite database (state and the embedded log in one file) and its tables."""
