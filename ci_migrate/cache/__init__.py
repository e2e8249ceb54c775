"""Cached base snapshots: a pull request's base history, replayed once and kept.

A pull request's base branch is the same on every push, so replaying its 490 revisions on every
push is wasted CI time. A PR run that replays the base takes a snapshot of the sandbox once it
stands at the base's heads (schema + version table, every bind) and keeps it in the cache
directory (:mod:`.location`), keyed by everything that shapes it (:mod:`.key`). The next run with
the same key restores the snapshot into its sandbox and replays only the pending revisions; the
lock trace and the round trip get their databases from it too.

How a snapshot is kept and restored, per sandbox dialect (:mod:`.dialects`):

* PostgreSQL: a template database on the sandbox server (``CREATE DATABASE … TEMPLATE``), and a
  ``pg_dump`` of it in the cache directory when ``pg_dump`` is installed; restored from the template
  while it is still on the server, else from the dump with ``psql``.
* SQLite: a copy of the database files.
* MySQL/MariaDB: a ``mysqldump`` of the databases, restored with ``mysql`` (both must be installed).

Any doubt — no entry for this key, a corrupt entry, a failed restore — means a full replay, said in
one line (a report note and the replay facts). The cache never fails a run: a problem writing it
is a note too. The orchestration lives in :mod:`.base`.
"""
