"""Alembic environment and revisions of the qhw tracking database."""
