"""LLM settings of a run, from RunConfig: the top-level options (`models`, `api_base`,
`api_key_env`, `model_selection`, `max_cost`, `max_tokens`) and the tuning knobs under the config
file's `[extra.llm]` table. Checked before a run starts, so a typo is a one-paragraph error and
exit 2 rather than a run whose every proposal fails."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from agent.config import DEFAULT_LLM_CONCURRENCY, ConfigError, RunConfig
from agent.ensemble import ModelSpec, parse_model

LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
"""Set before litellm is imported: use the bundled price map, never fetch one at import."""


@dataclass(frozen=True)
class LLMSettings:
    models: tuple[ModelSpec, ...]
    api_base: str | None = None
    api_key_env: str | None = None
    model_selection: str = "weights"
    max_cost: float | None = None
    max_tokens: int | None = None
    # [extra.llm] knobs:
    timeout_s: float = 120.0
    """Hard limit on one HTTP call; a call past it counts as a timeout and is retried."""
    max_retries: int = 4
    """Retries of one call on 429, 5xx, timeouts and dropped connections."""
    backoff_s: float = 1.0
    """First retry delay; doubled each retry (with jitter), capped at 60 s."""
    concurrency: int = DEFAULT_LLM_CONCURRENCY
    """Calls in flight at once, over all models."""
    temperature: float = 0.8
    max_output_tokens: int = 2048
    """Completion limit per call."""
    context_tokens: int | None = None
    """The model's context window; litellm's model table when unset, else 8192."""
    edit_format: str = "auto"
    """`diff` (SEARCH/REPLACE), `whole` (rewrite the file), or `auto` (mostly diff)."""
    crossover_rate: float = 0.1
    """Share of proposals that combine two parents."""
    repair_rounds: int = 3
    """Replies per proposal: the first plus follow-ups that explain why an edit failed."""
    feedback_chars: int = 2000
    """The parent's evaluation feedback (stderr, traceback) is cut to its last this-many characters."""
    transport: str = "auto"
    """`auto`: `openai/NAME` with an `api_base` goes over a direct HTTP call (no litellm import),
    anything else through litellm; `litellm`: every call through litellm."""

    def api_key(self) -> str | None:
        """The key from `api_key_env`; a placeholder for keyless local servers; else None (litellm
        then reads the provider's usual variable)."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        if self.api_base:
            return os.environ.get("OPENAI_API_KEY") or "no-key"
        return None


def _knob_names() -> list[str]:
    top = {"models", "api_base", "api_key_env", "model_selection", "max_cost", "max_tokens"}
    return sorted(f.name for f in fields(LLMSettings) if f.name not in top)


def settings_from_config(config: RunConfig) -> LLMSettings:
    """LLMSettings for a run; ConfigError for anything that cannot work."""
    raw = config.extra.get("llm", {}) if isinstance(config.extra, Mapping) else {}
    if not isinstance(raw, Mapping):
        raise ConfigError("`extra.llm` in the config file must be a table of LLM settings")
    knobs = _knob_names()
    unknown = sorted(set(raw) - set(knobs))
    if unknown:
        raise ConfigError(f"unknown LLM settings {unknown} under [extra.llm]; known settings are {knobs}")
    defaults = LLMSettings(models=())
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(defaults, name)
        expected = type(default) if default is not None else int
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"[extra.llm] {name} must be of type {expected.__name__}, not {value!r}")
        values[name] = value
    settings = LLMSettings(
        models=tuple(parse_model(m) for m in config.models),
        api_base=config.api_base,
        api_key_env=config.api_key_env,
        model_selection=config.model_selection,
        max_cost=config.max_cost,
        max_tokens=config.max_tokens,
        **values,
    )
    _check(settings)
    return settings


def _check(s: LLMSettings) -> None:
    if s.timeout_s <= 0 or s.backoff_s < 0 or s.max_retries < 0:
        raise ConfigError("[extra.llm] timeout_s must be positive, backoff_s and max_retries 0 or more")
    if s.concurrency < 1 or s.max_output_tokens < 1 or s.repair_rounds < 1:
        raise ConfigError("[extra.llm] concurrency, max_output_tokens and repair_rounds must be at least 1")
    if not 0 <= s.crossover_rate <= 1:
        raise ConfigError(f"[extra.llm] crossover_rate must lie in [0, 1], not {s.crossover_rate}")
    if s.edit_format not in ("auto", "diff", "whole"):
        raise ConfigError(f"[extra.llm] edit_format must be auto, diff or whole, not {s.edit_format!r}")
    if s.transport not in ("auto", "litellm"):
        raise ConfigError(f"[extra.llm] transport must be auto or litellm, not {s.transport!r}")
    if s.api_key_env is not None and not s.api_key_env.replace("_", "").isalnum():
        raise ConfigError(f"--api-key-env takes the name of an environment variable, not {s.api_key_env!r}")
    if s.api_key_env and not os.environ.get(s.api_key_env):
        raise ConfigError(
            f"--api-key-env names {s.api_key_env}, but that environment variable is not set (or empty); "
            f"export it before the run, or leave --api-key-env out to use the provider's usual variable"
        )
    if s.api_base is not None:
        parsed = urllib.parse.urlparse(s.api_base)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"--api-base {s.api_base!r} is not an http(s) URL; an OpenAI-compatible server's base "
                "looks like http://127.0.0.1:8080/v1"
            )


def check_models(settings: LLMSettings) -> None:
    """Each model string names a provider litellm knows (imports litellm, unless every model is an
    `openai/NAME` at an `api_base`, which the direct HTTP transport serves)."""
    from agent.llm_transport import uses_http

    for spec in settings.models:
        if uses_http(settings, spec.name):
            continue
        litellm = import_litellm()
        try:
            litellm.get_llm_provider(spec.name, api_base=settings.api_base)
        except Exception as exc:  # litellm raises its own BadRequestError with a long text
            hint = (
                f"for an OpenAI-compatible server at {settings.api_base} write openai/{spec.name}"
                if settings.api_base
                else "write provider/model, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
                "gemini/gemini-1.5-flash, ollama/llama3, openrouter/<vendor>/<model>"
            )
            first = str(exc).splitlines()[0][:200]
            raise ConfigError(f"model {spec.name!r} names no provider litellm knows ({first}); {hint}") from None


def check_reachable(api_base: str, timeout_s: float = 5.0) -> None:
    """Any HTTP answer from the server counts; a refused or silent one is bad input before a run."""
    url = api_base.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answered (401, 404, ...): reachable
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"the server at --api-base {api_base} does not answer ({reason}); start it first "
            "(e.g. `python -m llama_cpp.server --model model.gguf`, `ollama serve`, `vllm serve ...`) "
            "or fix the URL"
        ) from None


def import_litellm() -> Any:
    """litellm, imported on first use (it takes seconds) with the local price map."""
    for key, value in LITELLM_ENV.items():
        os.environ.setdefault(key, value)
    import logging
    import warnings

    # litellm's pydantic models warn about `ReadOnly` TypedDict items on first use: noise to a user.
    warnings.filterwarnings("ignore", message=r".*`ReadOnly` qualifier.*", category=UserWarning)
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # providers that lack an option (temperature on o1, ...) still answer
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return litellm
