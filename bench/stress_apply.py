"""Run every ``apply`` fault scenario many times in a row on the local PostgreSQL and MariaDB.

    .venv/bin/python bench/stress_apply.py            # 10 rounds of every scenario
    .venv/bin/python bench/stress_apply.py -n 20 -k kill -k concurrent
    .venv/bin/python bench/stress_apply.py -n 20 -k "kill -9"   # the interrupted-revision counts of docs/apply.md

The scenarios are the ones tests/test_apply_faults.py and tests/test_apply.py run once
(tests/apply_support.py): each makes its own ``ci_apply_<random>`` databases, runs the real CLI,
asserts on the reports *and* on the databases (the version table and the schema: nothing lost,
nothing applied twice), and drops the databases. Prints a Markdown table (docs/apply.md keeps
the last result), then what each scenario that reports an outcome saw (the ``kill -9`` ones: what
the kill left in the database); exits 1 when any run failed.

``kill -9 inside a revision`` stops the run at each of the 8 points between the 7 operations of
tests/apps/interrupted_apply's middle revision in turn (round n: after n mod 8 operations).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import apply_support as s  # noqa: E402
from support import MYSQL_SERVER, PG_SERVER, ensure_server  # noqa: E402

PG, MY = "postgresql", "mysql"


def _kill_points() -> Iterator[int]:
    return itertools.cycle(range(s.INTERRUPTED_OPS + 1))


_PG_POINTS, _MY_POINTS = _kill_points(), _kill_points()
SCENARIOS: list[tuple[str, str, Callable[[Path], object]]] = [
    ("kill mid-revision", PG, lambda d: s.scenario_kill_mid_revision(PG, d)),
    ("kill mid-revision", MY, lambda d: s.scenario_kill_mid_revision(MY, d)),
    ("kill after DDL (half-applied)", MY, s.scenario_half_applied),
    ("kill -9 inside a revision, rerun, resume", PG,
     lambda d: s.scenario_killed_inside_a_revision(PG, d, next(_PG_POINTS))),
    ("kill -9 inside a revision, rerun, resume", MY,
     lambda d: s.scenario_killed_inside_a_revision(MY, d, next(_MY_POINTS))),
    ("4 concurrent applies", PG, lambda d: s.scenario_concurrent(PG, d)),
    ("4 concurrent applies", MY, lambda d: s.scenario_concurrent(MY, d)),
    ("lock timeout, retries", PG, lambda d: s.scenario_lock_timeout(PG, d)),
    ("lock timeout, retries", MY, lambda d: s.scenario_lock_timeout(MY, d)),
    ("multidb, lock per bind", PG, lambda d: s.scenario_multidb(PG, d)),
    ("multidb, lock per bind", MY, lambda d: s.scenario_multidb(MY, d)),
    ("unknown revision", PG, lambda d: s.scenario_unknown_revision(PG, d)),
    ("unknown revision", MY, lambda d: s.scenario_unknown_revision(MY, d)),
    ("database ahead of the code", PG, lambda d: s.scenario_ahead_of_the_code(PG, d)),
    ("database ahead of the code", MY, lambda d: s.scenario_ahead_of_the_code(MY, d)),
    ("multiple heads", PG, lambda d: s.scenario_multiple_heads(PG, d)),
    ("multiple heads", MY, lambda d: s.scenario_multiple_heads(MY, d)),
    ("unreachable target", PG, s.scenario_unreachable),
    ("wrong password", MY, s.scenario_wrong_password),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=10, help="runs of each scenario (default 10)")
    parser.add_argument("-k", "--only", action="append", default=[], help="run scenarios whose name contains this")
    args = parser.parse_args()
    ensure_server(PG_SERVER, ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"])
    ensure_server(MYSQL_SERVER, ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec",
                                 "/usr/sbin/mariadbd"])
    chosen = [sc for sc in SCENARIOS if not args.only or any(k in sc[0] for k in args.only)]
    rows, failed = [], 0
    seen: dict[tuple[str, str], collections.Counter[str]] = {}
    started = time.monotonic()
    for name, kind, scenario in chosen:
        times, errors = [], []
        for round_ in range(1, args.rounds + 1):
            outcome = "ok"
            with tempfile.TemporaryDirectory(prefix="ci_apply_stress_") as tmp:
                t0 = time.monotonic()
                try:
                    said = scenario(Path(tmp))
                    if isinstance(said, str):
                        seen.setdefault((name, kind), collections.Counter())[said] += 1
                        outcome = f"ok, {said}"
                except Exception:  # noqa: BLE001 - count it, show it, go on
                    errors.append(f"{name} [{kind}] round {round_}: {traceback.format_exc()}")
                    outcome = "FAILED"
                times.append(time.monotonic() - t0)
            print(f"{name} [{kind}] round {round_}/{args.rounds}: {outcome} ({times[-1]:.1f} s)", file=sys.stderr,
                  flush=True)
        failed += len(errors)
        rows.append((name, kind, args.rounds - len(errors), args.rounds, statistics.median(times), max(times)))
        for error in errors:
            print(error, file=sys.stderr)
    print("\n| scenario | server | passed | median | slowest |\n|---|---|---|---|---|")
    for name, kind, ok, total, median, slowest in rows:
        server = "PostgreSQL 15" if kind == PG else "MariaDB 10.11"
        print(f"| {name} | {server} | {ok}/{total} | {median:.1f} s | {slowest:.1f} s |")
    print(f"\n{sum(r[2] for r in rows)} of {sum(r[3] for r in rows)} runs passed in "
          f"{(time.monotonic() - started) / 60:.1f} min")
    for (name, kind), counts in seen.items():
        server = "PostgreSQL 15" if kind == PG else "MariaDB 10.11"
        print(f"\n{name} [{server}]: " + ", ".join(f"{what}: {n}" for what, n in sorted(counts.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
