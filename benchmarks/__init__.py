"""Benchmarks: the task contract, built-in tasks, and evaluation through a sandbox."""

from benchmarks.evaluate import Evaluation, evaluate
from benchmarks.registry import load_task, task_names
from benchmarks.task import Check, Stage, Task, TaskError

__all__ = ["Check", "Evaluation", "Stage", "Task", "TaskError", "evaluate", "load_task", "task_names"]
