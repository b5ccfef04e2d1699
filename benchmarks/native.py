"""Native task directories: a `task.toml`, a seed, a sandbox harness and a host-side check.

```
my_task/
  task.toml        name, description, metric, stages, files, limits, baselines (below)
  seed.py          the starting program (EVOLVE-BLOCK markers); the sandbox sees it as main_file
  harness.py       runs in the sandbox as `python harness.py STAGE`; writes raw JSON to result.json
  check.py         runs on the host: check(stage, raw) -> {"score", "metrics"[, "descriptors"]}
  data/...         anything listed in `files` is placed beside the harness
```

`check(stage, raw)` receives the stage name and the parsed `result.json` (untrusted: anything
the candidate could write). It returns a dict with a float `score` (higher is better) and
`metrics`, or a `benchmarks.Check`; it raises `ValueError` to reject the result as invalid. An
optional `combine(checks)` turns the passed stages' `Check`s into the node's verdict; by default
the metrics of all stages are merged and the last stage's score counts. The check is the task
author's code and runs with the user's rights, like any code in a directory you choose to run;
only the candidate and the harness are treated as hostile.
"""

from __future__ import annotations

import hashlib
import importlib.util
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.task import Baseline, Check, Stage, Task, TaskError
from sandboxes.base import Limits

MANIFEST = "task.toml"
MAX_TASK_BYTES = 32 * 1024 * 1024
_KEYS = {
    "name",
    "description",
    "metric",
    "seed",
    "main_file",
    "harness",
    "check",
    "files",
    "gpu",
    "packages",
    "tolerance",
    "limits",
    "stages",
    "baselines",
}


def _table(data: Mapping[str, Any], key: str, kind: type, where: Path, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        raise TaskError(f"{where}: `{key}` is required")
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TaskError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}")
    return value


