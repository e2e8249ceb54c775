"""Packaging beyond pyproject.toml: the rule pages of docs/rules/ ship as the ``ci_migrate.rules`` package.

docs/rules/ stays the one source of the pages (the repository links to them); setuptools maps it
to ``ci_migrate/rules/`` in wheels and sdists, and an editable install points that package at
docs/rules/ itself, so ``ci-migrate explain CM504`` reads the same file either way.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["ci_migrate", "ci_migrate.*"]), "ci_migrate.rules"],
    package_dir={"ci_migrate.rules": "docs/rules"},
)
