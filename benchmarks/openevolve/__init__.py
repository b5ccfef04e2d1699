"""OpenEvolve-format task directories, run unchanged.

OpenEvolve (github.com/algorithmicsuperintelligence/openevolve) describes a task with:

```
my_task/
  initial_program.py   the seed, with # EVOLVE-BLOCK-START / # EVOLVE-BLOCK-END markers
  evaluator.py         evaluate(program_path) -> dict of metrics (or an EvaluationResult);
                       optionally evaluate_stage1/2/3(program_path) for a cascade
  config.yaml          optional: evaluator.timeout, evaluator.cascade_evaluation,
                       evaluator.cascade_thresholds, database.feature_dimensions, prompt.system_message
  ...                  any other files (data, helpers) the evaluator reads
```

The whole directory (minus `initial_program.py`) goes into the sandbox, where a small harness
imports `evaluator.py` and calls `evaluate(<absolute path of the candidate>)`: the evaluator is
never run on the host. The host checks the returned metrics: every value must be a real finite
number (a bool, a string, NaN or infinity makes the result invalid, naming the key). The score is
`combined_score`, or the metric named by `evaluator.score_metric` in config.yaml (a Cladeforge
extension), or, as OpenEvolve does, the mean of the numeric metrics that are not feature
dimensions. Metrics named in `database.feature_dimensions` become behaviour descriptors.
With `evaluate_stage1` present (and `cascade_evaluation` not false) the stages are
`evaluate_stage1`, `evaluate_stage2`, ... with `cascade_thresholds` between them, and the
metrics of the stages run are merged, as in OpenEvolve.

Trust: the evaluator imports the program into its own process, so the score is only as strong
as the evaluator (a program can read the evaluator's data, patch it or write its result); the
output of `clade eval`, `show` and the report says so (`Task.score_note`). The opt-in isolated
mode, `evaluator.isolate_program: true` in config.yaml (a Cladeforge addition), makes it a
judged job: the evaluator gets the path of a proxy module (proxy.py) whose functions forward
each call to the candidate's program running in its own process, under another uid, over the
channel (sandboxes/channel.py). It suits evaluators that import the program and call its
functions; one that runs the program as a script needs the default mode.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.evaluate import finite_metrics
from benchmarks.native import MAX_TASK_BYTES, read_file
from benchmarks.task import Check, Stage, Task, TaskError, fault
from sandboxes.base import PYTHON

PROGRAM, EVALUATOR, CONFIG = "initial_program.py", "evaluator.py", "config.yaml"
DEFAULT_SCORE_KEY = "combined_score"
DEFAULT_TIMEOUT_S = 300.0
_SKIPPED_DIRS = {"__pycache__", "openevolve_output", ".git"}
_BUILTIN_FEATURES = {"complexity", "diversity"}
NON_FINITE = ("nan", "inf", "-inf")
PROXY = "clade_program_proxy.py"
SHARED_NOTE = (
    "OpenEvolve evaluator: it imports the program into its own process, so this score is only as strong "
    "as that evaluator (evaluator.isolate_program: true runs the program in a separate process)"
)


def is_openevolve_dir(directory: Path) -> bool:
    return (directory / PROGRAM).is_file() and (directory / EVALUATOR).is_file()


def read_config(directory: Path) -> dict[str, Any]:
    """config.yaml as a dict ({} when absent); TaskError when unreadable or PyYAML is missing."""
    path = directory / CONFIG
    if not path.is_file():
        return {}
    try:
        import yaml
    except ImportError:
        raise TaskError(f"{path} needs PyYAML to read: pip install 'cladeforge[tasks]'") from None
    try:
        loaded = yaml.safe_load(read_file(directory, CONFIG, "config"))
    except yaml.YAMLError as exc:
        raise TaskError(f"{path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TaskError(f"{path} must hold a mapping at the top level")
    return loaded


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, Mapping):
        raise TaskError(f"{CONFIG}: `{name}` must be a mapping")
    return value


def _top_level_functions(source: str, path: Path) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TaskError(f"{path} is not valid Python: {exc}") from None
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _task_files(directory: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if not path.is_file() or path.is_symlink() or relative.as_posix() == PROGRAM:
            continue
        content = read_file(directory, relative.as_posix(), "task file")
        total += len(content)
        if total > MAX_TASK_BYTES:
            raise TaskError(f"{directory}: the task's files exceed {MAX_TASK_BYTES >> 20} MiB")
        files[relative.as_posix()] = content
    return files


class OpenEvolveTask(Task):
    """An OpenEvolve directory (see the module docstring)."""

    main_file = "program.py"
    _harness_name = "clade_openevolve_harness.py"

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        config = read_config(self.directory)
        evaluator, database, prompt = (_section(config, k) for k in ("evaluator", "database", "prompt"))
        self.name = self.directory.name
        self.score_key = str(evaluator.get("score_metric", DEFAULT_SCORE_KEY))
        self.metric = self.score_key
        self.features = tuple(str(f) for f in database.get("feature_dimensions") or () if f not in _BUILTIN_FEATURES)
        message = prompt.get("system_message")
        self.description = (
            str(message)
            if message
            else f"An OpenEvolve task ({self.directory}): improve the program; the evaluator's "
            f"`{self.score_key}` is the score."
        )
        self._seed = read_file(self.directory, PROGRAM, "initial program").decode()
        self._files = _task_files(self.directory)
        for name in (self.main_file, self._harness_name):
            if name in self._files:
                raise TaskError(f"{self.directory}: a task file named {name} would shadow Cladeforge's own")
        self._files[self._harness_name] = resources.files(__package__).joinpath("harness.py").read_bytes()
        self.judged = evaluator.get("isolate_program") is True
        self.score_note = None if self.judged else SHARED_NOTE
        if self.judged:
            if PROXY in self._files:
                raise TaskError(f"{self.directory}: a task file named {PROXY} would shadow Cladeforge's own")
            self._files[PROXY] = resources.files(__package__).joinpath("proxy.py").read_bytes()
        timeout = float(evaluator.get("timeout", DEFAULT_TIMEOUT_S))
        functions = _top_level_functions(self._files[EVALUATOR].decode(), self.directory / EVALUATOR)
        self._stages = self._cascade(functions, evaluator, timeout)

    def _cascade(self, functions: set[str], evaluator: Mapping[str, Any], timeout: float) -> tuple[Stage, ...]:
        staged = [f"evaluate_stage{i}" for i in (1, 2, 3) if f"evaluate_stage{i}" in functions]
        if not staged or staged[0] != "evaluate_stage1" or evaluator.get("cascade_evaluation") is False:
            if "evaluate" not in functions:
                raise TaskError(f"{self.directory / EVALUATOR} defines no evaluate(program_path) function")
            return (Stage("evaluate", timeout_s=timeout),)
        thresholds = list(evaluator.get("cascade_thresholds") or [])
        stages = []
        for index, function in enumerate(staged):
            last = index == len(staged) - 1
            threshold = None if last or index >= len(thresholds) else float(thresholds[index])
            stages.append(Stage(function, timeout_s=timeout, threshold=threshold))
        return tuple(stages)

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: self._seed}

    def stages(self) -> Sequence[Stage]:
        return self._stages

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, self._harness_name, stage.name, PROXY if self.judged else self.main_file]

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return dict(self._files)

    def score_of(self, metrics: Mapping[str, float]) -> tuple[float | None, str | None]:
        """The score OpenEvolve would use: the score key, else the mean of non-feature metrics."""
        if self.score_key in metrics:
            return metrics[self.score_key], None
        if self.score_key != DEFAULT_SCORE_KEY:
            return None, f"the evaluator returned no {self.score_key!r} metric"
        rest = [value for key, value in metrics.items() if key not in self.features]
        if not rest:
            return None, f"the evaluator returned no {DEFAULT_SCORE_KEY!r} and no other metric"
        return sum(rest) / len(rest), None

    def _verdict(self, metrics: Mapping[str, float]) -> Check:
        score, problem = self.score_of(metrics)
        if problem is not None or score is None or not math.isfinite(score):
            return Check.invalid(problem or f"score is not finite: {score!r}")
        descriptors = {key: metrics[key] for key in self.features if key in metrics}
        return Check(valid=True, score=score, metrics=dict(metrics), descriptors=descriptors)

    def check(self, stage: Stage, raw: Any) -> Check:
        faulted = fault(raw)
        if faulted is not None:
            return faulted
        if not isinstance(raw, dict) or raw.get("function") != stage.name:
            return Check.invalid(f"result is not the output of {stage.name}()")
        returned = raw.get("metrics")
        if not isinstance(returned, dict):
            return Check.invalid(f"{stage.name}() must return a dict of metrics, not {returned!r}"[:300])
        for key, value in returned.items():
            if value in NON_FINITE:  # how the harness writes a non-finite float
                return Check.invalid(f"metric {key!r} is not finite ({value})")
        metrics, problem = finite_metrics(returned)
        if problem is not None:
            return Check.invalid(problem)
        return self._verdict(metrics)

    def combine(self, checks: Sequence[Check]) -> Check:
        merged: dict[str, float] = {}
        for check in checks:
            merged.update(check.metrics)
        return self._verdict(merged)
