"""How one chat completion reaches a model: litellm (any provider), or a direct HTTP call for an
OpenAI-compatible server (`openai/NAME` with an `api_base`: llama.cpp, vLLM, Ollama, a proxy),
which never imports litellm (seconds of start-up and ~150 MB) and prices calls from litellm's
bundled table read as data (agent/price_table.py).

Both hand back an object shaped like an OpenAI response (`choices[0].message.content`,
`choices[0].finish_reason`, `usage.prompt_tokens`, `usage.completion_tokens`) and raise
exceptions whose class names and `status_code` agent.llm's `_kind` maps onto retry kinds.
`[extra.llm] transport` picks: `auto` (default: direct where it applies), `litellm`, `http`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from types import SimpleNamespace
from typing import Any, Protocol

from agent import price_table
from agent.llm_settings import LLMSettings, import_litellm


class Transport(Protocol):
    async def acompletion(self, **kwargs: Any) -> Any: ...
    def cost(self, response: Any, model: str) -> float | None: ...
    def cost_per_token(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None: ...
    def context_tokens(self, model: str) -> int | None: ...
    async def aclose(self) -> None: ...


def uses_http(settings: LLMSettings, model: str) -> bool:
    """Whether calls to `model` go over the direct HTTP transport."""
    if settings.transport == "litellm":
        return False
    return bool(settings.api_base) and model.startswith("openai/")


class LiteLLMTransport:
    async def acompletion(self, **kwargs: Any) -> Any:
        return await import_litellm().acompletion(**kwargs)

    def cost(self, response: Any, model: str) -> float | None:
        try:
            return float(import_litellm().completion_cost(completion_response=response))
        except Exception:  # a model missing from the price table (local servers)
            return None

    def cost_per_token(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        try:
            prompt_cost, reply_cost = import_litellm().cost_per_token(
                model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
            return float(prompt_cost) + float(reply_cost)
        except Exception:  # unpriced
            return None

    def context_tokens(self, model: str) -> int | None:
        try:
            info = import_litellm().get_model_info(model)
            return int(info.get("max_input_tokens") or info.get("max_tokens"))
        except Exception:  # not in litellm's table (local servers, new models)
            return None

    async def aclose(self) -> None:
        """Nothing to release: litellm keeps its own HTTP clients."""


class APIStatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


class APIConnectionError(Exception):
    """Connection error: the server could not be reached or dropped the connection."""


class APITimeoutError(Exception):
    """Timeout: no complete answer within the call's limit."""


UNUSED_EXTRAS = ("httpx._main", "trio", "h2")
"""What httpx and httpcore import when installed that this transport never uses: httpx's command
line (click, rich.syntax, pygments), trio (calls run on asyncio) and HTTP/2 (never enabled).
Together a third of the CPU time and a quarter of the memory that importing httpx costs."""


def import_httpx() -> Any:
    """httpx (and httpcore), without UNUSED_EXTRAS: each is kept out for the import only, so
    that code which wants one of them later still gets it."""
    if "httpcore" in sys.modules and "httpx" in sys.modules:
        return sys.modules["httpx"]
    blocked = [name for name in UNUSED_EXTRAS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import httpcore  # noqa: F401  # httpx imports it on its first client; its optional imports run now
        import httpx
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return httpx


class HTTPTransport:
    """POST {api_base}/chat/completions over one pooled httpx client per event loop."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    def _client(self) -> Any:
        httpx = import_httpx()
        loop = asyncio.get_running_loop()
        for old in [other for other in self._clients if other.is_closed()]:
            del self._clients[old]  # its loop is gone: so are its connections
        if loop not in self._clients:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=self.settings.concurrency)
            verify = _no_tls() if str(self.settings.api_base).startswith("http://") else True
            self._clients[loop] = httpx.AsyncClient(timeout=self.settings.timeout_s, limits=limits, verify=verify)
        return self._clients[loop]

    async def acompletion(self, **kwargs: Any) -> Any:
        httpx = import_httpx()
        body = {
            "model": kwargs["model"].split("/", 1)[1],
            "messages": kwargs["messages"],
            "temperature": kwargs.get("temperature"),
            "max_tokens": kwargs.get("max_tokens"),
        }
        headers = {"Authorization": f"Bearer {kwargs['api_key']}"} if kwargs.get("api_key") else {}
        url = str(kwargs["api_base"]).rstrip("/") + "/chat/completions"
        try:
            answer = await self._client().post(url, json=body, headers=headers, timeout=kwargs.get("timeout"))
        except httpx.TimeoutException as exc:
            raise APITimeoutError(f"{type(exc).__name__} from {url}") from None
        except httpx.TransportError as exc:
            raise APIConnectionError(f"Connection error: {type(exc).__name__} {exc}") from None
        if answer.status_code >= 400:
            raise APIStatusError(answer.status_code, _error_text(answer.text))
        try:
            return json.loads(answer.content, object_hook=lambda d: SimpleNamespace(**d))
        except ValueError:
            raise APIStatusError(502, f"the server's reply is not JSON: {answer.text[:200]!r}") from None

    def cost(self, response: Any, model: str) -> float | None:
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        return price_table.price(model, prompt, completion)

    def cost_per_token(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        return price_table.price(model, prompt_tokens, completion_tokens)

    def context_tokens(self, model: str) -> int | None:
        return price_table.context_tokens(model)

    async def aclose(self) -> None:
        """Closes this loop's client; a closed loop's client is dropped (its sockets go with it)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        self._clients = {loop: other for loop, other in self._clients.items() if not loop.is_closed()}
        if client is not None:
            await client.aclose()


def _no_tls() -> ssl.SSLContext:
    """The TLS context of a client for a plain-http server: it verifies as any client does but
    trusts no certificate (loading the CA bundle costs ~20 ms of CPU per client, and a client that
    follows no redirect never speaks TLS to an http:// base)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _error_text(text: str) -> str:
    try:
        doc = json.loads(text)
        message = doc["error"]["message"] if isinstance(doc.get("error"), dict) else doc.get("error")
        return str(message or text)[:300]
    except (ValueError, AttributeError, KeyError, TypeError):
        return text[:300]
