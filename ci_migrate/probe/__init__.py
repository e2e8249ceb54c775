"""The probe: the half of ci-migrate that runs in the app's own interpreter.

The host (``ci-migrate``, in its own environment) starts the probe with the app's Python, sends it
requests and reads its events; the probe loads the Flask app, reads the migrations and runs
alembic on the sandbox (or, for ``apply``, on the target). It imports only the standard library
and what the app already has: Flask, Flask-SQLAlchemy when used, Flask-Migrate, alembic,
SQLAlchemy and the database driver — never the host's libraries (pydantic, rich, click…). The host
copies this package alone into a private directory and runs it from there, so nothing of the
tool's own ``site-packages`` is importable here.

Protocol (version :data:`PROTOCOL`), see :mod:`.channel`:

* host → probe, on stdin, one JSON object per line: ``{"op": "load", "protocol": 1, ...}`` first,
  then one request per step (``scan``, ``replay``, ``drift``, …), and ``{"op": "exit"}``;
  ``{"op": "sandbox", ...}`` answers the probe's ``need_sandbox`` event.
* probe → host, on a private file descriptor, one JSON object per line: ``hello``, then per request
  ``progress``/``running`` events and one ``done`` (with the request's facts as plain data) or
  ``error``; ``aborted`` when the app's code ended the process (``sys.exit``) or touched a database
  that is not the sandbox; ``bye`` as the final result. A probe that ends without ``bye`` ended
  without a verdict — the host treats that as a failure, never as a pass.

Facts cross as plain data (dicts, lists, strings, numbers); judgement (rules, severities, the
verdict) happens in the host.

Supported in the app's environment: Python 3.9–3.13, SQLAlchemy 1.4–2.1, Flask 2.0–3.1,
Flask-SQLAlchemy 2.5–3.1, Alchemical or none, Flask-Migrate 2.0–4.1 (:mod:`.project` checks the floors).
"""

PROTOCOL = 1
COPY_PREFIX = "ci_migrate_probe_"  # the private copy's directory (tempfile.mkdtemp prefix) the host makes
