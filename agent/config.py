"""Run configuration: defaults, a TOML config file, and command-line overrides."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_LLM_CONCURRENCY = 32
"""LLM requests in flight unless set. Keeping the evaluation slots fed takes latency x the
children per second they judge x LLM calls per child in flight: on two cores (about 16 children/s,
1.5 calls each) that is 24 at 1 s of latency, and real models answer in 5-60 s. A request in
flight costs a coroutine and a connection; a rate limit's 429 is retried with backoff."""


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class ConfigError(Exception):
    """A bad configuration value or file: reported as bad input (exit code 2)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored with the run so `clade resume` can rebuild it."""

    task: str
    iterations: int = 20
    """Children to propose (the seed's evaluation is extra)."""
    seed: int = 0
    """Seeds parent selection and the offline mutator; the same seed replays the same choices.
    Given explicitly, it seeds the tasks' hidden instances too, so a seeded run repeats exactly."""
    secret_seed: int | None = None
    """The hidden instances' seed of a run started without `--seed`: drawn at random by `merge`
    and stored with the run (a default of 0 would let a program re-derive the instances);
    None: they derive from `seed`."""
    selection: str | None = None
    """Parent selection strategy (see archive.selection); None: the task's default."""
    sandbox: str = "auto"
    """auto, docker or process."""
    parallel: int = field(default_factory=cores)
    """Evaluations in flight at once; default: the cores this process may use."""
    llm_concurrency: int | None = None
    """Proposals (LLM requests) in flight at once, bounded apart from evaluations; None: the
    `[extra.llm] concurrency` setting (32 unless set)."""
    novelty: float | None = None
    """Novelty filter: a child whose code embedding reaches this cosine to a program of the run is
    recorded as a duplicate and not evaluated (e.g. 0.99); None (default): off."""
    adapt: bool = True
    """Adaptive operators: a seeded bandit (agent/bandit.py) chooses each child's strategy arm
    (operator, model, prompt variant, temperature) from how earlier arms improved on their
    parents; False (`clade run --no-adapt`): the mutator's fixed mix."""
    lessons: bool = True
    """Lessons memory: a short "what worked" summary distilled from the run's archive goes into
    later LLM prompts (agent/lessons.py); False (`clade run --no-lessons`): none."""
    models: tuple[str, ...] = ()
    """LLM model strings (litellm names), optionally `name@weight`; none means the offline mutator."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server (llama.cpp, vLLM, Ollama)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (never the key itself); litellm's
    provider default (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) when unset."""
    model_selection: str = "weights"
    """How the ensemble picks a model: `weights` (fixed shares) or `ucb` (bandit on improvement)."""
    max_cost: float | None = None
    """Stop the run cleanly once LLM calls have cost this many US dollars."""
    max_tokens: int | None = None
    """Stop the run cleanly once LLM calls have used this many tokens (prompt + completion)."""
    cluster: str | None = None
    """Where evaluations run: None on this machine, `ray` on a Ray cluster (sandboxes/ray_backend.py)."""
    ray_address: str = "auto"
    """The Ray cluster with `cluster = "ray"`: `auto` (RAY_ADDRESS, or the one started here),
    `ray://HOST:PORT` (Ray Client) or `HOST:PORT` (the head's GCS, from a node of the cluster)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Settings for later parts (LLM budgets, etc.), kept verbatim."""

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ConfigError(f"iterations must be 0 or more, not {self.iterations}")
        if self.parallel < 1:
            raise ConfigError(f"parallel must be at least 1, not {self.parallel}")
        if self.llm_concurrency is not None and self.llm_concurrency < 1:
            raise ConfigError(f"llm_concurrency must be at least 1, not {self.llm_concurrency}")
        if self.novelty is not None and not (isinstance(self.novelty, (int, float)) and 0 < self.novelty <= 1):
            raise ConfigError(f"novelty is a cosine threshold in (0, 1], not {self.novelty!r}")
        if self.cluster not in (None, "ray"):
            raise ConfigError(f"cluster must be `ray` (or unset: this machine), not {self.cluster!r}")
        if self.cluster is None and self.ray_address != "auto":
            raise ConfigError(f"ray_address {self.ray_address!r} is for a Ray cluster: add --cluster ray")
        if self.ray_address != "auto":  # only a Ray address pays for importing the Ray backend
            from sandboxes.ray_backend import address_problem

            if not isinstance(self.ray_address, str) or address_problem(self.ray_address) is not None:
                raise ConfigError(address_problem(str(self.ray_address)) or f"bad ray_address {self.ray_address!r}")
        ray = self.extra.get("ray", {}) if isinstance(self.extra, Mapping) else {}
        if not isinstance(ray, Mapping) or not isinstance(ray.get("build_image", True), bool):
            raise ConfigError(f"[extra.ray] build_image must be true or false, not {ray!r}")
        for name in ("adapt", "lessons"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.max_cost is not None and not self.max_cost > 0:
            raise ConfigError(f"max_cost must be a positive number of dollars, not {self.max_cost}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive number of tokens, not {self.max_tokens}")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        return merge(None, data)


def load_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def merge(base: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> RunConfig:
    """A RunConfig from a file's values overlaid with the options given (None means not given)."""
    known = {f.name for f in fields(RunConfig)}
    values = dict(base or {})
    values.update({key: value for key, value in overrides.items() if value is not None})
    if "model" in values:
        model = values.pop("model")
        values["models"] = [model] if isinstance(model, str) else model
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
    if "task" not in values:
        raise ConfigError("no task given: pass TASK or set `task` in the config file")
    values["models"] = tuple(values.get("models") or ())
    if values.get("seed") is None and values.get("secret_seed") is None:
        values["secret_seed"] = secrets.randbits(62)  # a guessable default would reveal the hidden instances
    try:
        for name, kind in (
            ("iterations", int),
            ("seed", int),
            ("secret_seed", int),
            ("parallel", int),
            ("llm_concurrency", int),
        ):
            if (
                name in values
                and values[name] is not None
                and (not isinstance(values[name], kind) or isinstance(values[name], bool))
            ):
                raise ConfigError(f"{name} must be an integer, not {values[name]!r}")
        if "max_tokens" in values and (
            not isinstance(values["max_tokens"], int) or isinstance(values["max_tokens"], bool)
        ):
            raise ConfigError(f"max_tokens must be an integer, not {values['max_tokens']!r}")
        if "max_cost" in values and (
            not isinstance(values["max_cost"], int | float) or isinstance(values["max_cost"], bool)
        ):
            raise ConfigError(f"max_cost must be a number of dollars, not {values['max_cost']!r}")
        return RunConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"bad configuration: {exc}") from None


def proposals_in_flight(config: RunConfig) -> int:
    """LLM requests in flight: `llm_concurrency`, else `[extra.llm] concurrency`, else 32. A run
    without a model proposes in an instant: one at a time, so each child samples its parents from
    the freshest archive (and the adaptive mix learns without lag)."""
    if not config.models:
        return 1
    if config.llm_concurrency is not None:
        return config.llm_concurrency
    llm = config.extra.get("llm", {}) if isinstance(config.extra, Mapping) else {}
    wanted = llm.get("concurrency") if isinstance(llm, Mapping) else None
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 1:
        return wanted
    return DEFAULT_LLM_CONCURRENCY


def ray_build_image(config: RunConfig) -> bool:
    """Whether a Ray node builds a missing sandbox image: yes unless `[extra.ray] build_image =
    false` or the driver's CLADE_RAY_BUILD_IMAGE is 0 (tests skip the build that way)."""
    from sandboxes.ray_node import BUILD_ENV

    if os.environ.get(BUILD_ENV, "").strip().lower() in ("0", "false", "no"):
        return False
    return bool(config.extra.get("ray", {}).get("build_image", True))


def with_llm_concurrency(config: RunConfig) -> RunConfig:
    """`llm_concurrency` carried into `[extra.llm] concurrency`, which sizes the LLM client."""
    if config.llm_concurrency is None:
        return config
    extra = dict(config.extra)
    llm = extra.get("llm", {})
    extra["llm"] = {**(llm if isinstance(llm, Mapping) else {}), "concurrency": config.llm_concurrency}
    return dataclasses.replace(config, extra=extra)
