"""Persistence: SQLModel tables, encryption at rest, repositories, migrations."""
