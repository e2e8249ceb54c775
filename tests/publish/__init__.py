"""Tests of ci_migrate.publish: renderers, CI publishers against a local forge server."""
