"""The evaluator: a node judged in the sandbox under the evaluation bound, its verdict stored.

It is the boundary around the task's code: an exception out of an evaluation, or a verdict the
archive refuses, becomes that node's `error` with a one-line reason; only StorageError gets out.
A node whose evaluation is abandoned (a cancelled or crashed loop) goes back to `pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from agent.gateway import Gateway
from agent.pipeline.stats import Tally
from archive import Archive, NodeView
from archive.errors import StorageError
from benchmarks import Evaluation, Task, evaluate
from benchmarks.task import LLM_GATEWAY
from sandboxes import Sandbox

T = TypeVar("T")
Judge = Callable[[NodeView], Evaluation]


class HostFault(Exception):
    """Trusted code on the host raised something that is not an Exception (SystemExit, ...)."""


def crashed(reason: str, wall_s: float = 0.0) -> Evaluation:
    """An `error` verdict for a node whose evaluation failed on the host side."""
    return Evaluation(status="error", score=None, metrics={}, reason=reason, wall_s=wall_s)


def prepare(sandbox: Sandbox, task: Task, parallel: int) -> None:
    """Ask the sandbox to start one warm sandbox per evaluation slot now (`Sandbox.prepare`), so
    that neither the seed nor the first children wait for one to start each."""
    if LLM_GATEWAY in task.services:  # each job mounts its own LLM session: no two sandboxes alike
        return
    try:
        sandbox.prepare(task.job(task.seed_files(), task.stages()[0]), parallel)
    except Exception:  # only a hint: the first jobs start their own sandboxes, and say why if they cannot
        return


class Evaluator:
    def __init__(
        self,
        archive: Archive,
        task: Task,
        sandbox: Sandbox,
        gateway: Gateway | None,
        secret_key: str,
        parallel: int,
        tally: Tally,
    ) -> None:
        self.archive, self.task, self.sandbox, self.gateway, self.tally = archive, task, sandbox, gateway, tally
        self.secret_key = secret_key
        self.judge: Judge = self.in_sandbox
        self.parallel = parallel
        self._slots = asyncio.Semaphore(parallel)
        self._running: set[int] = set()

    def prepare(self) -> None:
        """Warm sandboxes for the first evaluations (`prepare`; the runner asks first, at start)."""
        prepare(self.sandbox, self.task, self.parallel)

    async def evaluate(self, node: NodeView) -> Evaluation | None:
        """Evaluate and store one node; None when a stop came first (the node stays `pending`)."""
        async with self._slots:
            if self.tally.stats.interrupted is not None:
                return None
            self.archive.set_status(node.id, "running")
            self._running.add(node.id)
            try:
                result = await _in_thread(self.judge, node)
            except StorageError:
                raise
            except Exception as exc:  # evaluate() contains the task's code; this is the last net
                result = crashed(f"the evaluation failed on the host: {_one_line(exc)}")
        result = self._admit(node, result)
        self._running.discard(node.id)
        self.tally.evaluated(node, result)
        return result

    def in_sandbox(self, node: NodeView) -> Evaluation:
        files = self.archive.files(node.id)
        if self.gateway is None:
            return evaluate(self.task, files, self.sandbox, secret_key=self.secret_key)
        # The candidate calls the LLM: through a session accounted to this node.
        with self.gateway.session(node.id, self.task.llm_tokens_per_evaluation, "evaluation") as session:
            return evaluate(self.task, files, self.sandbox, session.attach, secret_key=self.secret_key)

    def release(self) -> None:
        """Nodes whose evaluation was abandoned (cancelled, crashed) go back to `pending`."""
        for node_id in sorted(self._running):
            try:
                self.archive.set_status(node_id, "pending")
            except StorageError:  # the database is away: resume finds them `running` and redoes them
                break
        self._running.clear()

    def _admit(self, node: NodeView, result: Evaluation) -> Evaluation:
        """Store the verdict; one the archive refuses (what the candidate wrote, say) is stored as
        the node's `error` with the reason instead. Only a database that refuses that too gets out."""
        try:
            self._store(node, result)
            return result
        except Exception as exc:
            fallback = crashed(f"the evaluation could not be stored: {_one_line(exc)}", result.wall_s)
            self._store(node, fallback)
            return fallback

    def _store(self, node: NodeView, result: Evaluation) -> None:
        self.archive.record_evaluation(
            node.id,
            status=result.status,
            score=result.score,
            metrics=result.metrics,
            feedback=result.feedback or None,
            wall_s=result.wall_s,
            sandbox=result.placement or self.sandbox.name,  # on a cluster: the node that ran it
            descriptors=result.descriptors,
            stages=[
                {
                    "stage": s.stage,
                    "status": s.status,
                    "score": s.score,
                    "metrics": dict(s.metrics),
                    "reason": s.reason,
                    "exit_code": s.exit_code,
                    "timed_out": s.timed_out,
                    "out_of_memory": s.out_of_memory,
                    "stdout_tail": s.stdout_tail,
                    "stderr_tail": s.stderr_tail,
                    "wall_s": s.wall_s,
                    "peak_memory_mb": s.peak_memory_mb,
                    "secret": s.secret,
                }
                for s in result.stages
            ],
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:300]}"


async def _in_thread(function: Callable[[NodeView], T], node: NodeView) -> T:
    """`function(node)` in a daemon thread: a run stopped at once does not wait for it to end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)  # type: ignore[arg-type]

    def deliver(value: T | None, error: BaseException | None) -> None:
        # A closed loop (a second Ctrl-C stopped the run at once): nobody waits, the node stays pending.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, error)

    def work() -> None:
        try:
            value = function(node)
        except Exception as exc:
            deliver(None, exc)
        except BaseException as exc:  # SystemExit or the like from trusted code: this node's fault, not the run's
            deliver(None, HostFault(f"{type(exc).__name__}({exc}) was raised"))
        else:
            deliver(value, None)

    threading.Thread(target=work, name=f"clade-eval-{node.id}", daemon=True).start()
    return await done
