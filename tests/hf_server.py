"""A tiny in-memory fake of the Hugging Face Hub HTTP API, for offline tests.

It implements just what huggingface_hub 2.x needs for ``snapshot_download`` and
``HfApi.create_repo`` / ``create_commit`` (checked against its source):

* ``GET  /api/models/{repo}[/revision/{rev}]``   repo info (``sha``, ``siblings``)
* ``GET  /api/models/{repo}/tree/{rev}``         recursive file listing (no ``xetHash``,
  so no Xet download path is ever taken)
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``      file metadata / content, with
  ``X-Repo-Commit``, ``ETag`` and ``Content-Length``
* ``POST /api/repos/create``                     create a repo (409 if it exists)
* ``POST /api/validate-yaml``                    README metadata check (always fine)
* ``POST /api/models/{repo}/preupload/{rev}``    answers ``uploadMode: regular`` for every
  file, so contents travel inline (base64) in the commit payload, never via LFS/Xet
* ``POST /api/models/{repo}/commit/{rev}``       NDJSON commit payload -> new commit

Errors carry the ``X-Error-Code`` header huggingface_hub maps to its exceptions
(RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo). Every request is recorded
in ``FakeHub.requests`` as ``(method, unquoted path)`` (and its Authorization header in
``FakeHub.authorizations``) so tests can assert what was (not) fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob, which is what the Hub uses as a regular file's ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha
    gated: bool = False

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        return None


class FakeHub:
    """In-memory repos served on 127.0.0.1:<ephemeral port>; use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.commit_payloads: list[list[dict]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- repo content
    def add_commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main",
                   message: str = "commit", keep: bool = False) -> str:
        """Add a commit on ``branch`` (created if needed) and return its 40-hex sha.

        ``keep=True`` starts from the branch's current files (like a git commit);
        otherwise ``files`` is the complete new tree.
        """
        with self._lock:
            repo = self.repos.setdefault(repo_id, FakeRepo(repo_id))
            parent = repo.refs.get(branch, "")
            tree = dict(repo.commits[parent]) if keep and parent else {}
            tree.update(files)
            digest = hashlib.sha1(f"{repo_id}\n{parent}\n{message}\n{len(repo.commits)}".encode())
            for name in sorted(tree):
                digest.update(name.encode() + b"\0" + tree[name])
            sha = digest.hexdigest()
            repo.commits[sha] = tree
            repo.refs[branch] = sha
            return sha

    def files_at(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    def paths_requested(self, method: str | None = None) -> list[str]:
        return [p for m, p in self.requests if method is None or m == method]

    # ---------------------------------------------------------------- server
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-hf-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    # ---------------------------------------------------------------- helpers
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message,
                                                **(headers or {})})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and not self.headers.get("authorization"):
            self._error(403, "GatedRepo", "Access to model is restricted.")
            return None
        return repo

    def _commit(self, repo: FakeRepo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha

    # ---------------------------------------------------------------- routing
    def _route(self) -> None:
        split = urlsplit(self.path)
        raw_parts = split.path.strip("/").split("/")
        parts = [unquote(p) for p in raw_parts]
        with self.fake._lock:
            self.fake.requests.append((self.command, unquote(split.path)))
            self.fake.authorizations.append(self.headers.get("authorization"))
        try:
            if parts[:1] == ["api"]:
                self._route_api(parts[1:])
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            else:
                self._error(404, "NotFound", f"No route for {self.command} {split.path}")
        except Exception as exc:  # pragma: no cover - surfaces server bugs in test output
            self._json(500, {"error": f"fake hub crashed: {type(exc).__name__}: {exc}"})

    def _route_api(self, parts: list[str]) -> None:
        if self.command == "POST" and parts == ["repos", "create"]:
            return self._create_repo()
        if self.command == "POST" and parts == ["validate-yaml"]:
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if len(parts) < 3 or parts[0] != "models":
            return self._error(404, "NotFound", "unknown API route")
        repo_id, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        if self.command == "GET" and (rest == [] or (len(rest) == 2 and rest[0] == "revision")):
            return self._model_info(repo_id, rest[1] if rest else "main")
        if self.command == "GET" and len(rest) >= 2 and rest[0] == "tree":
            return self._tree(repo_id, rest[1], "/".join(rest[2:]))
        if self.command == "POST" and len(rest) == 2 and rest[0] == "preupload":
            return self._preupload(repo_id, rest[1])
        if self.command == "POST" and len(rest) == 2 and rest[0] == "commit":
            return self._commit_endpoint(repo_id, rest[1])
        return self._error(404, "NotFound", "unknown API route")

    do_GET = do_HEAD = do_POST = _route

    # ---------------------------------------------------------------- download API
    def _model_info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = self._commit(repo, revision)
        if sha is None:
            return
        files = repo.commits[sha]
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": False,
                         "gated": repo.gated, "siblings": [{"rfilename": f} for f in sorted(files)]})

    def _tree(self, repo_id: str, revision: str, prefix: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = self._commit(repo, revision)
        if sha is None:
            return
        entries = []
        for name, data in sorted(repo.commits[sha].items()):
            if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                continue
            entries.append({"type": "file", "path": name, "size": len(data), "oid": git_blob_sha(data)})
        self._json(200, entries)

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = self._commit(repo, revision)
        if sha is None:
            return
        data = repo.commits[sha].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", f"{filename} does not exist", {"X-Repo-Commit": sha})
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(data)}"',
                               "Accept-Ranges": "bytes"}, content_type="application/octet-stream")

    # ---------------------------------------------------------------- upload API
    def _create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        with self.fake._lock:
            exists = repo_id in self.fake.repos
            if not exists:
                self.fake.repos[repo_id] = FakeRepo(repo_id)
        if exists:  # like the Hub: 409, but the body still carries the url (create_repo(exist_ok) reads it)
            return self._json(409, {"error": "You already created this model repo",
                                    "url": f"{self.fake.url}/{repo_id}"},
                              {"X-Error-Message": "You already created this model repo"})
        self._json(200, {"url": f"{self.fake.url}/{repo_id}", "name": repo_id})

    def _preupload(self, repo_id: str, revision: str) -> None:
        payload = json.loads(self._body() or b"{}")
        if self._repo(repo_id) is None:
            return
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                 for f in payload.get("files", [])]
        self._json(200, {"files": files, "commitOid": None})

    def _commit_endpoint(self, repo_id: str, revision: str) -> None:
        body = self._body()
        repo = self._repo(repo_id)
        if repo is None:
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        with self.fake._lock:
            self.fake.commit_payloads.append(lines)
        if revision not in repo.refs and repo.refs:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files: dict[str, bytes] = {}
        message = "commit"
        for item in lines:
            if item["key"] == "header":
                message = item["value"].get("summary", message)
            elif item["key"] == "file":
                value = item["value"]
                if value.get("encoding") != "base64":
                    return self._error(400, "BadRequest", "expected base64 content")
                files[value["path"]] = base64.b64decode(value["content"])
            else:
                return self._error(400, "BadRequest", f"fake hub does not support {item['key']!r}")
        sha = self.fake.add_commit(repo_id, files, branch=revision, message=message, keep=True)
        self._json(200, {"success": True, "commitOid": sha, "commitUrl": f"{self.fake.url}/{repo_id}/commit/{sha}",
                         "pullRequestUrl": None})
