"""A small, real HTTP server speaking the GitHub and GitLab endpoints the publishers call.

Runs a ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (an ephemeral port) and records every
request, so tests assert on the exact calls and bodies. State is plain data the tests seed and
inspect. Behaviour mirrors the documented APIs:

GitHub (GitHub Docs "REST API endpoints for issue comments", "Using pagination"):
``POST /graphql`` (``viewer { login }``), ``GET/POST /repos/{o}/{r}/issues/{n}/comments``
(``per_page`` default 30, max 100, ``Link`` header), ``PATCH/DELETE
/repos/{o}/{r}/issues/comments/{id}``, ``GET /repos/{o}/{r}/pulls/{n}`` (GitHub Docs "REST API
endpoints for pull requests": ``head.sha``, 404 for an unknown number); 401 for an unknown token, 403 "Resource not accessible
by integration" for a read-only token, 422 "Body is too long" over ``max_body`` characters.

GitLab (GitLab Docs "Notes API"): ``GET /api/v4/user``, ``GET/POST
/api/v4/projects/{id}/merge_requests/{iid}/notes`` (``Link`` and ``X-Next-Page`` headers),
``PUT/DELETE …/notes/{note_id}``; 401 unknown token, 403 read-only token.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Token:
    login: str
    writable: bool = True


@dataclass
class Forge:
    """Server state. ``comments`` (GitHub) and ``notes`` (GitLab) are lists of dicts in API shape;
    ``pulls`` maps ``(repo, number)`` to the pull request's head commit SHA."""

    base: str = ""
    api_prefix: str = ""  # "/api/v3" to play GitHub Enterprise Server in returned URLs
    tokens: dict[str, Token] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    pulls: dict[tuple[str, int], str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    max_body: int = 65_536
    _next_id: int = 1000
    _clock: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- seeding helpers
    def _tick(self) -> tuple[int, str]:
        self._next_id += 1
        self._clock += dt.timedelta(minutes=1)
        return self._next_id, self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def add_comment(self, repo: str, number: int, body: str, login: str) -> dict[str, Any]:
        cid, now = self._tick()
        comment = {
            "id": cid, "node_id": f"IC_{cid}", "body": body,
            "url": f"{self.base}{self.api_prefix}/repos/{repo}/issues/comments/{cid}",
            "html_url": f"https://github.test/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.base}{self.api_prefix}/repos/{repo}/issues/{number}",
            "user": {"login": login, "id": abs(hash(login)) % 10**6,
                     "type": "Bot" if login.endswith("[bot]") else "User"},
            "created_at": now, "updated_at": now, "_repo": repo, "_number": number,
        }
        self.comments.append(comment)
        return comment

    def add_note(self, project: str, iid: int, body: str, username: str,
                 system: bool = False) -> dict[str, Any]:
        nid, now = self._tick()
        note = {"id": nid, "body": body, "system": system, "noteable_type": "MergeRequest",
                "noteable_iid": iid, "author": {"id": abs(hash(username)) % 10**6,
                                                "username": username},
                "created_at": now, "updated_at": now, "_project": project}
        self.notes.append(note)
        return note

    def comments_on(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["_repo"] == repo and c["_number"] == number]

    def calls(self, method: str | None = None, path: str = "") -> list[Request]:
        """Recorded requests, optionally filtered by method and a path substring."""
        return [r for r in self.requests
                if (method is None or r.method == method) and path in r.path]


def public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    # ---- plumbing
    def _record(self) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        req = Request(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                      {k.lower(): v for k, v in self.headers.items()}, body)
        with self.server.forge.lock:
            self.server.forge.requests.append(req)
        return req

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _token(self, req: Request) -> Token | None:
        raw = req.headers.get("private-token") or req.headers.get("authorization", "")
        return self.server.forge.tokens.get(raw.split(" ")[-1])

    def do_GET(self) -> None:  # http.server naming
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        req = self._record()
        token = self._token(req)
        if token is None:
            return self._send(401, {"message": "Bad credentials"})
        forge = self.server.forge
        with forge.lock:
            for pattern, method, handler in _ROUTES:
                m = re.fullmatch(pattern, req.path)
                if m and req.method == method:
                    return handler(self, forge, req, token, *m.groups())
        self._send(404, {"message": "Not Found"})

    def _page(self, req: Request, items: list[dict[str, Any]], default: int = 30,
              gitlab: bool = False) -> None:
        per_page = min(int(req.query.get("per_page", default)), 100)
        page = int(req.query.get("page", 1))
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        base = f"{self.server.forge.base}{req.path}"
        links, headers = [], {}
        for rel, n in (("next", page + 1), ("last", last)) if page < last else ():
            query = {**req.query, "page": str(n), "per_page": str(per_page)}
            links.append(f'<{base}?{urlencode(query)}>; rel="{rel}"')
        if links:
            headers["Link"] = ", ".join(links)
        if gitlab:
            headers.update({"X-Page": str(page), "X-Per-Page": str(per_page),
                            "X-Total": str(len(items)), "X-Total-Pages": str(last),
                            "X-Next-Page": str(page + 1) if page < last else ""})
        self._send(200, [public(i) for i in chunk], headers)


# ---- GitHub handlers
def _graphql(h: _Handler, forge: Forge, req: Request, token: Token) -> None:
    h._send(200, {"data": {"viewer": {"login": token.login.removesuffix("[bot]")}}})


def _gh_list(h: _Handler, forge: Forge, req: Request, token: Token, repo: str, n: str) -> None:
    h._page(req, forge.comments_on(repo, int(n)))


def _gh_check_write(h: _Handler, forge: Forge, req: Request, token: Token) -> bool:
    if not token.writable:
        h._send(403, {"message": "Resource not accessible by integration",
                      "documentation_url": "https://docs.github.com/rest/issues/comments"})
        return False
    body = (req.body or {}).get("body", "") if req.method != "DELETE" else ""
    if len(body) > forge.max_body:
        h._send(422, {"message": "Validation Failed", "errors": [{
            "resource": "IssueComment", "code": "unprocessable", "field": "data",
            "message": f"Body is too long (maximum is {forge.max_body} characters)"}]})
        return False
    return True


def _gh_create(h: _Handler, forge: Forge, req: Request, token: Token, repo: str, n: str) -> None:
    if _gh_check_write(h, forge, req, token):
        h._send(201, public(forge.add_comment(repo, int(n), req.body["body"], token.login)))


def _gh_comment(forge: Forge, repo: str, cid: str) -> dict[str, Any] | None:
    return next((c for c in forge.comments if c["_repo"] == repo and c["id"] == int(cid)), None)


def _gh_update(h: _Handler, forge: Forge, req: Request, token: Token, repo: str, cid: str) -> None:
    comment = _gh_comment(forge, repo, cid)
    if comment is None:
        return h._send(404, {"message": "Not Found"})
    if _gh_check_write(h, forge, req, token):
        comment["body"] = req.body["body"]
        comment["updated_at"] = forge._tick()[1]
        h._send(200, public(comment))


def _gh_delete(h: _Handler, forge: Forge, req: Request, token: Token, repo: str, cid: str) -> None:
    comment = _gh_comment(forge, repo, cid)
    if comment is None:
        return h._send(404, {"message": "Not Found"})
    if _gh_check_write(h, forge, req, token):
        forge.comments.remove(comment)
        h._send(204)


def _gh_pull(h: _Handler, forge: Forge, req: Request, token: Token, repo: str, n: str) -> None:
    sha = forge.pulls.get((repo, int(n)))
    if sha is None:
        return h._send(404, {"message": "Not Found",
                             "documentation_url": "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"})
    owner = repo.split("/")[0]
    h._send(200, {"id": 500 + int(n), "number": int(n), "state": "open",
                  "url": f"{forge.base}{forge.api_prefix}/repos/{repo}/pulls/{n}",
                  "html_url": f"https://github.test/{repo}/pull/{n}",
                  "head": {"sha": sha, "ref": "feature", "label": f"{owner}:feature"},
                  "base": {"sha": "0" * 40, "ref": "main", "label": f"{owner}:main"}})


# ---- GitLab handlers
def _gl_user(h: _Handler, forge: Forge, req: Request, token: Token) -> None:
    h._send(200, {"id": 77, "username": token.login, "name": token.login, "state": "active"})


def _gl_notes(forge: Forge, project: str, iid: str) -> list[dict[str, Any]]:
    return [n for n in forge.notes if n["_project"] == project and n["noteable_iid"] == int(iid)]


def _gl_list(h: _Handler, forge: Forge, req: Request, token: Token, project: str, iid: str) -> None:
    notes = sorted(_gl_notes(forge, project, iid), key=lambda n: n["id"],
                   reverse=req.query.get("sort", "desc") == "desc")  # GitLab's default: newest first
    h._page(req, notes, default=20, gitlab=True)


def _gl_forbidden(h: _Handler, token: Token) -> bool:
    if not token.writable:
        h._send(403, {"message": "403 Forbidden"})
        return True
    return False


def _gl_create(h: _Handler, forge: Forge, req: Request, token: Token, project: str, iid: str) -> None:
    if not _gl_forbidden(h, token):
        h._send(201, public(forge.add_note(project, int(iid), req.body["body"], token.login)))


def _gl_note(forge: Forge, project: str, iid: str, nid: str) -> dict[str, Any] | None:
    return next((n for n in _gl_notes(forge, project, iid) if n["id"] == int(nid)), None)


def _gl_update(h: _Handler, forge: Forge, req: Request, token: Token, project: str, iid: str,
               nid: str) -> None:
    note = _gl_note(forge, project, iid, nid)
    if note is None:
        return h._send(404, {"message": "404 Not found"})
    if not _gl_forbidden(h, token):
        note["body"] = req.body["body"]
        h._send(200, public(note))


def _gl_delete(h: _Handler, forge: Forge, req: Request, token: Token, project: str, iid: str,
               nid: str) -> None:
    note = _gl_note(forge, project, iid, nid)
    if note is None:
        return h._send(404, {"message": "404 Not found"})
    if not _gl_forbidden(h, token):
        forge.notes.remove(note)
        h._send(204)


_REPO = r"(?:/api/v3)?/repos/([^/]+/[^/]+)"  # GitHub Enterprise Server serves under /api/v3
_MR = r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes"
_ROUTES = [
    (r"(?:/api)?/graphql", "POST", _graphql),
    (_REPO + r"/issues/(\d+)/comments", "GET", _gh_list),
    (_REPO + r"/issues/(\d+)/comments", "POST", _gh_create),
    (_REPO + r"/issues/comments/(\d+)", "PATCH", _gh_update),
    (_REPO + r"/issues/comments/(\d+)", "DELETE", _gh_delete),
    (_REPO + r"/pulls/(\d+)", "GET", _gh_pull),
    (r"/api/v4/user", "GET", _gl_user),
    (_MR, "GET", _gl_list),
    (_MR, "POST", _gl_create),
    (_MR + r"/(\d+)", "PUT", _gl_update),
    (_MR + r"/(\d+)", "DELETE", _gl_delete),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    forge: Forge


def start() -> tuple[_Server, Forge]:
    """Start the server on 127.0.0.1 in a daemon thread; ``server.shutdown()`` stops it."""
    server = _Server(("127.0.0.1", 0), _Handler)
    forge = Forge(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.forge = forge
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="forge",
                     daemon=True).start()
    return server, forge
