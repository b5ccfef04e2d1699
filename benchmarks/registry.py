"""Built-in tasks by name, and the loader behind `clade run` and `clade eval`.

A task reference is a built-in name (`clade tasks`), or a path to a task directory: a native
one (with `task.toml`, see benchmarks/native.py) or an OpenEvolve one (`initial_program.py` and
`evaluator.py`, see benchmarks/openevolve). A built-in name wins over a same-named directory in
the working directory; write `./name` to mean the directory.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from pathlib import Path

from benchmarks.bin_packing import BinPacking
from benchmarks.blackbox_optimizer import BlackboxOptimizer
from benchmarks.circle_packing import CirclePacking
from benchmarks.coding_agent import CodingAgent
from benchmarks.native import MANIFEST, NativeTask
from benchmarks.openevolve import EVALUATOR, PROGRAM, OpenEvolveTask, is_openevolve_dir
from benchmarks.optimizer_discovery import OptimizerDiscovery
from benchmarks.rl_objective import RlObjective
from benchmarks.task import Task, TaskError
from benchmarks.tsp_constructive import TspConstructive

BUILTIN: dict[str, Callable[[], Task]] = {
    "bin_packing": BinPacking,
    "circle_packing": CirclePacking,
    "circle_packing_32": functools.partial(CirclePacking, 32),
    "tsp_constructive": TspConstructive,
    "blackbox_optimizer": BlackboxOptimizer,
    "optimizer_discovery": OptimizerDiscovery,
    "rl_objective": RlObjective,
    "coding_agent": CodingAgent,
}


def task_names() -> list[str]:
    return sorted(BUILTIN)


def task_ref(ref: str, relative_to: Path | None = None, *, must_exist: bool = False) -> str:
    """The reference to store with a run: a built-in name as is, a directory as an absolute path
    (a relative one taken from `relative_to`, by default the working directory). With
    `must_exist`, a path that is not there is an unknown task, named as the user wrote it."""
    if ref in BUILTIN:
        return ref
    path = Path(ref).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if must_exist and not path.exists():
        raise unknown_task(ref)
    return str(path.resolve())


def unknown_task(ref: str) -> TaskError:
    """The error for a reference that is neither a built-in name nor a path (with a close name)."""
    close = difflib.get_close_matches(ref, task_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TaskError(
        f"unknown task {ref!r}: not a built-in task ({', '.join(task_names())}) and no such directory{hint}"
    )


def load_task(ref: str) -> Task:
    """A task from a built-in name or a task directory; TaskError says what is wrong with `ref`."""
    factory = BUILTIN.get(ref)
    if factory is not None:
        return factory()
    directory = Path(ref).expanduser()
    if not directory.exists():
        raise unknown_task(ref)
    if not directory.is_dir():
        raise TaskError(f"task {ref!r} is a file; give a built-in name or a task directory")
    if (directory / MANIFEST).is_file():
        return NativeTask(directory)
    if is_openevolve_dir(directory):
        return OpenEvolveTask(directory)
    raise TaskError(
        f"{directory} is not a task directory: it needs a {MANIFEST} (native format) or "
        f"{PROGRAM} and {EVALUATOR} (OpenEvolve format)"
    )
