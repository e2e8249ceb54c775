"""Import the app's libraries while the host is still getting ready.

The host may start the probe before it has loaded its settings (``ci_migrate.early_probe``). Until
the first request arrives, the probe imports the libraries that loading a Flask-Migrate app imports
anyway — from the app's own environment, as the app would — so that ``load`` only has the app's own
modules left to import. A library the app's environment lacks is skipped (the app may not use it:
Flask-SQLAlchemy is optional); nothing else is imported, and nothing is configured or connected.
"""

from __future__ import annotations

import importlib
from typing import Callable

# In the order ``load`` needs them: SQLAlchemy under Flask-SQLAlchemy, Flask under both extensions.
LIBRARIES = ("sqlalchemy", "sqlalchemy.orm", "flask", "flask_sqlalchemy", "alembic.command", "alembic.autogenerate",
             "flask_migrate")


def warm_up(waiting: Callable[[], bool]) -> list[str]:
    """Import :data:`LIBRARIES` one by one until ``waiting()`` says a request has come; returns the
    names imported. An import that fails is skipped (the app's ``load`` meets it again if it matters)."""
    done = []
    for name in LIBRARIES:
        if waiting():
            break
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - not installed, or broken: ``load`` reports what the app needs
            continue
        done.append(name)
    return done
