"""The LLM gateway: how a coding agent inside a sandbox talks to a model without a key or a network.

The host runs a small HTTP server speaking the OpenAI chat-completions API on a Unix socket in a
fresh directory of its own (mode 0700; the socket file itself 0666 so the sandbox's unprivileged
user can connect through the bind mount). A sandbox job gets the socket (`Job.gateway_socket`: the
docker backend mounts that one file; there is still no network) and a session token in its
environment; the token is not a key: it only names the session, which

- belongs to one node: every call is recorded in the archive under it (`record`), and a child's
  self-modification calls move to the child once it exists;
- has a token budget: a call once the session has spent it is refused with HTTP 429 and a message
  saying so (calls already in flight finish);
- ends with its evaluation: later calls with its token get 401.

Upstream, calls go through the project's LLM client (agent/llm.py: retries, timeouts, the run's
cost and token caps), which alone holds the API key. Nothing the gateway sends back carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from agent.ledger import Ledger
from agent.llm import FailedAttempt, LLMClient, LLMError
from agent.llm_settings import LLMSettings
from agent.mutation import BudgetExhausted, LLMCallRecord, store_call
from archive import Archive
from sandboxes.base import Job

TOKEN_ENV = "CLADE_LLM_TOKEN"
"""The job's environment variable holding its session token."""
SOCKET_NAME = "llm.sock"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_MESSAGES = 2000

GatewayRecorder = Callable[[LLMCallRecord, "int | None"], "int | None"]
"""Stores one call under a node (None: no node) and charges it to the run; returns the call's id."""


@dataclass
class Session:
    """One evaluation's (or one self-modification's) access to the LLM."""

    token: str
    node_id: int | None
    budget_tokens: int
    purpose: str
    model: str
    socket_path: str
    tokens_used: int = 0
    cost: float = 0.0
    call_ids: list[int] = field(default_factory=list)
    calls: int = 0
    refused: int = 0
    open: bool = True

    def attach(self, job: Job) -> Job:
        """`job` with this session's socket and token (for benchmarks.evaluate's `attach`)."""
        return replace(job, gateway_socket=self.socket_path, env={**job.env, TOKEN_ENV: self.token})


