"""The probe started before the settings are loaded: adopted when the settings agree, killed (with
its private copy) when they do not or when the command ends first; and the probe's warm-up imports
the app's libraries only until the host asks for something."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import clean_env, probe_copy

from ci_migrate import early_probe
from ci_migrate.interpreter import resolve
from ci_migrate.probe.warm import LIBRARIES, warm_up


def copy_dir(probe) -> Path:
    return probe_copy(" ".join(probe._proc.args))


def test_the_early_probe_is_adopted_when_the_settings_agree(tmp_path):
    env = clean_env()
    with early_probe.started_early(None, None, env, cwd=tmp_path):
        python = resolve(None, "python", tmp_path.resolve(), env).path
        probe = early_probe.adopt(python, tmp_path.resolve(), env)
        assert probe is not None and probe._proc.poll() is None
        probe.greet()
        modules = probe.close(modules=True)  # it answered: the one the run talks to
    assert isinstance(modules, list) and modules
    assert not copy_dir(probe).exists()


def test_a_probe_the_settings_disagree_with_is_killed_and_its_copy_removed(tmp_path):
    env = clean_env()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with early_probe.started_early(None, None, env, cwd=tmp_path):
        probe = early_probe._early
        assert probe is not None
        python = resolve(None, "python", tmp_path.resolve(), env).path
        assert early_probe.adopt(python, elsewhere.resolve(), env) is None
        assert probe._proc.poll() is not None and not copy_dir(probe).exists()
        assert early_probe.adopt(python, tmp_path.resolve(), env) is None  # handed out once at most
    changed = {**env, "DATABASE_URL": "sqlite:///other.db"}
    with early_probe.started_early(None, None, env, cwd=tmp_path):
        probe = early_probe._early
        assert early_probe.adopt(python, tmp_path.resolve(), changed) is None  # another environment
        assert probe._proc.poll() is not None


def test_a_probe_never_adopted_ends_with_the_command(tmp_path):
    with pytest.raises(RuntimeError), early_probe.started_early(None, None, clean_env(), cwd=tmp_path):
        probe = early_probe._early
        raise RuntimeError("the command failed before it loaded the settings")
    assert probe._proc.poll() is not None and not copy_dir(probe).exists()
    assert early_probe._early is None


def test_nothing_is_guessed_when_the_config_file_chooses_the_python(tmp_path):
    (tmp_path / ".ci-migrate.yml").write_text("app: app.py\npython: .venv/bin/python\n")
    with early_probe.started_early(None, None, clean_env(), cwd=tmp_path):
        assert early_probe._early is None
    (tmp_path / ".ci-migrate.yml").write_text("app: app.py\n")
    with early_probe.started_early(None, None, clean_env(), cwd=tmp_path):
        assert early_probe._early is not None and early_probe._early.root == tmp_path.resolve()
    with early_probe.started_early("missing.yml", None, clean_env(), cwd=tmp_path):
        assert early_probe._early is None  # the settings loader reports the missing file


def test_the_explicit_python_and_the_config_directory_are_the_guess(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "ci.yml").write_text("app: app.py\n")
    env = clean_env({"CI_MIGRATE_PYTHON": sys.executable})
    with early_probe.started_early("project/ci.yml", None, env, cwd=tmp_path):
        probe = early_probe._early
        assert probe.root == project.resolve() and probe.python == os.path.normpath(os.path.abspath(sys.executable))
    with early_probe.started_early(None, str(tmp_path / "no-such-python"), clean_env(), cwd=tmp_path):
        assert early_probe._early is None  # `--python` that is not a Python: the settings say so


def test_warm_up_imports_until_a_request_waits_and_skips_what_is_missing(monkeypatch):
    assert warm_up(lambda: True) == []
    calls = iter([False, False, True])
    assert warm_up(lambda: next(calls)) == list(LIBRARIES[:2])
    monkeypatch.setitem(sys.modules, "flask_sqlalchemy", None)  # not installed: an app with a plain base
    done = warm_up(lambda: False)
    assert "flask_sqlalchemy" not in done and done == [n for n in LIBRARIES if n != "flask_sqlalchemy"]
