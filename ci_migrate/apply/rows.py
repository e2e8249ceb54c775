"""How many rows the tables a deploy touches hold: the target's own statistics, never a scan.

PostgreSQL ``pg_class.reltuples`` (the planner's estimate; -1 before the first ANALYZE on
PostgreSQL 14+, shown as unknown), MySQL/MariaDB ``information_schema.tables.TABLE_ROWS`` (InnoDB's
estimate), SQLite ``COUNT(*)`` (it keeps no statistics; its databases are small). Read with the
host's own driver in a read-only session.
"""

from __future__ import annotations

from typing import Any


def row_counts(target: Any, tables: list[str]) -> dict[str, int | None]:
    """``{table: rows or None (unknown)}`` for the default bind of ``target`` (a TargetUrls)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if not tables:
        return {}
    url = target.urls[None]
    backend = url.get_backend_name()
    engine = sa.create_engine(url, poolclass=NullPool)
    counts: dict[str, int | None] = {t: None for t in tables}
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                rows = conn.execute(sa.text(
                    "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(current_schemas(false)) "
                    "AND lower(c.relname) = ANY(:names)"), {"names": [t.lower() for t in tables]})
                for name, estimate in rows:
                    counts[name.lower()] = int(estimate) if estimate is not None and estimate >= 0 else None
            elif backend in ("mysql", "mariadb"):
                rows = conn.execute(sa.text(
                    "SELECT LOWER(TABLE_NAME), TABLE_ROWS FROM information_schema.tables "
                    "WHERE TABLE_SCHEMA = DATABASE()"))
                for name, estimate in rows:
                    if name in counts:
                        counts[name] = int(estimate) if estimate is not None else None
            elif backend == "sqlite":
                present = {n.lower() for n in sa.inspect(conn).get_table_names()}
                for table in tables:
                    if table.lower() in present:
                        quoted = conn.dialect.identifier_preparer.quote(table)
                        counts[table] = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quoted}").scalar() or 0)
    except sa.exc.DBAPIError:
        return counts
    finally:
        engine.dispose()
    return counts