class GatewayError(Exception):
    """An HTTP error answer: status and a one-line message for the agent."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class Gateway:
    """The host side: a Unix-socket HTTP server, its sessions, and the upstream LLM client."""

    def __init__(
        self, settings: LLMSettings, record: GatewayRecorder, seed: int = 0, ledger: Ledger | None = None
    ) -> None:
        self.settings, self.record, self.seed = settings, record, seed
        self.ledger = ledger
        """The run's ledger, shared with the loop's own LLM client; None: the upstream client's own."""
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._client: LLMClient | None = None
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._directory: Path | None = None
        self.exhausted: str | None = None
        """Why the run's cost or token cap refused a call, once it has."""

    # ---- lifecycle ----

    @property
    def socket_path(self) -> str:
        if self._directory is None:
            raise RuntimeError("the gateway is not started: call start() first")
        return str(self._directory / SOCKET_NAME)

    def start(self) -> Gateway:
        self._directory = Path(tempfile.mkdtemp(prefix="clade-gateway-"))  # 0700 from mkdtemp
        loop_thread = threading.Thread(target=self._loop.run_forever, name="clade-gateway-llm", daemon=True)
        loop_thread.start()
        self._client = self._call(self._make_client())
        server = _Server(self.socket_path, _handler(self))
        os.chmod(self.socket_path, 0o666)  # the sandbox's user (nobody) connects through the mount
        self._server = server
        serve_thread = threading.Thread(target=server.serve_forever, name="clade-gateway-http", daemon=True)
        serve_thread.start()
        self._threads = [loop_thread, serve_thread]
        return self

    async def _make_client(self) -> LLMClient:
        return LLMClient(self.settings, self.ledger, seed=self.seed)  # its semaphore belongs to the gateway's loop

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sessions and budget ----

    @property
    def budget(self) -> Any:
        """The run's Budget (cost and token caps) of the upstream client."""
        if self._client is None:
            raise RuntimeError("the gateway is not started: call start() first")
        return self._client.budget

    def check_budget(self) -> None:
        """Raise BudgetExhausted once the run's cost or token cap is reached."""
        self.budget.check()

    @contextlib.contextmanager
    def session(self, node_id: int | None, budget_tokens: int, purpose: str) -> Iterator[Session]:
        """A session for one evaluation or self-modification; closed (its token dead) on exit."""
        rng = random.Random(f"{self.seed}:{node_id}:{purpose}:{len(self._sessions)}")
        models = self.settings.models
        model = rng.choices([m.name for m in models], weights=[m.weight for m in models])[0]
        token = secrets.token_urlsafe(24)
        opened = Session(token, node_id, budget_tokens, purpose, model, self.socket_path)
        with self._lock:
            self._sessions[token] = opened
        try:
            yield opened
        finally:
            with self._lock:
                opened.open = False
                self._sessions.pop(token, None)

    # ---- one call ----

    def complete(self, token: str, body: Any) -> dict[str, Any]:
        """Answer one chat-completions request; GatewayError for every refusal."""
        with self._lock:
            session = self._sessions.get(token)
        if session is None or not session.open:
            raise GatewayError(401, "unknown_session", "no open gateway session has this token")
        messages, max_tokens = _parse_request(body)
        with self._lock:
            if session.tokens_used >= session.budget_tokens:
                session.refused += 1
                raise GatewayError(
                    429,
                    "budget_exceeded",
                    f"the token budget of this {session.purpose} is spent: {session.tokens_used} of "
                    f"{session.budget_tokens} tokens used; no further LLM calls are answered",
                )
            session.calls += 1
        limit = min(max_tokens, self.settings.max_output_tokens) if max_tokens else None

        def failed(attempt: FailedAttempt) -> None:
            self._store(session, attempt.record(messages, f"agent:{session.purpose}"))

        try:
            reply = self._call(self._upstream().complete(session.model, messages, failed, limit))
        except BudgetExhausted as exc:
            self.exhausted = str(exc)
            raise GatewayError(429, "run_budget_exhausted", str(exc)) from None
        except LLMError as exc:
            raise GatewayError(502, f"upstream_{exc.kind}", f"the model did not answer: {exc}") from None
        tokens = reply.prompt_tokens + reply.completion_tokens
        with self._lock:
            session.tokens_used += tokens
            session.cost += reply.cost
        record = reply.record(messages, f"agent:{session.purpose}")
        self._store(session, record)
        return {
            "id": f"clade-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "model": reply.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": tokens,
            },
        }

    def _store(self, session: Session, record: LLMCallRecord) -> None:
        call_id = self.record(record, session.node_id)
        if call_id is not None:
            with self._lock:
                session.call_ids.append(call_id)

    def _upstream(self) -> LLMClient:
        if self._client is None:
            raise RuntimeError("the gateway is not started: call start() first")
        return self._client

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _parse_request(body: Any) -> tuple[list[dict[str, str]], int | None]:
    if not isinstance(body, dict):
        raise GatewayError(400, "bad_request", "the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise GatewayError(400, "bad_request", f"`messages` must be a list of 1 to {MAX_MESSAGES} messages")
    clean = []
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise GatewayError(400, "bad_request", "each message needs a string `role` and a string `content`")
        clean.append({"role": message["role"], "content": message["content"]})
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise GatewayError(400, "bad_request", "`max_tokens` must be a positive integer")
    return clean, max_tokens


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "clade-gateway"

        def log_message(self, format: str, *args: Any) -> None:  # calls are recorded in the archive
            pass

        def address_string(self) -> str:  # a Unix socket's peer has no host:port
            return "sandbox"

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                data = [{"id": m.name, "object": "model"} for m in gateway.settings.models]
                self._send(200, {"object": "list", "data": data})
            else:
                self._send(404, _error("not_found", f"no route {self.path}"))

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, _error("not_found", f"no route {self.path}; use /v1/chat/completions"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(413, _error("too_large", f"request body over {MAX_BODY_BYTES} bytes"))
                return
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            try:
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    raise GatewayError(400, "bad_request", "the request body is not JSON") from None
                self._send(200, gateway.complete(token, body))
            except GatewayError as exc:
                self._send(exc.status, _error(exc.kind, str(exc)))

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the agent was killed mid-call
                pass

    return Handler


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def archive_recorder(archive: Archive, run_id: int) -> GatewayRecorder:
    """Store gateway calls in `archive` under the run and the session's node (which charges the run)."""

    def record(call: LLMCallRecord, node_id: int | None) -> int | None:
        return store_call(archive, run_id, call, node_id)  # which charges the run in the same transaction

    return record
