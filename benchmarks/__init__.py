"""Benchmarks: the task contract, built-in tasks, and evaluation through a sandbox.

The registry loads on first use (PEP 562), so importing the package does not import every
task. (`evaluate` is imported eagerly: its submodule shares the name, and a submodule import
would otherwise shadow a lazily loaded function.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from benchmarks.evaluate import Evaluation, evaluate
from benchmarks.task import Baseline, Check, Stage, Task, TaskError

if TYPE_CHECKING:
    from benchmarks.registry import load_task, task_names, task_ref

_HOMES = {
    "load_task": "benchmarks.registry",
    "task_names": "benchmarks.registry",
    "task_ref": "benchmarks.registry",
}

__all__ = [
    "Baseline",
    "Check",
    "Evaluation",
    "Stage",
    "Task",
    "TaskError",
    "evaluate",
    "load_task",
    "task_names",
    "task_ref",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
