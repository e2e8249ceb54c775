"""Benchmark: ``ci-migrate check`` against the plain Flask-Migrate pipeline a user would run instead.

    python bench/run.py            # N = 10, 100, 500 and the fixture apps, 5 repeats (~10 min on 2 cores)
    python bench/run.py --quick    # N = 10, 100 and the fixture apps, 3 repeats (~4 min)

Results, and what they mean: docs/performance.md.

Per app (synthetic apps with N revisions from bench/synth.py, and the fixture apps of tests/apps/),
each measured as separate processes, interleaved, ``--repeats`` times; medians are reported:

* A  ``flask db upgrade`` on a fresh PostgreSQL database, then ``flask db check`` (the baseline);
* B  ``ci-migrate check --sandbox <server>`` (graph, plan, lint, replay, drift; creates and drops
     its own sandbox database);
* L  lower bound: one process that imports the app (flask's ``ScriptInfo.load_app``) + ``psql -f``
     of the full offline SQL (``flask db upgrade --sql``, made once, untimed) on a fresh database;
* C  ``ci-migrate --version`` and ``ci-migrate check --only graph``;
* PR (``--pr``) ``ci-migrate check --base HEAD~1`` on pull-request repositories, cold and warm
     base-snapshot cache (bench/pr.py).

Databases for A and L are created before the timer starts (CI provides the database); B's sandbox
creation is part of B. ``__pycache__`` of the app is removed before every timed run, as in a fresh
CI checkout. Peak RSS is ``ru_maxrss`` of each child (``os.wait4``); for A and L the larger of
their processes. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from pgserver import Server
from pr import drop_templates, fixture_pr, run_pr
from pr import table as pr_table
from pr import targets as pr_targets
from synth import IMPORT_STRING, make_app

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PR_PENDING = 10  # revisions a synthetic pull request adds
LOAD_APP = "import sys; from flask.cli import ScriptInfo; ScriptInfo(app_import_path=sys.argv[1]).load_app()"
# (name, import string, env vars that each get a database, expected drift); the apps of tests/apps/
# whose history `flask db upgrade` can replay (the others are broken on purpose).
FIXTURES = (
    ("clean", "blogapp:create_app('testing')", ("DATABASE_URL",), False),
    ("branch_merge", "app:app", ("DATABASE_URL",), False),
    ("empty_message", "app:app", ("DATABASE_URL",), False),
    ("multidb", "app:app", ("DATABASE_URL", "AUDIT_DATABASE_URL"), False),
    ("tutorial_drift", "app:app", ("DATABASE_URL",), True),
)


@dataclass
class App:
    name: str
    dir: Path
    import_string: str
    binds: tuple[str, ...] = ("DATABASE_URL",)
    drift: bool = False  # `flask db check` and `ci-migrate check` are expected to exit 1
    n: int | None = None  # synthetic: number of revisions
    pr: bool = False  # a pull-request run: --base HEAD~1 (plan, lint, locks, round trip on the pending revisions)
    offline: dict[str, Path] = field(default_factory=dict)  # env var -> offline SQL file
    samples: dict[str, list[dict]] = field(default_factory=dict)
    cache: Path | None = None  # PR apps: the cache directory of the latest cold run
    cold_findings: list = field(default_factory=list)  # PR apps: what the warm runs must find too

    @property
    def revisions(self) -> int:
        return len(list((self.dir / "migrations" / "versions").glob("*.py")))


class BenchError(RuntimeError):
    pass


def measure(cmd: list[str], cwd: Path, env: dict[str, str], expect: tuple[int, ...] = (0,)) -> dict:
    """Run ``cmd``; return ``{"s": wall seconds, "cpu_s": its user+system CPU seconds, "rss_mb": peak RSS,
    "out": stdout}``.

    Raises BenchError (with the output) when the exit code is not in ``expect``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code not in expect:
        raise BenchError(f"{' '.join(cmd)} (in {cwd}) exited {code}\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return {"s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "out": stdout}


