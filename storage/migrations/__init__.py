"""Alembic migrations for moahook's schema (applied by `Database.migrate`)."""
