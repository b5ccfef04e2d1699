"""`clade ui`: the report page served live from the archive on localhost (standard library only).

Every request re-reads the archive, so the page follows a run that another process is writing:

- `GET /` the page, with the run's tree and scores inline (no code);
- `GET /api/run` the same data as JSON; `GET /api/run?since=VERSION` (what the page polls every
  4 s) only what changed since that version: `{"version", "unchanged": true}` when nothing did,
  else the run, the summary, the node rows that changed or were added, and the timeline from the
  first point that moved (`delta`); the whole document when the server no longer holds VERSION;
- `GET /api/node/<id>` one node's files, its parent's files, metrics, evaluations, LLM reply.

The server binds 127.0.0.1 only and serves each request in a thread; Ctrl-C stops it.
"""

from __future__ import annotations

import errno
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from archive.errors import ArchiveError
from archive.presentation.report import node_detail, render_html, report_data
from archive.store import ReadStore

NODE_PATH = re.compile(r"^/api/node/(\d+)$")
KEPT_VERSIONS = 16
"""Documents the server remembers, to answer `?since=` with a delta (a few polling pages each)."""
SHARED = ("mode", "generated_at", "version", "run", "summary", "statuses", "operators", "models")
"""What every delta carries whole (small); the rest is the node columns and the timeline."""


def delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """`new` as changes to `old`, or None when it cannot be one (the code tables changed, or a
    row moved: rows are only ever appended in id order and updated in place)."""
    if any(old[key] != new[key] for key in ("statuses", "operators", "models")):
        return None
    before, after = old["nodes"], new["nodes"]
    known = len(before["id"])
    if after["id"][:known] != before["id"]:
        return None
    columns = list(after)
    changed = [i for i in range(known) if any(before[c][i] != after[c][i] for c in columns)]
    line_old, line_new = old["timeline"], new["timeline"]
    start = 0
    limit = min(len(line_old["n"]), len(line_new["n"]))
    while start < limit and all(line_old[c][start] == line_new[c][start] for c in line_new):
        start += 1
    return {
        **{key: new[key] for key in SHARED},
        "delta": {
            "since": old["version"],
            "changed": {"i": changed, **{c: [after[c][i] for i in changed] for c in columns}},
            "appended": {c: after[c][known:] for c in columns},
            "timeline_from": start,
            "timeline": {c: line_new[c][start:] for c in line_new},
        },
    }


class ReportServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, archive: ReadStore, run_id: int, host: str, port: int) -> None:
        self.archive, self.run_id = archive, run_id
        self._sent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ArchiveError(
                    f"port {port} on {host} is already in use; pick another with --port (0 picks a free one)"
                ) from None
            raise ArchiveError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def document(self, run: Any, since: str | None) -> dict[str, Any]:
        """The live document, or only what changed since the version `since` (see the module)."""
        data = report_data(self.archive, run, live=True)
        with self._lock:
            base = self._sent.get(since) if since else None
            self._sent[data["version"]] = data
            self._sent.move_to_end(data["version"])
            while len(self._sent) > KEPT_VERSIONS:
                self._sent.popitem(last=False)
        if since is not None and since == data["version"]:
            return {"version": since, "unchanged": True}
        return (delta(base, data) if base is not None else None) or data

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: ReportServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path, _, query = self.path.split("#", 1)[0].partition("?")
        archive = self.server.archive
        try:
            run = archive.find_run(str(self.server.run_id))
            if path in ("/", "/index.html"):
                body = render_html(self.server.document(run, None)).encode()
                self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
            elif path == "/api/run":
                since = parse_qs(query).get("since", [None])[0]
                self._json(HTTPStatus.OK, self.server.document(run, since))
            elif match := NODE_PATH.match(path):
                self._json(HTTPStatus.OK, node_detail(archive, run, int(match.group(1))))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
        except ArchiveError as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except Exception as exc:  # one page failed (a damaged row): say why, keep serving
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"unexpected {type(exc).__name__}: {first}"})

    def _json(self, status: HTTPStatus, doc: Any) -> None:
        self._send(status, json.dumps(doc, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")  # node text is served as JSON, never sniffed as HTML
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the URL only
        return


def serve(archive: ReadStore, run_id: int, port: int, on_ready: Callable[[str], None], host: str = "127.0.0.1") -> None:
    """Serve until Ctrl-C; `on_ready` gets the URL once the socket listens."""
    server = ReportServer(archive, run_id, host, port)
    try:
        on_ready(server.url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
