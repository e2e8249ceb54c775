"""Where the links of a published report point: rule pages and revision files at the reviewed commit.

Rule pages: the ``Rules`` entry of the installed package's ``Project-URL`` metadata
(``[project.urls]`` in pyproject.toml, read with :mod:`importlib.metadata`), unless the
``rules-url`` setting names another place (a fork or an internal mirror). Files: on GitHub the
pull request's head commit (``pull_request.head.sha``, or ``workflow_run.head_sha`` when a saved
report is posted) under the repository's ``html_url`` (else ``GITHUB_SERVER_URL`` +
``GITHUB_REPOSITORY``), as ``<repo>/blob/<sha>/<path>#L<line>``; on GitLab
``CI_MERGE_REQUEST_SOURCE_PROJECT_URL`` (else ``CI_PROJECT_URL``) ``/-/blob/<CI_COMMIT_SHA>/…``.
Pure functions of the environment and the package metadata: no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from ci_migrate.publish.github_event import load_event

DISTRIBUTION = "ci-migrate"
#: Project-URL labels (PEP 753 normalizes labels: case and punctuation do not matter).
RULES_LABEL = "rules"
HOME_LABELS = ("source", "repository", "homepage")


@lru_cache(maxsize=1)
def project_urls() -> dict[str, str]:
    """The installed package's ``Project-URL`` entries, label (lower-case, no punctuation) → URL.

    Empty when ci-migrate runs from a source tree that is not installed.
    """
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        entries = metadata(DISTRIBUTION).get_all("Project-URL") or []
    except PackageNotFoundError:
        return {}
    urls: dict[str, str] = {}
    for entry in entries:
        label, _, url = entry.partition(",")
        urls["".join(ch for ch in label.lower() if ch.isalnum())] = url.strip()
    return urls


def home_url() -> str | None:
    """The project's home page (``Source``, ``Repository`` or ``Homepage`` Project-URL)."""
    urls = project_urls()
    return next((urls[k] for k in HOME_LABELS if urls.get(k)), None)


def _base(url: str | None) -> str | None:
    return url.rstrip("/") + "/" if url else None


@dataclass(frozen=True)
class Links:
    """Base URLs: ``rules`` (``<rules><rule_id>.md``) and ``source`` (``<source><path>#L<line>``).

    Either may be ``None``: the rule id or the path is then shown without a link.
    """

    rules: str | None = None
    source: str | None = None

    def rule(self, rule_id: str) -> str | None:
        """URL of the page of ``rule_id`` (``docs/rules/<rule_id>.md`` in the repository)."""
        return f"{self.rules}{rule_id}.md" if self.rules else None

    def file(self, path: str | None, line: int | None = None) -> str | None:
        """URL of a repository-relative ``path`` at the reviewed commit, at ``line`` (1-based)."""
        if not self.source or not path:
            return None
        return self.source + quote(path.lstrip("/")) + (f"#L{line}" if line else "")


def default_links() -> Links:
    """Rule pages from the package metadata; no file links (outside CI, in tests)."""
    return Links(rules=_base(project_urls().get(RULES_LABEL)))


def links_for(env: Mapping[str, str], rules_url: str | None = None) -> Links:
    """The links of a run in the CI ``env`` describes; ``rules_url`` overrides the metadata."""
    rules = _base(rules_url) or default_links().rules
    return Links(rules=rules, source=_github_source(env) or _gitlab_source(env))


def _github_source(env: Mapping[str, str]) -> str | None:
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    event = load_event(env)
    name = env.get("GITHUB_EVENT_NAME", "")
    sha = ((event.get("pull_request") or {}).get("head") or {}).get("sha")
    if not sha and name == "workflow_run":
        sha = (event.get("workflow_run") or {}).get("head_sha")
    if not sha and not name.startswith("pull_request"):
        sha = env.get("GITHUB_SHA")  # a push: the commit itself (a PR's GITHUB_SHA is a merge commit)
    repo = (event.get("repository") or {}).get("html_url")
    if not repo and env.get("GITHUB_REPOSITORY"):
        repo = f"{env.get('GITHUB_SERVER_URL') or 'https://github.com'}/{env['GITHUB_REPOSITORY']}"
    return f"{repo.rstrip('/')}/blob/{sha}/" if repo and sha else None


def _gitlab_source(env: Mapping[str, str]) -> str | None:
    if not env.get("GITLAB_CI"):
        return None
    project = env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_URL") or env.get("CI_PROJECT_URL")
    sha = env.get("CI_COMMIT_SHA")
    return f"{project.rstrip('/')}/-/blob/{sha}/" if project and sha else None
