"""`ci-migrate explain RULE_ID`: the rule's page from docs/rules/, as installed with the package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from support import ROOT

PAGES = ROOT / "docs" / "rules"


def test_explain_prints_the_rule_page(cli, tmp_path: Path) -> None:
    result = cli("explain", "CM504", cwd=tmp_path)
    assert result.code == 0, result.text
    assert result.out == (PAGES / "CM504.md").read_text(encoding="utf-8")
    assert cli("explain", "cm101", cwd=tmp_path).out.startswith("# CM101 — multiple heads\n")


def test_unknown_rule_is_a_usage_error_with_the_closest_ids(cli, tmp_path: Path) -> None:
    result = cli("explain", "CM5O4", cwd=tmp_path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: no rule 'CM5O4' — did you mean 'CM504'?\n    rules: CM101, CM102,")
    other = cli("explain", "lint", cwd=tmp_path)
    assert other.code == 2 and "error: no rule 'lint' (rule ids look like CM101)" in other.err


def test_a_wheel_ships_the_pages_and_explain_reads_them_installed(tmp_path: Path) -> None:
    """Build a wheel from the source tree, install it into a fresh venv (its dependencies taken from
    the test environment's site-packages) and run its `ci-migrate explain` outside the checkout."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("ci_migrate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ci_migrate/rules/{p.name}" for p in PAGES.glob("CM*.md")} <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = subprocess.run([str(venv / "bin" / "ci-migrate"), "explain", "CM504"], cwd=outside,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (PAGES / "CM504.md").read_text(encoding="utf-8")
    where = subprocess.run([str(python), "-c", "import ci_migrate.rules; print(ci_migrate.rules.__file__)"],
                           cwd=outside, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
