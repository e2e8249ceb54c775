"""ci-migrate: CI checks and safe upgrades for Flask-Migrate (Alembic) migrations."""

__version__ = "0.1.0"
