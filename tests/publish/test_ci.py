"""detect_ci and the publish() dispatcher."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ci_migrate.publish.ci import detect_ci, publish
from ci_migrate.publish.workflow import escape_data, escape_property, register_masks

from . import reports
from .conftest import PR, REPO
from .forge import Forge


@pytest.mark.parametrize("env, expected", [
    ({"GITHUB_ACTIONS": "true", "CI": "true"}, "github"),
    ({"GITLAB_CI": "true"}, "gitlab"),
    ({"CIRCLECI": "true"}, "circleci"),
    ({"BITBUCKET_BUILD_NUMBER": "12"}, "bitbucket"),
    ({"BITBUCKET_PIPELINE_UUID": "{x}"}, "bitbucket"),
    ({"TF_BUILD": "True"}, "azure"),
    ({"TEAMCITY_VERSION": "2024.1"}, "teamcity"),
    ({"JENKINS_URL": "https://ci.example/"}, "jenkins"),
    ({"CI": "true"}, None),
    ({"GITHUB_ACTIONS": "false"}, None),
    ({}, None),
])
def test_detect_ci(env: dict[str, str], expected: str | None) -> None:
    assert detect_ci(env) == expected


def test_publish_elsewhere_writes_only_the_files(tmp_path: Path) -> None:
    notices = publish(reports.tutorial_drift(), env={"CIRCLECI": "true"}, comment="always",
                      report_path=None, junit=str(tmp_path / "j.xml"),
                      sarif=str(tmp_path / "s.sarif"), codequality=str(tmp_path / "cq.json"),
                      root=tmp_path)
    assert notices == []
    assert {p.name for p in tmp_path.iterdir()} == {"j.xml", "s.sarif", "cq.json"}


def test_publish_on_github(forge: Forge, gh_env: dict[str, str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    notices = publish(reports.tutorial_drift(), env=gh_env, comment="always",
                      report_path="report.json", junit=None, sarif=str(tmp_path / "s.sarif"),
                      codequality=None, root=tmp_path)
    assert notices[0].startswith("Posted the PR comment")
    assert len(forge.comments_on(REPO, PR)) == 1
    assert json.loads((tmp_path / "s.sarif").read_text())["version"] == "2.1.0"
    assert out.getvalue().startswith("::add-mask::rw-token\n::error ")


def test_publish_on_gitlab(forge: Forge, tmp_path: Path) -> None:
    from .forge import Token

    forge.tokens["gl"] = Token("bot")
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": forge.base + "/api/v4", "CI_PROJECT_ID": "1",
           "CI_MERGE_REQUEST_IID": "2", "GITLAB_TOKEN": "gl"}
    publish(reports.passing(), env=env, comment="always", report_path=None, junit=None,
            sarif=None, codequality=str(tmp_path / "cq.json"), root=tmp_path)
    assert len(forge.notes) == 1 and json.loads((tmp_path / "cq.json").read_text()) == []


def test_register_masks() -> None:
    out = io.StringIO()
    register_masks(["s3cret", "", "s3cret", "multi\nline", "p", "abc", "pw\nlonger"], out)
    assert out.getvalue() == ("::add-mask::s3cret\n::add-mask::multi\n::add-mask::line\n"
                              "::add-mask::longer\n")


def test_escaping_matches_the_toolkit() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
