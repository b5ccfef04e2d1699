"""`clade eval`: one program file against a task, in a sandbox, with no run and no archive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.task import TaskError

if TYPE_CHECKING:
    from benchmarks.evaluate import Evaluation


def evaluate_program(task: str, program: Path, sandbox: str, say: Callable[[str], None]) -> Evaluation:
    """Evaluate the program's text as the task's main file (the seed's other files beside it);
    `say` hears which sandbox was chosen and why. Bad input raises TaskError or SandboxError."""
    from benchmarks import evaluate, load_task
    from benchmarks.task import LLM_GATEWAY
    from sandboxes import open_sandbox

    loaded = load_task(task)
    if LLM_GATEWAY in loaded.services:  # its evaluation needs the LLM gateway, which a run provides
        raise TaskError(
            f"{loaded.name} programs are coding agents that call an LLM while they are evaluated; evaluate "
            "them in a run (`clade run coding_agent --model ... --api-base ...`) or replay an evaluated node "
            "(`clade replay NODE [--problem ID]`)"
        )
    try:
        source = program.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise TaskError(f"cannot read program file {program}: {reason}") from None
    chosen, why = open_sandbox(sandbox)
    say(why)
    files = {**loaded.seed_files(), loaded.main_file: source}
    with chosen:
        return evaluate(loaded, files, chosen)