def read_file(directory: Path, relative: str, what: str) -> bytes:
    """A file inside the task directory (never outside it), as bytes; TaskError when unreadable."""
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise TaskError(f"{what} {relative!r} lies outside the task directory {directory}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TaskError(f"cannot read {what} {path}: {exc.strerror}") from None


def import_host_module(path: Path, name: str) -> ModuleType:
    """Import a task's host-side Python file under a private module name."""
    spec = importlib.util.spec_from_file_location(
        f"clade_task_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}_{name}", path
    )
    if spec is None or spec.loader is None:
        raise TaskError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TaskError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    return module


def as_check(value: Any) -> Check:
    """A check function's return value as a Check: a Check, or a dict of score/metrics/descriptors."""
    if isinstance(value, Check):
        return value
    if not isinstance(value, Mapping) or "score" not in value:
        raise TypeError(f"check must return a Check or a dict with `score` and `metrics`, not {value!r}"[:300])
    return Check(
        valid=True,
        score=value["score"],
        metrics=dict(value.get("metrics", {})),
        descriptors=dict(value.get("descriptors", {})),
    )


def merge_checks(checks: Sequence[Check]) -> Check:
    """Metrics (and descriptors) of every stage merged, the last stage's score."""
    metrics: dict[str, float] = {}
    descriptors: dict[str, float] = {}
    for check in checks:
        metrics.update(check.metrics)
        descriptors.update(check.descriptors)
    return Check(valid=True, score=checks[-1].score, metrics=metrics, descriptors=descriptors)


class NativeTask(Task):
    """A task defined by a directory with a `task.toml` (see the module docstring)."""

    score_note = (
        "native task: its harness imports the program into its own process, so this score is only as "
        "strong as that harness"
    )

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        manifest = self.directory / MANIFEST
        try:
            data = tomllib.loads(read_file(self.directory, MANIFEST, "task manifest").decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TaskError(f"{manifest} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise TaskError(f"{manifest}: unknown keys {unknown}; known keys are {sorted(_KEYS)}")
        self.name = _table(data, "name", str, manifest, self.directory.name)
        self.description = _table(data, "description", str, manifest)
        self.metric = _table(data, "metric", str, manifest)
        self.main_file = _table(data, "main_file", str, manifest, "program.py")
        self.gpu = _table(data, "gpu", bool, manifest, False)
        tolerance = data.get("tolerance", 1e-9)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
            raise TaskError(f"{manifest}: `tolerance` must be a non-negative number, not {tolerance!r}")
        self.tolerance = float(tolerance)
        self.packages = tuple(_table(data, "packages", list, manifest, []))
        self.limits = self._limits(_table(data, "limits", dict, manifest, {}), manifest)
        self._stages = self._parse_stages(_table(data, "stages", list, manifest, [{"name": "main"}]), manifest)
        self._seed = read_file(self.directory, _table(data, "seed", str, manifest, "seed.py"), "seed").decode()
        harness = _table(data, "harness", str, manifest, "harness.py")
        self._files = {"harness.py": read_file(self.directory, harness, "harness")}
        for relative in _table(data, "files", list, manifest, []):
            self._files[str(relative)] = read_file(self.directory, str(relative), "task file")
        if sum(map(len, self._files.values())) > MAX_TASK_BYTES:
            raise TaskError(f"{manifest}: the files for the sandbox exceed {MAX_TASK_BYTES >> 20} MiB")
        if self.main_file in self._files:
            raise TaskError(f"{manifest}: a task file is named like the program ({self.main_file})")
        check_name = _table(data, "check", str, manifest, "check.py")
        self._check_source = read_file(self.directory, check_name, "check")
        module = import_host_module(self.directory / check_name, "check")
        check_fn = getattr(module, "check", None)
        if not callable(check_fn):
            raise TaskError(f"{self.directory / check_name} defines no check(stage, raw) function")
        self._check_fn: Callable[[str, Any], Any] = check_fn
        self._combine_fn: Callable[[list[Check]], Any] | None = getattr(module, "combine", None)
        self._baselines = [self._baseline(entry, manifest) for entry in _table(data, "baselines", list, manifest, [])]

    @staticmethod
    def _limits(values: Mapping[str, Any], where: Path) -> Limits:
        known = {f.name for f in fields(Limits)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TaskError(f"{where}: unknown limits {unknown}; known limits are {sorted(known)}")
        try:
            return Limits(**values)
        except TypeError as exc:
            raise TaskError(f"{where}: bad limits: {exc}") from None

    @staticmethod
    def _parse_stages(entries: list[Any], where: Path) -> tuple[Stage, ...]:
        stages = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise TaskError(f"{where}: each [[stages]] entry needs a `name`, got {entry!r}")
            try:
                stages.append(Stage(entry["name"], float(entry.get("timeout_s", 60.0)), entry.get("threshold")))
            except (TypeError, ValueError) as exc:
                raise TaskError(f"{where}: bad stage {entry!r}: {exc}") from None
        if not stages:
            raise TaskError(f"{where}: a task needs at least one stage")
        return tuple(stages)

    def _baseline(self, entry: Any, where: Path) -> Baseline:
        if not isinstance(entry, dict) or not {"name", "file", "expected"} <= set(entry):
            raise TaskError(f"{where}: each [[baselines]] entry needs `name`, `file` and `expected`")
        source = read_file(self.directory, str(entry["file"]), "baseline").decode()
        return Baseline(str(entry["name"]), source, dict(entry["expected"]), float(entry.get("abs_tol", 1e-6)))

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: self._seed}

    def stages(self) -> Sequence[Stage]:
        return self._stages

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return dict(self._files)

    def check(self, stage: Stage, raw: Any) -> Check:
        try:
            return as_check(self._check_fn(stage.name, raw))
        except ValueError as exc:
            return Check.invalid(str(exc) or type(exc).__name__)
        except Exception as exc:  # the raw result is untrusted: a check that trips on it rejects it
            return Check.invalid(f"check failed on this result: {type(exc).__name__}: {exc}")

    def combine(self, checks: Sequence[Check]) -> Check:
        if self._combine_fn is None:
            return merge_checks(checks)
        return as_check(self._combine_fn(list(checks)))

    def baselines(self) -> Sequence[Baseline]:
        return tuple(self._baselines)

    def content_hash(self) -> str:
        digest = hashlib.sha256(super().content_hash().encode())
        digest.update(self._check_source)
        return digest.hexdigest()[:16]
