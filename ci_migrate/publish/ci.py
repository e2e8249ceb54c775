"""Which CI runs us, and one entry point that publishes a report the way that CI reads it.

Detection follows the variables each CI documents (atlas-action ``action.go`` ``New`` does the
same): GitHub Actions ``GITHUB_ACTIONS=true``, GitLab ``GITLAB_CI``, CircleCI ``CIRCLECI``,
Bitbucket Pipelines ``BITBUCKET_BUILD_NUMBER``/``BITBUCKET_PIPELINE_UUID``, Azure Pipelines
``TF_BUILD``, TeamCity ``TEAMCITY_VERSION``, Jenkins ``JENKINS_URL``/``JENKINS_HOME``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from ci_migrate.publish.codequality import write_codequality
from ci_migrate.publish.junit import write_junit
from ci_migrate.publish.links import Links
from ci_migrate.publish.sarif import write_sarif
from ci_migrate.report import Report

_DETECT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("github", ("GITHUB_ACTIONS",)),
    ("gitlab", ("GITLAB_CI",)),
    ("circleci", ("CIRCLECI",)),
    ("bitbucket", ("BITBUCKET_BUILD_NUMBER", "BITBUCKET_PIPELINE_UUID")),
    ("azure", ("TF_BUILD",)),
    ("teamcity", ("TEAMCITY_VERSION",)),
    ("jenkins", ("JENKINS_URL", "JENKINS_HOME")),
)
_FALSE = {"", "0", "false", "no"}


def detect_ci(env: Mapping[str, str]) -> str | None:
    """``'github' | 'gitlab' | 'circleci' | 'bitbucket' | 'azure' | 'teamcity' | 'jenkins'``,
    or ``None`` outside a known CI. A variable set to ``false``/``0``/empty does not count."""
    for name, variables in _DETECT:
        if any(env.get(v, "").strip().lower() not in _FALSE for v in variables):
            return name
    return None


def publish(
    report: Report,
    *,
    env: Mapping[str, str],
    comment: str,
    report_path: str | None,
    junit: str | None,
    sarif: str | None,
    codequality: str | None,
    root: Path,
    pr_number: int | None = None,
    links: Links | None = None,
) -> list[str]:
    """Write the files asked for, then publish natively on the detected CI; returns notices.

    ``junit``/``sarif``/``codequality`` are output paths (relative ones are taken relative to the
    current directory) or ``None``; ``root`` is the repository root SARIF locations are relative
    to; ``pr_number`` overrides the pull request found in the event (``post --pr-number``);
    ``links`` says where rule ids and files link to (:func:`~ci_migrate.publish.links.links_for`). On
    GitHub Actions: summary, annotations, outputs and the PR comment
    (:func:`~ci_migrate.publish.github.publish_github`, writing to ``sys.stdout``); on GitLab:
    the MR note and Code Quality (:func:`~ci_migrate.publish.gitlab.publish_gitlab`). Elsewhere
    only the files. Raises ``OSError`` when a file cannot be written and ``ValueError`` for an
    unknown ``comment`` mode; a comment that cannot be posted is a notice, never an error.
    """
    if junit:
        write_junit(report, Path(junit))
    if sarif:
        write_sarif(report, Path(sarif), root, links)
    ci = detect_ci(env)
    if ci == "github":
        from ci_migrate.publish.github import publish_github

        notices = publish_github(report, env=env, comment=comment, report_path=report_path,
                                 out=sys.stdout, pr_number=pr_number, links=links)
        if codequality:
            write_codequality(report, Path(codequality))
        return notices
    if ci == "gitlab":
        from ci_migrate.publish.gitlab import publish_gitlab

        return publish_gitlab(report, env=env, comment=comment, codequality_path=codequality,
                              links=links)
    if codequality:
        write_codequality(report, Path(codequality))
    return []
