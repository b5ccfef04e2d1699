"""`clade ui`: the report page served live from the archive on localhost (standard library only).

Every request re-reads the archive, so the page follows a run that another process is writing:

- `GET /` the page, with the run's tree and scores inline (no code);
- `GET /api/run` the same data as JSON (the page polls it and redraws when its version changes);
- `GET /api/node/<id>` one node's files, its parent's files, metrics, evaluations, LLM reply.

The server binds 127.0.0.1 only and serves each request in a thread; Ctrl-C stops it.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from archive.database import ArchiveError
from archive.report import node_detail, render_html, report_data
from archive.store import Archive

NODE_PATH = re.compile(r"^/api/node/(\d+)$")


class ReportServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, archive: Archive, run_id: int, host: str, port: int) -> None:
        self.archive, self.run_id = archive, run_id
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ArchiveError(
                    f"port {port} on {host} is already in use; pick another with --port (0 picks a free one)"
                ) from None
            raise ArchiveError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: ReportServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        archive = self.server.archive
        try:
            run = archive.find_run(str(self.server.run_id))
            if path in ("/", "/index.html"):
                body = render_html(report_data(archive, run, live=True)).encode()
                self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
            elif path == "/api/run":
                self._json(HTTPStatus.OK, report_data(archive, run, live=True))
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


def serve(archive: Archive, run_id: int, port: int, on_ready: Callable[[str], None], host: str = "127.0.0.1") -> None:
    """Serve until Ctrl-C; `on_ready` gets the URL once the socket listens."""
    server = ReportServer(archive, run_id, host, port)
    try:
        on_ready(server.url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
