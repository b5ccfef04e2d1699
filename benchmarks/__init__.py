"""Benchmarks: the task contract, built-in tasks, and evaluation through a sandbox."""

from benchmarks.evaluate import Evaluation, evaluate
from benchmarks.registry import load_task, task_names, task_ref
from benchmarks.task import Baseline, Check, Stage, Task, TaskError

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
