"""A scripted OpenAI-compatible HTTP server for the LLM tests: a real server on a real socket.

Each POST to /v1/chat/completions takes the next step of the script: a reply text, an HTTP error
status, a stall (to trip the client's timeout), an empty reply. The requests it received are kept,
so a test can read what the client sent (e.g. the repair message after a failed edit). When the
script runs out it answers with `default`, or 500 when none is set.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Step:
    """One scripted answer: `text` as the reply, or `status` as an HTTP error, after `stall_s`."""

    text: str | None = None
    status: int = 200
    stall_s: float = 0.0
    prompt_tokens: int = 50
    completion_tokens: int = 20


def reply(text: str, prompt_tokens: int = 50, completion_tokens: int = 20) -> Step:
    return Step(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def error(status: int) -> Step:
    return Step(status=status)


def stall(seconds: float) -> Step:
    return Step(text="too late", stall_s=seconds)


def empty() -> Step:
    return Step(text="", completion_tokens=0)


@dataclass
class ScriptedServer:
    steps: list[Step] = field(default_factory=list)
    default: Step | None = None
    responder: Callable[[dict[str, Any]], Step] | None = None
    """Answers each request from its body once the script has run out (before `default`)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    """The most chat requests the server was answering at one moment."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, steps: Iterable[Step]) -> None:
        with self._lock:
            self.steps.extend(steps)

    def next_step(self, body: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(body)
            if self.steps:
                return self.steps.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return self.default or error(500)

    def user_messages(self, request: int) -> list[str]:
        return [m["content"] for m in self.requests[request]["messages"] if m["role"] == "user"]


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            step = server.next_step(body)
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                if step.stall_s:
                    server._closing.wait(step.stall_s)
                self._answer(body, step)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _answer(self, body: dict[str, Any], step: Step) -> None:
            if step.status != 200:
                message = {429: "rate limited", 500: "internal error", 503: "overloaded"}.get(step.status, "error")
                self._send(step.status, {"error": {"message": message, "type": "scripted", "code": step.status}})
                return
            self._send(200, _completion(body, step))

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    return Handler


def _completion(body: dict[str, Any], step: Step) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": step.text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "total_tokens": step.prompt_tokens + step.completion_tokens,
        },
    }


class _Listener(ThreadingHTTPServer):
    """A threaded server whose listen backlog takes a burst of clients, as a hosted API's does
    (socketserver's default of 5 drops the rest of a burst's SYNs, which the client resends after
    a second)."""

    daemon_threads = True
    request_queue_size = 128


@contextmanager
def serve(
    steps: Iterable[Step] = (),
    default: Step | None = None,
    responder: Callable[[dict[str, Any]], Step] | None = None,
) -> Iterator[ScriptedServer]:
    """Run a ScriptedServer on a free local port for the duration of the block."""
    scripted = ScriptedServer(steps=list(steps), default=default, responder=responder)
    httpd = _Listener(("127.0.0.1", 0), _handler(scripted))
    scripted.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield scripted
    finally:
        scripted._closing.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
