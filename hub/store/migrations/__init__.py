"""Alembic migrations: the one schema history for SQLite and PostgreSQL."""
