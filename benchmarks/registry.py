"""Built-in tasks by name, and the loader behind `clade run` and `clade eval`."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.bin_packing import BinPacking
from benchmarks.task import Task, TaskError

BUILTIN: dict[str, Callable[[], Task]] = {
    "bin_packing": BinPacking,
}


def task_names() -> list[str]:
    return sorted(BUILTIN)


def load_task(ref: str) -> Task:
    """A task from a built-in name; raises TaskError naming the valid choices."""
    factory = BUILTIN.get(ref)
    if factory is None:
        raise TaskError(f"unknown task {ref!r}; built-in tasks are: {', '.join(task_names())}")
    return factory()