def clean_tree(path: Path) -> None:
    """Remove ``__pycache__`` under ``path``: each run starts like a fresh CI checkout."""
    for cache in list(path.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def child_env(app: App, urls: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "CI_MIGRATE_", "GITHUB_", "GITLAB_", "INPUT_")) and k not in ("CI", "DATABASE_URL")}
    env.update(urls, FLASK_APP=app.import_string)
    return env


class Bench:
    def __init__(self, server: Server, workdir: Path):
        self.server, self.workdir = server, workdir
        self.flask, self.cim = str(BIN / "flask"), str(BIN / "ci-migrate")

    def fresh_dbs(self, app: App) -> dict[str, str]:
        names = {var: f"cimbench_{secrets.token_hex(4)}" for var in app.binds}
        for name in names.values():
            self.server.create(name)
        return names

    def drop(self, names: dict[str, str]) -> None:
        for name in names.values():
            self.server.drop(name)

    def prepare(self, app: App) -> None:
        """Offline SQL for L (``flask db upgrade --sql``; multidb writes ``<bind>.sql`` files)."""
        env = child_env(app, {var: self.server.db_url("never_connected") for var in app.binds})
        run = measure([self.flask, "db", "upgrade", "--sql"], app.dir, env)
        sqldir = self.workdir / f"{app.name}-{app.revisions}-sql"
        sqldir.mkdir()
        if len(app.binds) == 1:
            (sqldir / "default.sql").write_text(run["out"], encoding="utf-8")
            app.offline = {app.binds[0]: sqldir / "default.sql"}
        else:  # flask-multidb env.py: ".sql" (default bind) and "audit.sql" in the CWD
            for var, fname, dest in zip(app.binds, (".sql", "audit.sql"), ("default.sql", "audit.sql")):
                shutil.move(app.dir / fname, sqldir / dest)
                app.offline[var] = sqldir / dest

    def run_a(self, app: App) -> dict:
        names = self.fresh_dbs(app)
        try:
            env = child_env(app, {var: self.server.db_url(n) for var, n in names.items()})
            clean_tree(app.dir)
            up = measure([self.flask, "db", "upgrade"], app.dir, env)
            check = measure([self.flask, "db", "check"], app.dir, env, expect=(1,) if app.drift else (0,))
        finally:
            self.drop(names)
        return {"s": up["s"] + check["s"], "cpu_s": up["cpu_s"] + check["cpu_s"], "rss_mb": max(up["rss_mb"], check["rss_mb"]),
                "upgrade_s": up["s"], "check_s": check["s"]}

    def run_b(self, app: App, profile: Path | None = None, code: str | None = None) -> dict:
        env = child_env(app, {var: self.server.db_url("never_connected") for var in app.binds})
        if code:  # another copy of the ci_migrate package (e.g. before an optimization) shadows the installed one
            env["PYTHONPATH"] = code
        report = self.workdir / "report.json"
        clean_tree(app.dir)
        cmd = [self.cim, "check", "--sandbox", self.server.url, "-o", str(report), *(["--base", "HEAD~1"] if app.pr else [])]
        if profile:
            cmd = [sys.executable, "-m", "pyinstrument", "-o", str(profile), "-m", "ci_migrate", *cmd[1:]]
        run = measure(cmd, app.dir, env, expect=(0, 1) if app.pr else (1,) if app.drift else (0,))
        data = json.loads(report.read_text(encoding="utf-8"))
        crashed = [c["name"] for c in data["checks"] if c["status"] == "error"]
        if crashed:
            raise BenchError(f"ci-migrate check crashed in {crashed} on {app.dir}")
        checks = {c["name"]: c.get("duration_s") or 0.0 for c in data["checks"]}
        return {"s": run["s"], "cpu_s": run["cpu_s"], "rss_mb": run["rss_mb"], "pipeline_s": data["duration_s"], **{f"{k}_s": v for k, v in checks.items()}}

    def run_l(self, app: App) -> dict:
        names = self.fresh_dbs(app)
        try:
            env = child_env(app, {var: self.server.db_url(n) for var, n in names.items()})
            clean_tree(app.dir)
            imp = measure([sys.executable, "-c", LOAD_APP, app.import_string], app.dir, env)
            sql = [measure([*self.server.psql(names[var]), "-f", str(path)], app.dir, env) for var, path in app.offline.items()]
        finally:
            self.drop(names)
        return {"s": imp["s"] + sum(r["s"] for r in sql), "cpu_s": imp["cpu_s"] + sum(r["cpu_s"] for r in sql),
                "rss_mb": imp["rss_mb"],
                "import_s": imp["s"], "psql_s": sum(r["s"] for r in sql)}

    def run_graph(self, app: App) -> dict:
        env = child_env(app, {var: self.server.db_url("never_connected") for var in app.binds})
        clean_tree(app.dir)
        run = measure([self.cim, "check", "--only", "graph"], app.dir, env, expect=(0, 1))
        return {"s": run["s"], "cpu_s": run["cpu_s"], "rss_mb": run["rss_mb"]}

    def run_version(self) -> dict:
        run = measure([self.cim, "--version"], self.workdir, child_env(App("v", self.workdir, ""), {}))
        return {"s": run["s"], "cpu_s": run["cpu_s"], "rss_mb": run["rss_mb"]}


