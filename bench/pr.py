"""Pull-request runs for bench/run.py: cold and warm base-snapshot cache.

A PR app is a git repository whose last commit adds revisions (``--base HEAD~1``): the synthetic
apps with 10 pending revisions (bench/synth.py), and the fixture apps of tests/apps/ with their head
revision(s) pending. Each repeat runs ``ci-migrate check --base HEAD~1`` twice:

* **cold**: an empty cache directory and no template database of an earlier run on the server: the
  base is replayed in full and its snapshot built (PostgreSQL: a template database and a pg_dump);
* **warm**: the cache directory the cold run just filled: the base is restored from the snapshot
  and only the pending revisions replay.

Both reports must have the same findings, else the benchmark stops.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: The sandbox prefix of the benchmark's runs: its template databases are ``<prefix>_base_…``.
PREFIX = "ci_migrate_bench"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args], cwd=cwd,
                   check=True, capture_output=True)


def fixture_pr(source: Path, dest: Path) -> Path:
    """Copy a tests/apps/ app to ``dest`` as a git repository of two commits: the base without its
    head revision(s), then the pull request adding them."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "instance", "*.db"))
    versions = dest / "migrations" / "versions"
    texts = {p: p.read_text(encoding="utf-8") for p in sorted(versions.glob("*.py"))}
    ids = {p: re.search(r"^revision\s*(?::\s*str)?\s*=\s*['\"](\w+)['\"]", t, re.MULTILINE)[1] for p, t in texts.items()}
    parents = "".join(re.search(r"^down_revision[^=]*=(.*)$", t, re.MULTILINE)[1] for t in texts.values())
    heads = [p for p in texts if f"'{ids[p]}'" not in parents and f'"{ids[p]}"' not in parents]
    aside = dest.parent / f"{dest.name}-aside"
    aside.mkdir()
    for path in heads:
        path.rename(aside / path.name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    for path in heads:
        (aside / path.name).rename(path)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "pull request")
    aside.rmdir()
    return dest


def drop_templates(server: Any) -> None:
    """Drop the benchmark's base-snapshot template databases (a cold run starts without them)."""
    for name in server.leftovers(f"{PREFIX}_base_"):
        server.drop(name)


def findings(report: dict) -> list[tuple]:
    return sorted((c["name"], f["rule_id"], f["severity"], f.get("revision") or "", f["title"])
                  for c in report["checks"] for f in c["findings"])


def run_pr(bench: Any, app: Any, warm: bool) -> dict:
    """One PR run (cold or warm, see the module docstring); the sample has the replay's cache state."""
    from run import child_env, clean_tree, measure

    env = child_env(app, {var: bench.server.db_url("never_connected") for var in app.binds})
    env["CI_MIGRATE_SANDBOX_PREFIX"] = PREFIX
    if not warm:
        drop_templates(bench.server)
        app.cache = bench.workdir / f"cache-{secrets.token_hex(4)}"
    report = bench.workdir / "report-pr.json"
    clean_tree(app.dir)
    cmd = [bench.cim, "check", "--sandbox", bench.server.url, "-o", str(report), "--base", "HEAD~1",
           "--cache-dir", str(app.cache)]
    run = measure(cmd, app.dir, env, expect=(0, 1))
    data = json.loads(report.read_text(encoding="utf-8"))
    replay = next(c for c in data["checks"] if c["name"] == "replay")
    state = (replay.get("facts") or {}).get("cache", {}).get("state")
    if state != ("restored" if warm else "built"):
        raise RuntimeError(f"{app.name}: the {'warm' if warm else 'cold'} run's cache state is {state}: {data['notes']}")
    if warm and findings(data) != app.cold_findings:
        raise RuntimeError(f"{app.name}: the warm run's findings differ from the cold run's")
    if not warm:
        app.cold_findings = findings(data)
    checks = {c["name"]: c.get("duration_s") or 0.0 for c in data["checks"]}
    return {"s": run["s"], "cpu_s": run["cpu_s"], "rss_mb": run["rss_mb"], **{f"{k}_s": v for k, v in checks.items()}}


def table(apps: list[Any], full: dict[int, float], med: Any) -> list[str]:
    """The PR section of the benchmark's report: cold and warm per app, with the ratios of the targets
    (``full``: N → the full check's median wall time)."""
    title = ("Pull-request runs (--base HEAD~1; synthetic: 10 pending revisions; fixtures: the head revision(s)); "
             "cold: empty cache, warm: restored from the base snapshot")
    lines = ["", title, "",
             "| app | N | cold s | warm s | warm/cold | cold/full check | cold CPU s | warm CPU s | RSS cold | RSS warm |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for app in apps:
        cold, warm = app.samples.get("PRcold", []), app.samples.get("PRwarm", [])
        c, w = med(cold, "s"), med(warm, "s")
        ratio = f"{c / full[app.n]:.2f}" if app.n in full else "–"
        lines.append(f"| {app.name} | {app.revisions} | {c:.2f} | {w:.2f} | {w / c:.2f} | {ratio} | "
                     f"{med(cold, 'cpu_s'):.2f} | {med(warm, 'cpu_s'):.2f} | {med(cold, 'rss_mb'):.0f} MB | "
                     f"{med(warm, 'rss_mb'):.0f} MB |")
    lines += ["", "Where the PR runs' time goes (medians, s)", "",
              "| app | N | run | replay | drift | locks | roundtrip |", "|---|--:|---|--:|--:|--:|--:|"]
    for app in apps:
        for kind in ("PRcold", "PRwarm"):
            s = app.samples.get(kind, [])
            lines.append(f"| {app.name} | {app.revisions} | {kind[2:]} | " + " | ".join(
                f"{med(s, k):.2f}" for k in ("replay_s", "drift_s", "locks_s", "roundtrip_s")) + " |")
    return lines


def targets(apps: list[Any], full: dict[int, float], med: Any) -> list[str]:
    out = []
    for app in (a for a in apps if a.n and a.n >= 500):
        c, w = med(app.samples.get("PRcold", []), "s"), med(app.samples.get("PRwarm", []), "s")
        if app.n in full:
            out.append(f"- PR run N={app.n} cold ≤ 1.5 × full check: {c:.2f} / {full[app.n]:.2f} = {c / full[app.n]:.2f} — "
                       f"{'holds' if c <= 1.5 * full[app.n] else 'MISSED'}")
        out.append(f"- PR run N={app.n} warm ≤ 0.3 × cold: {w:.2f} / {c:.2f} = {w / c:.2f} — "
                   f"{'holds' if w <= 0.3 * c else 'MISSED'}")
    return out