def build_apps(workdir: Path, sizes: list[int], fixtures: bool, pr: bool = False) -> list[App]:
    apps = []
    for n in sizes:
        apps.append(App("synthetic", make_app(workdir / f"synth{n}", n, seed=n), IMPORT_STRING, n=n))
    for n in (n for n in sizes if pr and n >= 100):
        apps.append(App("synthetic PR", make_app(workdir / f"pr{n}", n, seed=n, pending=PR_PENDING), IMPORT_STRING,
                        n=n, pr=True))
    for name, import_string, binds, drift in FIXTURES if fixtures else ():
        dest = workdir / name
        shutil.copytree(REPO / "tests" / "apps" / name, dest, ignore=shutil.ignore_patterns("__pycache__", "instance"))
        apps.append(App(name, dest, import_string, binds, drift))
    for name, import_string, binds, drift in FIXTURES if fixtures and pr else ():
        dest = fixture_pr(REPO / "tests" / "apps" / name, workdir / f"pr-{name}")
        apps.append(App(f"{name} PR", dest, import_string, binds, drift, pr=True))
    return apps


def med(samples: list[dict], key: str) -> float:
    values = [s[key] for s in samples if key in s]
    return statistics.median(values) if values else float("nan")


def report(apps: list[App], version: list[dict], meta: dict) -> str:
    lines = [(f"ci-migrate benchmark — {meta['server']}; {meta['cpus']} CPUs; load average {meta['load_before']} "
             f"before, {meta['load_after']} after, 1-min load during the run {meta['load_during']}; "
             f"{meta['repeats']} repeats, medians; wall time in seconds"), ""]
    everything, apps = apps, [a for a in apps if not a.pr]
    head = "| app | N | A: upgrade+check | B: ci-migrate check | L: lower bound | B/A | B/L | graph-only | RSS A | RSS B | RSS L |"
    lines += [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for app in apps:
        a, b, lo, g = (med(app.samples.get(k, []), "s") for k in ("A", "B", "L", "graph"))
        rss = [med(app.samples.get(k, []), "rss_mb") for k in ("A", "B", "L")]
        lines.append(f"| {app.name} | {app.revisions} | {a:.2f} | {b:.2f} | {lo:.2f} | {b / a:.2f} | {b / lo:.2f} | "
                     f"{g:.2f} | {rss[0]:.0f} MB | {rss[1]:.0f} MB | {rss[2]:.0f} MB |")
    lines += ["", f"`ci-migrate --version`: {med(version, 's'):.3f} s (RSS {med(version, 'rss_mb'):.0f} MB)", ""]
    lines += [("Client CPU time (user+system of our processes, medians, s; the database server's work is not in it, "
               "and it moves less than wall time when the machine is busy)"), "",
              "| app | N | A | B | L | B/A | B/L | graph-only |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for app in apps:
        a, b, lo, g = (med(app.samples.get(k, []), "cpu_s") for k in ("A", "B", "L", "graph"))
        lines.append(f"| {app.name} | {app.revisions} | {a:.2f} | {b:.2f} | {lo:.2f} | {b / a:.2f} | {b / lo:.2f} | {g:.2f} |")
    lines.append("")
    keys = ("graph_s", "replay_s", "drift_s")
    lines += ["Where B's time goes (medians, s): process = interpreter + imports + app import + sandbox + checks + publishing",
              "", "| app | N | process | pipeline | graph | replay | drift | A: upgrade | A: check | L: import | L: psql |",
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for app in apps:
        b, a, lo = app.samples.get("B", []), app.samples.get("A", []), app.samples.get("L", [])
        cells = [med(b, "s"), med(b, "pipeline_s"), *(med(b, k) for k in keys), med(a, "upgrade_s"), med(a, "check_s"),
                 med(lo, "import_s"), med(lo, "psql_s")]
        lines.append(f"| {app.name} | {app.revisions} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    synth = sorted((a for a in apps if a.n), key=lambda a: a.n)
    if len(synth) >= 2:
        lines += ["", "Scaling (synthetic apps): marginal cost per revision, ms"]
        for kind in ("A", "B", "L", "graph"):
            steps = []
            for lo_app, hi_app in itertools.pairwise(synth):
                per = (med(hi_app.samples.get(kind, []), "s") - med(lo_app.samples.get(kind, []), "s")) / (hi_app.n - lo_app.n) * 1000
                steps.append(f"N {lo_app.n}→{hi_app.n}: {per:.1f}")
            lines.append(f"- {kind}: " + "; ".join(steps))
    prs = [a for a in everything if a.pr]
    full = {a.n: med(a.samples.get("B", []), "s") for a in apps if a.n}
    if prs:
        lines += pr_table(prs, full, med)
    if any(app.samples.get("B0") for app in everything):
        lines += ["", "B before → after the change under test (medians; wall s, client CPU s, peak RSS MB)", "",
                  "| app | N | wall before | wall after | CPU before | CPU after | RSS before | RSS after |",
                  "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for app in everything:
            b0, b = app.samples.get("B0", []), app.samples.get("B", [])
            lines.append(f"| {app.name} | {app.revisions} | {med(b0, 's'):.2f} | {med(b, 's'):.2f} | {med(b0, 'cpu_s'):.2f} | "
                         f"{med(b, 'cpu_s'):.2f} | {med(b0, 'rss_mb'):.0f} | {med(b, 'rss_mb'):.0f} |")
    lines += ["", *targets(apps, version), *pr_targets(prs, full, med)]
    return "\n".join(lines)


def targets(apps: list[App], version: list[dict]) -> list[str]:
    ratios_a = [med(a.samples.get("B", []), "s") / med(a.samples.get("A", []), "s") for a in apps]
    ratios_l = [med(a.samples.get("B", []), "s") / med(a.samples.get("L", []), "s") for a in apps]
    out = ["Targets:",
           f"- B/A ≤ 0.6 on every app: worst {max(ratios_a):.2f} — {'holds' if max(ratios_a) <= 0.6 else 'MISSED'}",
           f"- B/L ≤ 1.3: worst {max(ratios_l):.2f} — {'holds' if max(ratios_l) <= 1.3 else 'MISSED'}",
           f"- ci-migrate --version ≤ 0.15 s: {med(version, 's'):.3f} — {'holds' if med(version, 's') <= 0.15 else 'MISSED'}"]
    big = [a for a in apps if a.n and a.n >= 500]
    if big:
        g = med(big[0].samples.get("graph", []), "s")
        out.append(f"- graph-only check of {big[0].n} revisions ≤ 1 s: {g:.2f} — {'holds' if g <= 1.0 else 'MISSED'}")
    synth = sorted((a for a in apps if a.n), key=lambda a: a.n)
    if len(synth) >= 3:
        per = [(med(h.samples.get("B", []), "s") - med(lo.samples.get("B", []), "s")) / (h.n - lo.n) for lo, h in itertools.pairwise(synth)]
        out.append(f"- B grows linearly in N: marginal cost {per[0] * 1000:.1f} → {per[-1] * 1000:.1f} ms/revision — "
                   f"{'holds' if per[-1] <= 1.5 * per[0] else 'MISSED'} (last step ≤ 1.5 × first)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N ≤ 100 and 3 repeats (a few minutes)")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 5; --quick: 3)")
    parser.add_argument("--sizes", help="comma-separated N for the synthetic apps (default 10,100,500; --quick: 10,100)")
    parser.add_argument("--no-fixtures", action="store_true", help="only the synthetic apps")
    parser.add_argument("--pr", action="store_true", help=f"also pull-request runs, cold and warm cache: --base HEAD~1 "
                        f"with {PR_PENDING} pending revisions (N ≥ 100) and on the fixture apps (their head revisions)")
    parser.add_argument("--kinds", default="A,B,L,graph", help="what to measure (default A,B,L,graph)")
    parser.add_argument("--before", metavar="DIR", help="also measure B with the ci_migrate package in DIR (a copy "
                        "of the code before a change; put on PYTHONPATH) as column 'B before'")
    parser.add_argument("--server", metavar="URL", help="use this PostgreSQL server (trust auth) instead of a private "
                        "cluster started for the run, e.g. postgresql://postgres@127.0.0.1:5432/")
    parser.add_argument("--json", metavar="PATH", help="also write every sample as JSON")
    parser.add_argument("--profile", metavar="DIR", help="also run B once per synthetic app under pyinstrument")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    kinds = set(args.kinds.split(","))
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([10, 100] if args.quick else [10, 100, 500])
    server = Server.from_url(args.server) if args.server else Server.private()
    workdir = Path(tempfile.mkdtemp(prefix="cimbench_"))
    try:
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        apps = build_apps(workdir, sizes, not args.no_fixtures, args.pr)
        bench = Bench(server, workdir)
        for app in apps:
            if not app.pr:
                bench.prepare(app)
        version: list[dict] = []
        loads = []
        for rep in range(repeats):
            version.append(bench.run_version())
            for app in apps:
                loads.append(os.getloadavg()[0])
                before = (("B0", lambda a: bench.run_b(a, code=args.before)),) if args.before else ()
                pr_runs = (("PRcold", lambda a: run_pr(bench, a, warm=False)), ("PRwarm", lambda a: run_pr(bench, a, warm=True)))
                for kind, fn in (("A", bench.run_a), ("B", bench.run_b), *before, ("L", bench.run_l), ("graph", bench.run_graph),
                                 *pr_runs):
                    if kind in ("PRcold", "PRwarm") if app.pr else (kind in kinds or kind == "B0"):
                        app.samples.setdefault(kind, []).append(fn(app))
                last = ", ".join(f"{k} {app.samples[k][-1]['s']:.2f} s" for k in app.samples)
                print(f"repeat {rep + 1}/{repeats}: {app.name} N={app.revisions}: {last}", file=sys.stderr)
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for app in (a for a in apps if a.n):
                bench.run_b(app, profile=Path(args.profile).resolve() / f"B-synthetic-{app.n}.txt")
        server_version = server.sql("SHOW server_version").strip()
        meta = {"server": f"PostgreSQL {server_version} ({'private cluster' if not args.server else args.server})",
                "cpus": os.cpu_count(), "load_before": load_before, "repeats": repeats,
                "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                "load_during": f"{min(loads):.2f}–{max(loads):.2f} (median {statistics.median(loads):.2f})"}
        print(report(apps, version, meta))
        if args.json:
            Path(args.json).write_text(json.dumps({"meta": meta, "version": version, "apps": [
                {"name": a.name, "n": a.revisions, "samples": a.samples} for a in apps]}, indent=1), encoding="utf-8")
        drop_templates(server)  # the PR runs' base snapshots
        left = server.leftovers("cimbench_") + server.leftovers("ci_migrate_")
        if left:
            print(f"warning: databases left on the server: {left}", file=sys.stderr)
        return 0
    except (BenchError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
